"""DP-SGD (Abadi et al., CCS 2016, Algorithm 1) from google-deepmind's jax-privacy: its ``clipped_fun``
(per-example gradients by vmap, each example's whole gradient pytree clipped to L2 norm C, summed) and its
``gaussian_privatizer`` (an optax transformation adding N(0, (sigma C)^2) noise, key in its state), then
division by the *expected* batch size L = q N (a Poisson batch's clipped sum has sensitivity C under
add/remove-one; dividing by the realised size would leak it).

    grad_fn = clipped_grad_sum(loss_fn, clip_norm)           # loss_fn(params, batch) on a batch of one
                                                             # clipping="ghost": no per-example gradients
    tx = optax.chain(dp_noise(clip_norm, sigma, L, key), optax.adam(lr))
    updates, opt_state = tx.update(grad_fn(params, batch), opt_state, params)

Padding slots of a fixed-shape Poisson batch (``sampling.poisson_batch``) must contribute nothing: the loss
multiplies each example's loss by its ``mask`` entry, so its gradient, clipped or not, is zero.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax_privacy import clipping as clipping_lib
from jax_privacy import noise_addition

from jaxsuite.privacy import ghost

CLIPPING = ("vmap", "ghost")


def clipped_grad_sum(loss_fn: Callable[..., jax.Array], clip_norm: float, *, return_norms: bool = False,
                     return_stats: bool = False, clipping: str = "vmap"):
    """``fn(params, batch) -> sum_i clip_C(grad loss_fn(params, batch[i:i+1]))``; with ``return_norms`` also the
    per-example norms the clip used, with ``return_stats`` also the step's counts (``ghost.clip_stats``: examples
    with a non-finite norm, whose contribution is zero; ghost examples rerouted or dropped), in that order.
    ``clipping="vmap"``: per-example gradients by ``jax.grad`` under jax-privacy's ``clipped_fun`` (clip, sum: the
    exact reference); ``"ghost"``: per-example norms from the layers' inputs and output gradients, no per-example
    gradients (``ghost.py``; NNX models, falling back to vmap for the parameters of layers it does not know).
    Either way each example's contribution has L2 norm at most C, whatever the input, and an example whose
    gradient is not finite contributes zero (jax-privacy's ``nan_safe`` would keep its finite entries; the whole
    example is zeroed here, as the ghost path must, so that both paths agree)."""
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
    if clipping == "ghost":
        return ghost.ghost_clipped_grad_sum(loss_fn, clip_norm, return_norms=return_norms, return_stats=return_stats)
    if clipping != "vmap":
        raise ValueError(f"clipping must be one of {CLIPPING}, got {clipping!r}")

    def grad_or_zero(params, example):  # (gradient, not finite): a non-finite gradient is replaced by zeros
        grad = jax.grad(loss_fn)(params, example)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]))
        return jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grad), ~finite

    clipped = clipping_lib.clipped_fun(grad_or_zero, has_aux=True, batch_argnums=1, keep_batch_dim=True,
                                       l2_clip_norm=clip_norm, return_norms=True)

    def fn(params, batch):
        total, (nonfinite, norms) = clipped(params, batch)
        nonfinite = nonfinite.reshape(-1)
        result = (total,)
        if return_norms:
            result += (jnp.where(nonfinite, jnp.nan, norms),)
        if return_stats:
            none = jnp.zeros((), jnp.int32)
            result += ({"nonfinite": jnp.sum(nonfinite), "rerouted": none, "dropped": none},)
        return result if len(result) > 1 else result[0]

    return fn


def dp_noise(clip_norm: float, noise_multiplier: float, expected_batch_size: float,
             key: jax.Array, every: int = 1) -> optax.GradientTransformation:
    """Clipped sum -> privatised mean: + N(0, (noise_multiplier * clip_norm)^2), then / expected_batch_size.

    ``every`` > 1: noise only on the updates k with k % every == 0 (counted from 0), for a player that takes a
    private step only on those; the caller must pass no private sum on the others (their updates are then the
    public gradient, / expected_batch_size like the rest)."""
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
    if expected_batch_size <= 0:
        raise ValueError(f"expected_batch_size must be > 0, got {expected_batch_size}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    std = noise_multiplier * clip_norm if noise_multiplier > 0 else 0.0  # (0 * inf is nan)
    noise = noise_addition.gaussian_privatizer(stddev=std, prng_key=key)
    if every > 1:
        noise = optax.transforms.conditionally_transform(noise, lambda count: count % every == 0)
    return optax.chain(noise, optax.scale(1.0 / expected_batch_size))
