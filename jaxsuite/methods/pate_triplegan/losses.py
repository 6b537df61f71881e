"""The Triple-GAN game (Li, Xu, Zhu, Zhang, NIPS 2017, Eq. 3-5), written as in its official code
(zhenxuan00/triple-gan, ``x2y_yz2x_xy2p_ssl_mnist.py``) with logits instead of probabilities.

Players: generator G(z, y) -> x, classifier C(x) -> p_c(y | x), discriminator D(x, y) -> logit of "a real
pair". Pairs: real labelled (x, y); generated (G(z, y), y); classifier-labelled (x_u, argmax C(x_u)).

  L_D = BCE(D(x, y), 1) + (1 - alpha) BCE(D(G(z, y), y), 0) + alpha BCE(D(x_u, y_c), 0)     (Eq. 3; alpha = 1/2)
  L_G = BCE(D(G(z, y), y), 1)                                   (non-saturating form of Eq. 3's G term)
  L_C = alpha E[max_y p_c(y|x_u) BCE(D(x_u, y_c), 1)]           (C fools D: the code's "argmax" approximation)
        + CE(C(x_l), y_l)                                        (Eq. 4, R_L: the labelled data)
        + alpha_p CE(C(G(z, y)), y)                              (Eq. 5, R_P: pseudo-discriminative loss)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def bce(logits: jax.Array, target: float, weights: jax.Array | None = None) -> jax.Array:
    """Mean binary cross-entropy of ``logits`` against a constant target (0 or 1), optionally weighted."""
    per = optax.sigmoid_binary_cross_entropy(logits, jnp.full(logits.shape, target, logits.dtype))
    return jnp.mean(per if weights is None else per * weights)


def discriminator_loss(d_real: jax.Array, d_gen: jax.Array, d_cla: jax.Array, alpha: float = 0.5) -> jax.Array:
    """L_D: real labelled pairs are real; generated and classifier-labelled pairs are fake (Eq. 3)."""
    return bce(d_real, 1.0) + (1 - alpha) * bce(d_gen, 0.0) + alpha * bce(d_cla, 0.0)


def generator_loss(d_gen: jax.Array) -> jax.Array:
    """L_G: G fools D on its (G(z, y), y) pairs (non-saturating)."""
    return bce(d_gen, 1.0)


def classifier_loss(d_cla: jax.Array, c_logits_u: jax.Array, c_logits_l: jax.Array, y_l: jax.Array,
                    c_logits_gen: jax.Array, y_gen: jax.Array, alpha: float = 0.5,
                    alpha_p: float = 0.1) -> tuple[jax.Array, dict]:
    """L_C: fool D with confident labels (weighted by max p_c, gradient through p_c), fit the labelled data,
    and classify G's samples as the labels they were drawn for (R_P, Eq. 5)."""
    confidence = jnp.max(jax.nn.softmax(c_logits_u), axis=-1)
    # y_c = argmax is discrete: C's gradient from the adversarial term flows through its confidence only
    adv = alpha * bce(jax.lax.stop_gradient(d_cla), 1.0, weights=confidence)
    labelled = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(c_logits_l, y_l))
    pseudo = alpha_p * jnp.mean(optax.softmax_cross_entropy_with_integer_labels(c_logits_gen, y_gen))
    return adv + labelled + pseudo, {"c_adv": adv, "c_labelled": labelled, "c_pseudo": pseudo}
