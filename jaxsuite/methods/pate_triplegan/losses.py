"""The Triple-GAN game (Li, Xu, Zhu, Zhang, NIPS 2017, Eq. 3-5), written as in its official code
(zhenxuan00/triple-gan, ``x2y_yz2x_xy2p_ssl_mnist.py``) with logits instead of probabilities.

Players: generator G(z, y) -> x, classifier C(x) -> p_c(y | x), discriminator D(x, y) -> logit of "a real
pair". Pairs: real labelled (x, y); generated (G(z, y), y); classifier-labelled (x_u, argmax C(x_u)).

  L_D = BCE(D(x, y), 1) + (1 - alpha) BCE(D(G(z, y), y), 0) + alpha BCE(D(x_u, y_c), 0)     (Eq. 3; alpha = 1/2)
  L_G = BCE(D(G(z, y), y), 1)                                   (non-saturating form of Eq. 3's G term)
  L_C = alpha E[max_y p_c(y|x_u) BCE(D(x_u, y_c), 1)]           (C fools D: the code's "argmax" approximation)
        + CE(C(x_l), y_l)                                        (Eq. 4, R_L: the labelled data)
        + alpha_p CE(C(G(z, y)), y)                              (Eq. 5, R_P: pseudo-discriminative loss)

``pseudo_pairs="real"`` is our variant reading of "C pre-labels the unlabelled data": the classifier pairs count
as real pairs (weight alpha, confidence-weighted) and the generated pairs get weight 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def bce(logits: jax.Array, target: float, weights: jax.Array | None = None) -> jax.Array:
    """Mean binary cross-entropy of ``logits`` against a constant target (0 or 1), optionally weighted."""
    per = optax.sigmoid_binary_cross_entropy(logits, jnp.full(logits.shape, target, logits.dtype))
    return jnp.mean(per if weights is None else per * weights)


def pseudo_pair_role(alpha: float, pseudo_pairs: str = "fake") -> tuple[float, float]:
    """(weight of the generated pairs, target of the classifier pairs) in L_D."""
    return (1 - alpha, 0.0) if pseudo_pairs == "fake" else (1.0, 1.0)


def discriminator_loss(d_real: jax.Array, d_gen: jax.Array, d_cla: jax.Array | None = None,
                       confidence: jax.Array | None = None, alpha: float = 0.5,
                       pseudo_pairs: str = "fake") -> jax.Array:
    """L_D (Eq. 3): real labelled pairs are real; generated pairs fake; classifier pairs (weight alpha, each
    weighted by C's confidence if given) fake, or real with ``pseudo_pairs="real"``. Without classifier pairs:
    the conditional GAN's loss."""
    if d_cla is None:
        return bce(d_real, 1.0) + bce(d_gen, 0.0)
    w_gen, target = pseudo_pair_role(alpha, pseudo_pairs)
    return bce(d_real, 1.0) + w_gen * bce(d_gen, 0.0) + alpha * bce(d_cla, target, weights=confidence)


def generator_loss(d_gen: jax.Array) -> jax.Array:
    """L_G: G fools D on its (G(z, y), y) pairs (non-saturating)."""
    return bce(d_gen, 1.0)


def classifier_adversarial(d_cla: jax.Array, c_logits_u: jax.Array, alpha: float = 0.5) -> jax.Array:
    """C's adversarial term per example: fool D with its confident labels, weighted by max p_c; y_c = argmax is
    discrete, so C's gradient flows through its confidence only and D gets none."""
    confidence = jnp.max(jax.nn.softmax(c_logits_u), axis=-1)
    return alpha * confidence * optax.sigmoid_binary_cross_entropy(jax.lax.stop_gradient(d_cla), 1.0)


def pseudo_discriminative(c_logits_gen: jax.Array, y_gen: jax.Array, alpha_p: float = 0.1) -> jax.Array:
    """R_P (Eq. 5): C labels G's samples as the labels they were drawn for."""
    return alpha_p * jnp.mean(optax.softmax_cross_entropy_with_integer_labels(c_logits_gen, y_gen))


def student_loss(c_logits_query: jax.Array, answers: jax.Array, y_query: jax.Array, keep: str = "all") -> jax.Array:
    """C's PATE student term: cross-entropy to the GNMax answers about generated images (the label the teachers'
    noisy plurality gives each image). ``keep="agreeing"`` learns only the images whose answer is the label G drew
    them for: the teachers, who saw real private images, vouch for those samples, so this is R_P (Eq. 5) restricted
    to the samples the private data confirms, and a wrong answer (GNMax's noise, or a teacher's error) reaches C
    only if it lands on G's own label by chance."""
    ce = optax.softmax_cross_entropy_with_integer_labels(c_logits_query, answers)
    if keep == "all":
        return jnp.mean(ce)
    if keep == "agreeing":
        agree = (answers == y_query).astype(ce.dtype)
        return jnp.sum(agree * ce) / jnp.maximum(jnp.sum(agree), 1.0)
    raise ValueError(f"keep must be 'all' or 'agreeing', got {keep!r}")


def classifier_loss(d_cla: jax.Array, c_logits_u: jax.Array, c_logits_l: jax.Array, y_l: jax.Array,
                    c_logits_gen: jax.Array, y_gen: jax.Array, alpha: float = 0.5,
                    alpha_p: float = 0.1) -> tuple[jax.Array, dict]:
    """L_C (Eq. 4-5): the adversarial term on unlabelled data, R_L on the labelled data, R_P on G's samples."""
    adv = jnp.mean(classifier_adversarial(d_cla, c_logits_u, alpha))
    labelled = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(c_logits_l, y_l))
    pseudo = pseudo_discriminative(c_logits_gen, y_gen, alpha_p)
    return adv + labelled + pseudo, {"c_adv": adv, "c_labelled": labelled, "c_pseudo": pseudo}
