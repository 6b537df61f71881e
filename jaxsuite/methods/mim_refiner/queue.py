"""The FIFO queue of projections that NNCLR's nearest-neighbour swap reads (official ``NnclrQueue``), as
functional, fixed-shape state: ``x`` [Q, D] (random normal at start, as the official buffer), ``idx`` [Q]
(the dataset index of each entry, -1 when empty) and ``ptr``; one queue per head, stacked on a leading axis.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsuite.methods.mim_refiner.losses import l2_normalize


def init_queues(key: jax.Array, num_heads: int, size: int, dim: int) -> dict:
    return {"x": jax.random.normal(key, (num_heads, size, dim)),
            "idx": -jnp.ones((num_heads, size), jnp.int32), "ptr": jnp.zeros((num_heads,), jnp.int32)}


def lookup(queue_x: jax.Array, queue_idx: jax.Array, z: jax.Array, idx: jax.Array, topk: int,
           key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Nearest neighbour (cosine) in the queue of every row of ``z`` [V*B, D] (views stacked view-major):
    entries of the same data-set index are excluded (similarity set to -1, as the official code); with
    ``topk`` > 1 a uniformly random one of the top-k (stage 3 uses 20). Returns (raw queue rows, cosine)."""
    num_views = z.shape[0] // idx.shape[0]
    sim = l2_normalize(z) @ l2_normalize(queue_x).T
    same = jnp.tile(idx, num_views)[:, None] == queue_idx[None, :]
    sim = jnp.where(same, -1.0, sim)
    top_sim, top_i = jax.lax.top_k(sim, topk)
    pick = jax.random.randint(key, (z.shape[0], 1), 0, topk) if topk > 1 else jnp.zeros((z.shape[0], 1), jnp.int32)
    nn_i = jnp.take_along_axis(top_i, pick, axis=1)[:, 0]
    return queue_x[nn_i], jnp.take_along_axis(top_sim, pick, axis=1)[:, 0]


def enqueue(queue_x: jax.Array, queue_idx: jax.Array, ptr: jax.Array, z0: jax.Array,
            idx: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """FIFO write of the first global view's projections ``z0`` [B, D] (wrapping around the end)."""
    size = queue_x.shape[0]
    pos = (ptr + jnp.arange(z0.shape[0])) % size
    return queue_x.at[pos].set(z0), queue_idx.at[pos].set(idx), (ptr + z0.shape[0]) % size
