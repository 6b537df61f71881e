"""Conformer encoder (Gulati et al. 2020) as CAT's ConformerNet builds it (thu-spmi/CAT cat/shared/encoder.py).

* :class:`VGG2L`: two VGG blocks (two 3x3 conv + ReLU each, then 2x2 max-pool with ceil) -> 4x subsampling in
  time and frequency, then a linear projection to the model width.
* :class:`ConformerBlock`: macaron ``x + 1/2 FF(x)``, ``x + MHSA_rel(x)``, ``x + Conv(x)``, ``x + 1/2 FF(x)``,
  final LayerNorm. FF: LN, Linear(d, 4d), Swish, dropout, Linear, dropout. MHSA with Transformer-XL relative
  positions (Dai et al. 2019, Sec. 3.3: content bias u, position bias v, sinusoidal relative encodings, the
  rel-shift). Conv module: LN, pointwise (d -> 2d) + GLU, depthwise conv (kernel 15), BatchNorm, Swish,
  pointwise, dropout.
* :class:`Conformer`: VGG2L -> blocks; ``lengths`` are the valid frame counts, padded frames never reach a
  real frame (keys masked, convolution inputs zeroed, BatchNorm statistics over real frames only).

Dropout is pure (``key`` = a PRNG key, None = deterministic); ``train`` selects BatchNorm's batch statistics.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def _keys(key, n):
    return [None] * n if key is None else list(jax.random.split(key, n))


def subsampled_lengths(lengths: jax.Array) -> jax.Array:
    """Frame counts after VGG2L's two ceil-mode 2x pools."""
    return (lengths + 3) // 4


def _pool2(x: jax.Array) -> jax.Array:
    """2x2 max-pool of [B, T, F, C] with ceil mode (odd edges padded with -inf)."""
    b, t, f, c = x.shape
    x = jnp.pad(x, ((0, 0), (0, t % 2), (0, f % 2), (0, 0)), constant_values=-jnp.inf)
    return x.reshape(b, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).max(axis=(2, 4))


class VGG2L(nnx.Module):
    def __init__(self, in_dim: int, out_dim: int, channels: tuple[int, int] = (64, 128), *, rngs: nnx.Rngs):
        c1, c2 = channels
        conv = lambda i, o: nnx.Conv(i, o, (3, 3), padding="SAME", rngs=rngs)  # noqa: E731
        self.convs = nnx.List([conv(1, c1), conv(c1, c1), conv(c1, c2), conv(c2, c2)])
        f = math.ceil(math.ceil(in_dim / 2) / 2)
        self.proj = nnx.Linear(c2 * f, out_dim, rngs=rngs)

    def __call__(self, feats: jax.Array, lengths: jax.Array, return_conv: bool = False):
        """-> (projected [B, T', dim], lengths') and, with ``return_conv``, the conv features before the
        projection [B, T', C * F']."""
        valid = jnp.arange(feats.shape[1])[None] < lengths[:, None]
        x = jnp.where(valid[..., None], feats, 0.0)[..., None]
        for i, conv in enumerate(self.convs):
            x = nnx.relu(conv(x))
            if i % 2:
                x = _pool2(x)
        b, t = x.shape[:2]
        conv_features = x.reshape(b, t, -1)
        out = (self.proj(conv_features), subsampled_lengths(lengths))
        return (*out, conv_features) if return_conv else out


def relative_positions(length: int, dim: int) -> jax.Array:
    """[2L-1, dim] sinusoidal encodings of the relative positions L-1, ..., -(L-1)."""
    pos = jnp.arange(length - 1, -length, -1, dtype=jnp.float32)[:, None]
    inv = jnp.exp(-math.log(10000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = pos * inv[None]
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], -1).reshape(2 * length - 1, dim)


def rel_shift(scores: jax.Array) -> jax.Array:
    """[..., L, 2L-1] scores against relative positions L-1..-(L-1) -> [..., L, L] with entry (i, j) the score of
    relative position i - j (Transformer-XL's shift, as a gather)."""
    length = scores.shape[-2]
    i, j = jnp.arange(length)[:, None], jnp.arange(length)[None]
    index = jnp.broadcast_to(length - 1 - i + j, scores.shape[:-1] + (length,))
    return jnp.take_along_axis(scores, index, axis=-1)


class RelPositionAttention(nnx.Module):
    def __init__(self, dim: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nnx.Linear(dim, dim, rngs=rngs) for _ in range(4))
        self.pos = nnx.Linear(dim, dim, use_bias=False, rngs=rngs)
        init = nnx.initializers.xavier_uniform()
        self.pos_bias_u = nnx.Param(init(rngs.params(), (heads, self.head_dim)))
        self.pos_bias_v = nnx.Param(init(rngs.params(), (heads, self.head_dim)))
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x: jax.Array, valid: jax.Array, key: jax.Array | None) -> jax.Array:
        b, t, d = x.shape
        split = lambda y: y.reshape(*y.shape[:-1], self.heads, self.head_dim)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))  # [B, T, H, Dh]
        p = split(self.pos(relative_positions(t, d)))  # [2T-1, H, Dh]
        content = jnp.einsum("bihd,bjhd->bhij", q + self.pos_bias_u[...], k)
        position = rel_shift(jnp.einsum("bihd,jhd->bhij", q + self.pos_bias_v[...], p))
        scores = (content + position) / math.sqrt(self.head_dim)
        mask = valid[:, None, None, :]
        weights = jnp.where(mask, jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1), 0.0)
        weights = self.dropout(weights, deterministic=key is None, rngs=key)
        return self.out(jnp.einsum("bhij,bjhd->bihd", weights, v).reshape(b, t, d))


class FeedForward(nnx.Module):
    def __init__(self, dim: int, hidden: int, dropout: float, *, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.fc1, self.fc2 = nnx.Linear(dim, hidden, rngs=rngs), nnx.Linear(hidden, dim, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, key):
        k1, k2 = _keys(key, 2)
        h = self.dropout(nnx.swish(self.fc1(self.norm(x))), deterministic=k1 is None, rngs=k1)
        return self.dropout(self.fc2(h), deterministic=k2 is None, rngs=k2)


class ConvModule(nnx.Module):
    def __init__(self, dim: int, kernel: int, dropout: float, *, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.pointwise_in = nnx.Linear(dim, 2 * dim, rngs=rngs)
        # no bias: BatchNorm follows and would cancel it (its gradient is 0 up to rounding, which Adam amplifies)
        self.depthwise = nnx.Conv(dim, dim, (kernel,), padding="SAME", feature_group_count=dim, use_bias=False,
                                  rngs=rngs)
        self.bn = nnx.BatchNorm(dim, momentum=0.9, rngs=rngs)
        self.pointwise_out = nnx.Linear(dim, dim, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, valid, key, train: bool):
        h = nnx.glu(self.pointwise_in(self.norm(x)), axis=-1)
        h = self.depthwise(jnp.where(valid[..., None], h, 0.0))
        h = nnx.swish(self.bn(h, use_running_average=not train, mask=valid[..., None]))
        return self.dropout(self.pointwise_out(h), deterministic=key is None, rngs=key)


class ConformerBlock(nnx.Module):
    def __init__(self, dim: int, heads: int, *, ff_mult: int = 4, kernel: int = 15, dropout: float = 0.1,
                 rngs: nnx.Rngs):
        self.ff1 = FeedForward(dim, ff_mult * dim, dropout, rngs=rngs)
        self.attn_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = RelPositionAttention(dim, heads, dropout, rngs=rngs)
        self.conv = ConvModule(dim, kernel, dropout, rngs=rngs)
        self.ff2 = FeedForward(dim, ff_mult * dim, dropout, rngs=rngs)
        self.out_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, valid, key=None, train: bool = False):
        k1, k2, k3, k4, k5 = _keys(key, 5)
        x = x + 0.5 * self.ff1(x, k1)
        att = self.attn(self.attn_norm(x), valid, k2)
        x = x + self.dropout(att, deterministic=k3 is None, rngs=k3)
        x = x + self.conv(x, valid, k4, train)
        x = x + 0.5 * self.ff2(x, k5)
        return self.out_norm(x)


class Conformer(nnx.Module):
    """``(feats [B, T, in_dim], lengths [B]) -> (encodings [B, T', dim], lengths')`` with T' = ceil(T / 4)."""

    def __init__(self, in_dim: int, dim: int, num_blocks: int, heads: int, *, kernel: int = 15, ff_mult: int = 4,
                 dropout: float = 0.1, input_dropout: float = 0.2, vgg_channels: tuple[int, int] = (64, 128),
                 rngs: nnx.Rngs):
        self.frontend = VGG2L(in_dim, dim, vgg_channels, rngs=rngs)
        self.input_dropout = nnx.Dropout(input_dropout)
        self.blocks = nnx.List([ConformerBlock(dim, heads, ff_mult=ff_mult, kernel=kernel, dropout=dropout,
                                               rngs=rngs) for _ in range(num_blocks)])

    def __call__(self, feats, lengths, *, key=None, train: bool = False, return_frontend: bool = False,
                 replace=None):
        """``replace`` = (mask [B, T'], vector [dim]): frontend frames where mask is True are replaced by the
        vector before the blocks (wav2vec 2.0's masking); ``return_frontend`` also returns the frontend's output
        and its conv features before the projection, as a dict {"z", "conv"}."""
        x, lengths, conv_features = self.frontend(feats, lengths, return_conv=True)
        frontend = {"z": x, "conv": conv_features}
        if replace is not None:
            mask, vector = replace
            x = jnp.where(mask[..., None], vector.astype(x.dtype), x)
        keys = _keys(key, len(self.blocks) + 1)
        x = self.input_dropout(x, deterministic=keys[0] is None, rngs=keys[0])
        valid = jnp.arange(x.shape[1])[None] < lengths[:, None]
        for block, k in zip(self.blocks, keys[1:]):
            x = block(x, valid, k, train)
        return (x, lengths, frontend) if return_frontend else (x, lengths)
