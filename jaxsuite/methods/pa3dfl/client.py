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


def clipped_sgd(lr: float, momentum: float, weight_decay: float, clip: float) -> optax.GradientTransformation:
    """SGD with momentum and L2 weight decay after a global gradient-norm clip (pFedHN's inner and outer loops,
    HeteroFL's local training)."""
    return optax.chain(optax.clip_by_global_norm(clip), optax.add_decayed_weights(weight_decay),
                       optax.sgd(lr, momentum=momentum or None))


def cross_entropy(graphdef, params, x, y, keep=None) -> jax.Array:
    logits = nnx.merge(graphdef, params)(x, keep)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def local_train(graphdef, params, data: dict, key: jax.Array, tx: optax.GradientTransformation, *, steps: int,
                batch_size: int, keep_fn=None):
    """``params`` after ``steps`` local SGD steps on the client's data; also the mean training loss.
    ``keep_fn(key)``: a fresh channel mask per step (FjORD's ordered dropout), passed to the network."""
    def one(carry, k):
        prm, opt = carry
        k_pick, k_keep = jax.random.split(k)
        pick = jax.random.randint(k_pick, (batch_size,), 0, data["count"])
        keep = None if keep_fn is None else keep_fn(k_keep)
        loss, grads = jax.value_and_grad(lambda q: cross_entropy(graphdef, q, data["x"][pick], data["y"][pick],
                                                                 keep))(prm)
        updates, opt = tx.update(grads, opt, prm)
        return (optax.apply_updates(prm, updates), opt), loss

    (params, _), losses = jax.lax.scan(one, (params, tx.init(params)), jax.random.split(key, steps))
    return params, jnp.mean(losses)


def accuracy(graphdef, params, data: dict) -> jax.Array:
    """Accuracy on the client's ``count`` real examples (padding masked)."""
    logits = nnx.merge(graphdef, params)(data["x"])
    valid = jnp.arange(data["y"].shape[0]) < data["count"]
    return jnp.sum((jnp.argmax(logits, -1) == data["y"]) & valid) / data["count"]


def over_clients(fn, args: tuple, chunk: int):
    """``fn`` applied to every client's slice of ``args`` (leading client axis): one ``jax.vmap`` over all of them
    (``chunk`` = 0), or ``jax.lax.map`` over chunks of ``chunk`` clients vmapped together. On CPU, chunk 1 is much
    faster for conv networks: a vmap over per-client conv weights becomes a grouped convolution, which XLA:CPU
    runs far below the speed of the ungrouped ones."""
    if chunk == 0:
        return jax.vmap(fn)(*args)
    return jax.lax.map(lambda a: fn(*a), args, batch_size=chunk)


def for_each(tree, m: int):
    """``tree`` repeated for ``m`` clients along a new leading axis (what a server sends every client alike)."""
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (m, *a.shape)), tree)
