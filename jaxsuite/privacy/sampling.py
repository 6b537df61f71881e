"""Poisson subsampling with a fixed-shape batch, so that jit compiles one step.

Each of the N examples joins the batch independently with probability q (the sampling DP-SGD's RDP
analysis assumes). The selected examples are placed, in random order, into ``max_batch`` slots; the rest
of the slots are padding (mask 0). If more than ``max_batch`` examples are drawn, the surplus is dropped;
the probability of that over a run is added to delta (``accounting.overflow_delta``), and
:func:`default_max_batch` sizes the padding so that it stays below a given share of delta."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from scipy import stats


def default_max_batch(num_examples: int, rate: float, steps: int, delta_share: float) -> int:
    """The smallest padded size whose overflow probability over ``steps`` draws is at most ``delta_share``
    (the part of delta the run gives to truncation, see ``accounting.overflow_delta``)."""
    per_step = delta_share / max(steps, 1)
    return int(min(num_examples, max(1, stats.binom.isf(per_step, num_examples, rate))))  # P(X > k) <= per_step


def poisson_batch(key: jax.Array, num_examples: int, rate: float, max_batch: int) -> tuple[jax.Array, jax.Array]:
    """(indices [max_batch] int32, mask [max_batch] bool): the Poisson sample, padded (padding index 0)."""
    k_draw, k_order = jax.random.split(key)
    chosen = jax.random.bernoulli(k_draw, rate, (num_examples,))
    # selected examples get a random score in [0, 1), the others 2: the top max_batch (smallest) scores
    score = jnp.where(chosen, jax.random.uniform(k_order, (num_examples,)), 2.0)
    neg, idx = jax.lax.top_k(-score, max_batch)
    mask = -neg < 2.0
    return jnp.where(mask, idx, 0).astype(jnp.int32), mask
