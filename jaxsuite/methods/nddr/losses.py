"""Task losses of NDDR-CNN (Sec. 4.1 of the paper, ops/losses.py of the official code).

The total loss is the unweighted sum of the task losses (Eq. (5) with equal task weights, except the
normals weight below); weight decay is not a loss term here but ``optax.add_decayed_weights`` in the
optimiser (train.make_optimizer).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

IGNORE = 255


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy, one label per image (multi-digit tasks)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def segmentation_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-pixel softmax cross-entropy averaged over labelled pixels; label 255 is ignored (NYUv2 void)."""
    valid = labels != IGNORE
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
    return jnp.sum(ce * valid) / jnp.maximum(valid.sum(), 1)


def normals_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Cosine distance 1 - <n_hat, n> between the L2-normalised prediction and the unit target,
    averaged over valid pixels (targets of zero length are invalid)."""
    valid = jnp.sum(target * target, -1) > 0.5
    n_hat = pred / jnp.maximum(jnp.linalg.norm(pred, axis=-1, keepdims=True), 1e-6)
    dist = 1.0 - jnp.sum(n_hat * target, -1)
    return jnp.sum(dist * valid) / jnp.maximum(valid.sum(), 1)


def task_loss(kind: str, output: jax.Array, target: jax.Array) -> jax.Array:
    if kind == "classification":
        return classification_loss(output, target)
    if kind == "segmentation":
        return segmentation_loss(output, target)
    if kind == "normals":
        return normals_loss(output, target)
    raise ValueError(f"unknown task kind {kind!r}")
