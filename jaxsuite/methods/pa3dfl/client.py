"""A client's local training, pure and vmappable over the clients of one width group.

A client's data are fixed-shape arrays padded to the largest client of the run: ``x`` [n_max, H, W, C], ``y``
[n_max], ``count`` (its real size). Local training is ``steps`` mini-batch SGD steps (momentum, gradient-norm
clip), each batch drawn with replacement from the client's own ``count`` examples, so padding is never read and
every client of a group runs the same compiled loop (``jax.vmap`` over the leading client axis).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx


def local_optimizer(lr: float, momentum: float, weight_decay: float, clip: float) -> optax.GradientTransformation:
    """SGD with momentum and L2 weight decay after a global gradient-norm clip (pFedHN's inner loop)."""
    return optax.chain(optax.clip_by_global_norm(clip), optax.add_decayed_weights(weight_decay),
                       optax.sgd(lr, momentum=momentum or None))


def cross_entropy(graphdef, params, x, y) -> jax.Array:
    logits = nnx.merge(graphdef, params)(x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def local_train(graphdef, params, data: dict, key: jax.Array, tx: optax.GradientTransformation, *, steps: int,
                batch_size: int):
    """``params`` after ``steps`` local SGD steps on the client's data; also the mean training loss."""
    def one(carry, k):
        prm, opt = carry
        pick = jax.random.randint(k, (batch_size,), 0, data["count"])
        loss, grads = jax.value_and_grad(lambda q: cross_entropy(graphdef, q, data["x"][pick], data["y"][pick]))(prm)
        updates, opt = tx.update(grads, opt, prm)
        return (optax.apply_updates(prm, updates), opt), loss

    (params, _), losses = jax.lax.scan(one, (params, tx.init(params)), jax.random.split(key, steps))
    return params, jnp.mean(losses)


def accuracy(graphdef, params, data: dict) -> jax.Array:
    """Accuracy on the client's ``count`` real examples (padding masked)."""
    logits = nnx.merge(graphdef, params)(data["x"])
    valid = jnp.arange(data["y"].shape[0]) < data["count"]
    return jnp.sum((jnp.argmax(logits, -1) == data["y"]) & valid) / data["count"]
