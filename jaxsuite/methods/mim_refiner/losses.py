"""MIM-Refiner's nearest-neighbour alignment (NNA) loss, exactly as the official ``NnclrLoss`` computes it
(paper Sec. 3, Eq. (1): NNCLR with the negatives left un-swapped).

For a teacher (global) view a and a predicting view b != a, with z the L2-normalised projections, NN(z) the
normalised queue neighbour and p the normalised predictions over the whole (global) batch:

    logit_ii = NN(z_a,i) . p_b,i / tau        (positive: the neighbour of the sample's own projection)
    logit_ij = z_a,i . p_b,j / tau, j != i    (negatives: the *un-swapped* projections)
    loss(a, b) = mean_i CE(logits_i, i)

averaged over all ordered global pairs (a != b) and all (global a, local b) pairs together.

The official local-view loop indexes ``predicted[:, ii]`` for the ii-th local view without offsetting by
the number of global views, so its "local" terms pair each teacher view with the *global* predictions
(including a view with itself) and most local predictions never enter the loss. ``local_indexing="fixed"``
(the default here) uses the local views' own predictions, as the paper describes; ``"official"`` reproduces
the released behaviour.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def l2_normalize(x: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm (``F.normalize``: norms clamped at 1e-12)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def nna_pair_loss(pre: jax.Array, post: jax.Array, pred: jax.Array, temperature: float) -> tuple[jax.Array, jax.Array]:
    """One (teacher view, predicting view) term on normalised [B, D] inputs: (loss, mean alignment)."""
    pos = jnp.sum(post * pred, axis=-1) / temperature
    logits = (pre @ pred.T / temperature)
    logits = logits.at[jnp.arange(pre.shape[0]), jnp.arange(pre.shape[0])].set(pos)
    labels = jnp.arange(pre.shape[0])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    alignment = jax.lax.stop_gradient(jax.nn.softmax(logits, axis=-1)[labels, labels].mean())
    return loss, alignment


def nna_loss(projected: jax.Array, swapped: jax.Array, predicted: jax.Array, temperature: float,
             local_indexing: str = "fixed") -> tuple[jax.Array, dict]:
    """``projected`` / ``swapped`` [B, G, D] (teacher projections, their queue neighbours), ``predicted``
    [B, G + L, D] (global views first). Returns (total loss, {global_loss, local_loss, global_alignment})."""
    if local_indexing not in ("fixed", "official"):
        raise ValueError(f"local_indexing must be 'fixed' or 'official', got {local_indexing!r}")
    pre, post, pred = l2_normalize(projected), l2_normalize(swapped), l2_normalize(predicted)
    g = pre.shape[1]
    n_local = pred.shape[1] - g
    glob = [nna_pair_loss(pre[:, a], post[:, a], pred[:, b], temperature) for a in range(g) for b in range(g) if a != b]
    offset = g if local_indexing == "fixed" else 0
    loc = [nna_pair_loss(pre[:, a], post[:, a], pred[:, offset + b], temperature)
           for a in range(g) for b in range(n_local)]
    total = sum(t[0] for t in glob + loc) / max(1, len(glob) + len(loc))
    metrics = {"global_loss": sum(t[0] for t in glob) / max(1, len(glob)),
               "global_alignment": sum(t[1] for t in glob) / max(1, len(glob))}
    if loc:
        metrics["local_loss"] = sum(t[0] for t in loc) / len(loc)
    return total, metrics
