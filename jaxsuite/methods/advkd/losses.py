"""Adv-KD's adversarial distillation losses (paper Sec. 3.2; official code src/prodm/kdgan_training.py).

For stage k, with z the noise x_T (resized to the student's input), x_k the teacher's state at checkpoint k and
G_k(z) the student's prediction of it, D(., z) a discriminator conditioned on the same noise:

* discriminator, non-saturating GAN loss with a gradient penalty (WGAN-GP form, weight 10 in the official code):
  L_D = E[softplus(-D(x_k, z))] + E[softplus(D(G_k(z), z))] + lambda_gp E[(||grad_x D(x_hat, z)||_2 - 1)^2],
  x_hat = u x_k + (1 - u) G_k(z), u ~ U[0, 1] per example, z held fixed;
* student: L_G = E[softplus(-D(G_k(z), z))] + w_reg E[||G_k(z) - x_k||^2] (w_reg = 0 in the official code; the
  ``regression_student`` and ``regression_ddim`` baselines use the second term alone, w_reg = 1, with x_k the
  teacher's ancestral state or its DDIM state; the latter is Luhman & Luhman 2021's Eq. 11 objective).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

DFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [B, S, S, C], z [B, s, s, C]) -> logits [B]


def gradient_penalty(d_fn: DFn, real: jax.Array, fake: jax.Array, z: jax.Array, key: jax.Array) -> jax.Array:
    """E[(||grad_x D(x_hat, z)|| - 1)^2] on random interpolates x_hat of (real, fake), per example."""
    u = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    x_hat = u * real + (1.0 - u) * fake
    # D is per-example (no batch statistics), so the gradient of the sum is every example's own gradient
    grads = jax.grad(lambda x: jnp.sum(d_fn(x, z)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def discriminator_loss(d_fn: DFn, real: jax.Array, fake: jax.Array, z: jax.Array, key: jax.Array, *,
                       gp_weight: float, gp_examples: int = 0) -> tuple[jax.Array, dict]:
    """``gp_examples`` > 0: the penalty's expectation estimated on the first that many examples (the batch is a
    random draw, so they are a random subset)."""
    fake = jax.lax.stop_gradient(fake)
    real_logits, fake_logits = d_fn(real, z), d_fn(fake, z)
    adv = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    n = gp_examples or real.shape[0]
    gp = gradient_penalty(d_fn, real[:n], fake[:n], z[:n], key) if gp_weight else jnp.zeros(())
    return adv + gp_weight * gp, {"d_loss": adv, "gp": gp, "d_real": jnp.mean(real_logits),
                                  "d_fake": jnp.mean(fake_logits)}


def student_loss(d_fn: DFn | None, fake: jax.Array, target: jax.Array, z: jax.Array, *,
                 regression_weight: float) -> tuple[jax.Array, dict]:
    """The adversarial term (when ``d_fn`` is given) plus ``regression_weight`` x the mean squared error."""
    mse = jnp.mean((fake - target) ** 2)
    total = regression_weight * mse
    metrics = {"mse": mse}
    if d_fn is not None:
        adv = jnp.mean(jax.nn.softplus(-d_fn(fake, z)))
        total = total + adv
        metrics["g_loss"] = adv
    return total, metrics
