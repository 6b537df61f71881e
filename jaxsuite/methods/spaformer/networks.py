"""SPAFormer's network and the dynamic-graph-learning baseline (NNX).

:class:`PointNet` -- the per-part encoder of the official code (models/utils.py): shared per-point linear layers
(1x1 convs) 3-64-64-64-128-1024, max-pool over points, Linear to 256, then an MLP (256-432-432-216 released).
Deviation: no BatchNorm. The per-point layers are plain (normalising every point's activations doubled the
encoder's cost on CPU); the pooled feature and the MLP use LayerNorm, so padded parts never enter normalisation
statistics and a part's feature does not depend on the rest of the batch.

:class:`SPAFormer` -- Sec. 3 of the paper: a token per part = [point feature; knowledge-enhancement encodings],
the encodings being one-hot geometric-equivalence group id, optional one-hot part-type attribute, and one-hot
position of the part in the assembly sequence; a post-LN Transformer encoder (jaxsuite.nn.transformer), after each
of whose layers the encoding dims are overwritten with the original encodings again (the released
``encoder_abs_each_layer``); a pose head per token. Two generation modes:

* parallel: every part attends to every real part (padding mask only);
* autoregressive: the same encoder, then a Transformer decoder (jaxsuite.nn.transformer) whose query for part i is
  its token plus an embedding of the previous part's pose in the sequence (a learned start vector for the first),
  with causal self-attention along the sequence and cross-attention to every part's token: each pose is
  conditioned on all the geometry and on the poses placed before it. Trained with teacher forcing plus scheduled
  sampling (``train.poses_for_training``); decoded from the model's own predictions one part at a time at test
  (:func:`decode_autoregressive`). The official release has the parallel mode only; this encoder-decoder is our
  reading of the paper's autoregressive variant (a causal encoder alone would let a part see only the parts before
  it, not the geometry of those still to come).

:class:`PoseHead` -- Linear d-256 ReLU, 256-256 ReLU; translation tanh(Linear -> 3); quaternion Linear -> 4 with bias
(1, 0, 0, 0) (the identity rotation at init, the official "+ [1, 0, 0, 0]"), normalised.

:class:`DGLBaseline` -- a small re-implementation of Huang et al. 2020 ("Generative 3D Part Assembly via Dynamic
Graph Learning"): the same part encoder plus the group one-hot, then ``iterations`` rounds of graph reasoning over
the fully connected part graph (edge MLP on [h_i, h_j], max-aggregated over real neighbours; node MLP on [h_i,
message, current pose]), alternating with pooling over geometrically equivalent parts (their "dynamic" part-
relation step), re-estimating every part's pose each round (the loss averages the rounds); no sequence input.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsuite.methods.spaformer import geometry
from jaxsuite.nn import transformer as tfm


class MLP(nnx.Module):
    """Linear -> LayerNorm (``norm``) -> ReLU per layer (``widths`` = [in, hidden..., out])."""

    def __init__(self, widths, *, norm: bool = True, rngs: nnx.Rngs):
        self.linears = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])])
        self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in widths[1:]]) if norm else None

    def __call__(self, x):
        for i, lin in enumerate(self.linears):
            x = lin(x)
            x = nnx.relu(x if self.norms is None else self.norms[i](x))
        return x


class PointNet(nnx.Module):
    def __init__(self, point_widths, out: int, mlp_widths, *, rngs: nnx.Rngs):
        self.points = MLP((3,) + tuple(point_widths), norm=False, rngs=rngs)
        self.fc = MLP((point_widths[-1], out), rngs=rngs)
        self.mlp = MLP((out,) + tuple(mlp_widths), rngs=rngs)

    def __call__(self, pcs: jax.Array) -> jax.Array:
        """[..., N, 3] -> [..., mlp_widths[-1]]."""
        return self.mlp(self.fc(self.points(pcs).max(-2)))


class PoseHead(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(dim, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.trans = nnx.Linear(hidden, 3, rngs=rngs)
        self.quat = nnx.Linear(hidden, 4, kernel_init=nnx.initializers.normal(1e-3), rngs=rngs)
        self.quat.bias.value = jnp.asarray([1.0, 0.0, 0.0, 0.0])

    def __call__(self, h: jax.Array) -> jax.Array:
        """[..., dim] -> poses [..., 7] (translation in (-1, 1), unit quaternion)."""
        h = nnx.relu(self.fc2(nnx.relu(self.fc1(h))))
        q = self.quat(h)
        return jnp.concatenate([jnp.tanh(self.trans(h)), q / jnp.linalg.norm(q, axis=-1, keepdims=True)], -1)


def encodings(batch: dict, *, max_parts: int, groups: bool, part_types: int, sequence: bool) -> jax.Array:
    """The knowledge-enhancement and sequence encodings [B, P, E]: one-hot group id (``max_parts`` dims, zeros
    when ``groups`` is off), one-hot part type (``part_types`` dims, none when 0), one-hot sequence position
    (``max_parts`` dims, zeros when ``sequence`` is off). Padded parts get zeros."""
    valid = batch["part_valid"][..., None]
    b, p = batch["part_valid"].shape
    out = [jax.nn.one_hot(batch["geo_ids"], max_parts) * groups]
    if part_types:
        out.append(jax.nn.one_hot(batch["part_types"], part_types))
    out.append(jnp.broadcast_to(jax.nn.one_hot(jnp.arange(p), max_parts), (b, p, max_parts)) * sequence)
    return jnp.concatenate(out, -1) * valid


class SPAFormer(nnx.Module):
    def __init__(self, cfg, *, rngs: nnx.Rngs):
        m = cfg.model
        self.max_parts, self.part_types = cfg.data.max_parts, m.part_type_dims
        self.enc_dim = 2 * cfg.data.max_parts + m.part_type_dims
        if m.dim <= self.enc_dim:
            raise ValueError(f"model.dim ({m.dim}) must exceed the encoding dims ({self.enc_dim})")
        self.encoder = PointNet(m.point_widths, m.point_out, tuple(m.mlp_widths) + (m.dim - self.enc_dim,),
                                rngs=rngs)
        self.transformer = tfm.Encoder(m.layers, m.dim, m.heads, m.ffn, dropout=m.dropout, norm_first=False,
                                       activation=nnx.relu, rngs=rngs)
        self.head = PoseHead(m.dim, m.head_hidden, rngs=rngs)
        self.autoregressive = bool(m.autoregressive)
        self.groups, self.sequence = bool(m.use_groups), bool(m.use_sequence)
        if self.autoregressive:
            self.decoder = tfm.Decoder(m.ar_layers, m.dim, m.heads, m.ffn, dropout=m.dropout, norm_first=False,
                                       activation=nnx.relu, rngs=rngs)
            self.pose_embed = nnx.Linear(7, m.dim, rngs=rngs)
            self.start = nnx.Param(jnp.zeros((m.dim,)))

    def encode(self, batch: dict, key: jax.Array | None = None) -> jax.Array:
        """[B, P, dim]: the part tokens after the bidirectional encoder (padding mask only)."""
        enc = encodings(batch, max_parts=self.max_parts, groups=self.groups, part_types=self.part_types,
                        sequence=self.sequence)
        x = jnp.concatenate([self.encoder(batch["part_pcs"]), enc], -1)
        mask = tfm.padding_mask(batch["part_valid"])
        return self.transformer(x, mask, reset_tail=enc, key=key)  # encodings re-set after every layer

    def decode(self, memory: jax.Array, batch: dict, prev_poses: jax.Array, key: jax.Array | None = None):
        """Autoregressive mode: query i = token i + an embedding of the previous part's pose (the start vector for
        the first); causal self-attention over the queries, cross-attention to every part's token."""
        valid = batch["part_valid"]
        first = jnp.arange(valid.shape[1])[None, :, None] == 0
        q = memory + jnp.where(first, self.start.value, self.pose_embed(prev_poses))
        return self.head(self.decoder(q, memory, valid=valid, memory_valid=valid, key=key))

    def __call__(self, batch: dict, prev_poses: jax.Array | None = None, key: jax.Array | None = None):
        """Poses [B, P, 7] of every part; ``prev_poses`` [B, P, 7] (autoregressive mode) = the pose of the part
        before each one in the sequence (row 0 ignored)."""
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        memory = self.encode(batch, keys[0])
        if self.autoregressive:
            return self.decode(memory, batch, prev_poses, keys[1])
        return self.head(memory)


def shift_poses(poses: jax.Array) -> jax.Array:
    """[B, P, 7] -> the previous part's pose at every position (position 0: identity, unused)."""
    start = jnp.broadcast_to(jnp.asarray(geometry.IDENTITY_POSE, poses.dtype), poses[:, :1].shape)
    return jnp.concatenate([start, poses[:, :-1]], 1)


def decode_autoregressive(model: SPAFormer, batch: dict) -> jax.Array:
    """Sequential decoding: the tokens once, then part i's pose from the poses predicted for parts 0..i-1 (P
    decoder passes)."""
    memory = model.encode(batch)
    b, p = batch["part_valid"].shape
    poses0 = jnp.broadcast_to(jnp.asarray(geometry.IDENTITY_POSE, jnp.float32), (b, p, 7))

    def body(i, poses):
        return poses.at[:, i].set(model.decode(memory, batch, shift_poses(poses))[:, i])

    return jax.lax.fori_loop(0, p, body, poses0)


class DGLBaseline(nnx.Module):
    def __init__(self, cfg, *, rngs: nnx.Rngs):
        m, g = cfg.model, cfg.dgl
        self.max_parts, self.iterations = cfg.data.max_parts, g.iterations
        self.encoder = PointNet(m.point_widths, m.point_out, tuple(m.mlp_widths) + (g.hidden - cfg.data.max_parts,),
                                rngs=rngs)
        h = g.hidden
        self.edge_i = nnx.List([nnx.Linear(h, h, rngs=rngs) for _ in range(g.iterations)])
        self.edge_j = nnx.List([nnx.Linear(h, h, use_bias=False, rngs=rngs) for _ in range(g.iterations)])
        self.edge_out = nnx.List([MLP((h, h), rngs=rngs) for _ in range(g.iterations)])
        self.node = nnx.List([MLP((2 * h + 7, h, h), rngs=rngs) for _ in range(g.iterations)])
        self.heads = nnx.List([PoseHead(h, m.head_hidden, rngs=rngs) for _ in range(g.iterations)])

    def __call__(self, batch: dict, prev_poses=None, key=None, *, all_iterations: bool = False):
        valid = batch["part_valid"]
        h = jnp.concatenate([self.encoder(batch["part_pcs"]), jax.nn.one_hot(batch["geo_ids"], self.max_parts)], -1)
        b, p = valid.shape
        poses = jnp.broadcast_to(jnp.asarray(geometry.IDENTITY_POSE, jnp.float32), (b, p, 7))
        same_group = (batch["geo_ids"][:, :, None] == batch["geo_ids"][:, None, :]) & valid[:, None, :]
        outputs = []
        for t in range(self.iterations):
            if t % 2 == 1:  # dynamic step: pool features over geometrically equivalent parts
                h = jnp.where(same_group[..., None], h[:, None, :, :], -jnp.inf).max(2)
                h = jnp.where(valid[..., None], h, 0.0)
            # edge MLP on [h_i, h_j]: its first Linear split into W_i h_i + W_j h_j (the same map, computed per node)
            pair = nnx.relu(self.edge_i[t](h)[:, :, None] + self.edge_j[t](h)[:, None, :])
            msg = jnp.where(valid[:, None, :, None], self.edge_out[t](pair), -jnp.inf).max(2)
            msg = jnp.where(valid[..., None], msg, 0.0)
            h = self.node[t](jnp.concatenate([h, msg, poses], -1))
            poses = self.heads[t](h)
            outputs.append(poses)
        return outputs if all_iterations else poses


def build(cfg, rngs: nnx.Rngs) -> nnx.Module:
    return DGLBaseline(cfg, rngs=rngs) if cfg.model.kind == "dgl" else SPAFormer(cfg, rngs=rngs)
