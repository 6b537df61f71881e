"""The networks: a Conformer encoder with a CTC output layer, and the same encoder with wav2vec 2.0's
self-supervised heads (Baevski et al. 2020, Sec. 2: quantiser, mask embedding, projections)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsuite.nn.conformer import Conformer


def encoder(cfg, rngs: nnx.Rngs) -> Conformer:
    m = cfg.model
    return Conformer(m.in_dim, m.dim, m.num_blocks, m.heads, kernel=m.kernel, ff_mult=m.ff_mult,
                     dropout=m.dropout, input_dropout=m.input_dropout, vgg_channels=tuple(m.vgg_channels),
                     rngs=rngs)


class CTCModel(nnx.Module):
    """Conformer -> Linear(dim, units): per-frame CTC logits (units include the blank, index 0)."""

    def __init__(self, cfg, units: int, *, rngs: nnx.Rngs):
        self.encoder = encoder(cfg, rngs)
        self.head = nnx.Linear(cfg.model.dim, units, rngs=rngs)

    def __call__(self, feats, lengths, *, key=None, train: bool = False):
        h, out_lengths = self.encoder(feats, lengths, key=key, train=train)
        return self.head(h), out_lengths


class GumbelQuantizer(nnx.Module):
    """Product quantisation with ``groups`` codebooks of ``entries`` vectors (wav2vec 2.0, Sec. 2): a linear map
    to logits, a straight-through hard Gumbel-softmax choice per group, the chosen vectors concatenated."""

    def __init__(self, dim: int, groups: int, entries: int, code_dim: int, *, rngs: nnx.Rngs):
        if code_dim % groups:
            raise ValueError(f"ssl.code_dim {code_dim} is not divisible by ssl.groups {groups}")
        self.groups, self.entries = groups, entries
        self.logits = nnx.Linear(dim, groups * entries, rngs=rngs)
        self.codebook = nnx.Param(jax.random.uniform(rngs.params(), (groups, entries, code_dim // groups)))

    def __call__(self, z, key, tau):
        """-> (quantised [B, T, code_dim], soft probabilities [B, T, groups, entries] without noise)."""
        logits = self.logits(z).reshape(*z.shape[:-1], self.groups, self.entries)
        probs = jax.nn.softmax(logits, -1)
        if key is None:
            hard = jax.nn.one_hot(jnp.argmax(logits, -1), self.entries, dtype=logits.dtype)
        else:
            gumbel = -jnp.log(-jnp.log(jax.random.uniform(key, logits.shape, minval=1e-6, maxval=1 - 1e-6)))
            soft = jax.nn.softmax((logits + gumbel) / tau, -1)
            hard = jax.nn.one_hot(jnp.argmax(soft, -1), self.entries, dtype=soft.dtype)
            hard = soft + jax.lax.stop_gradient(hard - soft)  # straight-through
        q = jnp.einsum("btgv,gvd->btgd", hard, self.codebook[...])
        return q.reshape(*z.shape[:-1], -1), probs


class SSLModel(nnx.Module):
    """wav2vec 2.0 on the Conformer: the VGG2L frontend is the feature encoder. As in fairseq, the L2 penalty is
    on the conv features before the projection (fairseq: before its LayerNorm and projection), the quantiser takes
    the layer-normalised projection z (targets q), and z, replaced by a learned mask embedding at masked frames,
    feeds the Conformer blocks (context c)."""

    def __init__(self, cfg, *, rngs: nnx.Rngs):
        s, dim = cfg.ssl, cfg.model.dim
        self.encoder = encoder(cfg, rngs)
        self.feature_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.quantizer = GumbelQuantizer(dim, s.groups, s.entries, s.code_dim, rngs=rngs)
        self.project_q = nnx.Linear(s.code_dim, s.final_dim, rngs=rngs)
        self.project_c = nnx.Linear(dim, s.final_dim, rngs=rngs)
        self.mask_embedding = nnx.Param(jax.random.uniform(rngs.params(), (dim,)))

    def __call__(self, feats, lengths, mask, *, key, tau, train: bool = True):
        k_enc, k_q = (None, None) if key is None else jax.random.split(key)
        c, out_lengths, frontend = self.encoder(feats, lengths, key=k_enc, train=train, return_frontend=True,
                                                replace=(mask, self.mask_embedding[...]))
        q, probs = self.quantizer(self.feature_norm(frontend["z"]), k_q, tau)
        return {"context": self.project_c(c), "targets": self.project_q(q), "probs": probs,
                "conv_features": frontend["conv"], "lengths": out_lengths}
