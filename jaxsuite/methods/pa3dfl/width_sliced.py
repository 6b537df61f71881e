"""The baselines that cut one global network to each client's width, and the local ones.

- ``heterofl`` (Diao et al. 2021): a width-p client trains the first p fraction of every hidden layer's output
  channels (inputs follow the previous layer's kept outputs; the class logits are all kept); the server averages
  every parameter entry over the clients whose sub-model contains it (entries nobody held keep their value).
- ``fedrolex`` (Alam et al. 2022): the same with a rolling window: in round r the kept output channels of a layer
  with T channels are (r + j) mod T, j < p T, so every channel is trained by narrow clients in turn.
- ``fjord`` (Horvath et al. 2021): HeteroFL's sub-models and aggregation, trained with ordered dropout: every
  local step draws a width p' uniformly from the run's widths <= p and trains the first p' fraction only.
- ``fedavg_smallest``: FedAvg with every client at the smallest width (HeteroFL with one width).
- ``lg_fedavg`` (Liang et al. 2020): every layer but the classifier is the client's own; the classifier is
  global (cut to the client's width as in HeteroFL and averaged the same way).
- ``local_only``: every client trains its own network on its own data; nothing is communicated.

Global parameters are a full-width ``PlainCNN``'s {"w", "b"}. A client's sub-model is gathered by index arrays
(static shapes, so the rolling window of FedRolex, which depends on the traced round, needs no recompilation).
"""
from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp

KINDS = ("heterofl", "fedrolex", "fjord", "fedavg_smallest", "lg_fedavg", "local_only")


def channel_indices(kind: str, specs, p_min: Fraction, p: Fraction, round_: jax.Array) -> dict:
    """{layer: (input indices, output indices)} of a width-``p`` client's sub-model in round ``round_``."""
    out, prev = {}, None
    for s in specs:
        t_p = s.out_width(p_min, p)
        idx_out = jnp.arange(t_p)
        if kind == "fedrolex" and s.prune_out:
            idx_out = (idx_out + round_) % s.out_features
        idx_in = jnp.arange(s.in_features) if (prev is None or not s.prune_in) else prev
        out[s.name] = (idx_in, idx_out)
        prev = idx_out
    return out


def extract(global_params: dict, idx: dict) -> dict:
    """The sub-model {"w", "b"} at the index arrays ``idx`` (kernels [.., S, T]: inputs then outputs)."""
    w = {n: global_params["w"][n][..., i, :][..., o] for n, (i, o) in idx.items()}
    b = {n: global_params["b"][n][o] for n, (_, o) in idx.items()}
    return {"w": w, "b": b}


def scatter_sums(global_params: dict, trained: dict, idx: dict) -> tuple[dict, dict]:
    """(sums, counts) of full shape: ``trained`` = {"w", "b"} stacked over m clients sharing the index arrays
    ``idx``, summed over the clients and written at their entries; counts m there."""
    sums, counts = {"w": {}, "b": {}}, {"w": {}, "b": {}}
    for n, (i, o) in idx.items():
        w_full = global_params["w"][n]
        m = trained["w"][n].shape[0]
        at = (Ellipsis, i[:, None], o[None, :])
        sums["w"][n] = jnp.zeros_like(w_full).at[at].add(jnp.sum(trained["w"][n], 0))
        counts["w"][n] = jnp.zeros(w_full.shape[-2:]).at[i[:, None], o[None, :]].add(m)
        sums["b"][n] = jnp.zeros_like(global_params["b"][n]).at[o].add(jnp.sum(trained["b"][n], 0))
        counts["b"][n] = jnp.zeros(global_params["b"][n].shape).at[o].add(m)
    return sums, counts


def average_into(global_params: dict, parts: list[tuple[dict, dict]], layers=None) -> dict:
    """Every entry (of ``layers``, default all) the average of the clients that held it; the others unchanged."""
    new = jax.tree.map(lambda x: x, global_params)
    for kind in ("w", "b"):
        for n in global_params[kind]:
            if layers is not None and n not in layers:
                continue
            total = sum(s[kind][n] for s, _ in parts)
            count = sum(c[kind][n] for _, c in parts)
            new[kind][n] = jnp.where(count > 0, total / jnp.maximum(count, 1), global_params[kind][n])
    return new


def ordered_dropout(specs, p_min: Fraction, p: Fraction, levels: tuple[Fraction, ...]):
    """FjORD's per-step channel masks of a width-``p`` client: ``keep_fn(key)`` draws p' uniformly from the
    ``levels`` <= p and keeps the first p' fraction of every pruned layer's outputs."""
    allowed = [q for q in levels if q <= p]
    widths = {s.name: jnp.array([s.out_width(p_min, q) for q in allowed]) for s in specs if s.prune_out}
    sizes = {s.name: s.out_width(p_min, p) for s in specs if s.prune_out}

    def keep_fn(key):
        j = jax.random.randint(key, (), 0, len(allowed))
        return {n: (jnp.arange(sizes[n]) < w[j]).astype(jnp.float32) for n, w in widths.items()}

    return keep_fn
