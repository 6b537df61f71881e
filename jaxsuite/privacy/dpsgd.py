"""DP-SGD (Abadi et al., CCS 2016, Algorithm 1) from google-deepmind's jax-privacy: its ``clipped_grad``
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
import optax
from jax_privacy import clipping as clipping_lib, noise_addition

from jaxsuite.privacy import ghost


CLIPPING = ("vmap", "ghost")


def clipped_grad_sum(loss_fn: Callable[..., jax.Array], clip_norm: float, *, return_norms: bool = False,
                     clipping: str = "vmap"):
    """``fn(params, batch) -> sum_i clip_C(grad loss_fn(params, batch[i:i+1]))``; with ``return_norms`` also the
    unclipped per-example norms. ``clipping="vmap"``: jax-privacy's ``clipped_grad`` (per-example gradients, the
    exact reference); ``"ghost"``: per-example norms from the layers' inputs and output gradients, no per-example
    gradients (``ghost.py``; NNX models, falling back to vmap for the parameters of layers it does not know)."""
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
    if clipping == "ghost":
        return ghost.ghost_clipped_grad_sum(loss_fn, clip_norm, return_norms=return_norms)
    if clipping != "vmap":
        raise ValueError(f"clipping must be one of {CLIPPING}, got {clipping!r}")
    fn = clipping_lib.clipped_grad(loss_fn, l2_clip_norm=clip_norm, batch_argnums=1, keep_batch_dim=True,
                                   return_grad_norms=return_norms)
    if not return_norms:
        return fn
    return lambda params, batch: (lambda out: (out[0], out[1].grad_norms))(fn(params, batch))


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
