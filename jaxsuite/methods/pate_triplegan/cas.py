"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a classifier only on labelled samples (generated
ones, or the real private data for the ``real_data`` upper bound) and report its accuracy on the real held-out
test set. The evaluator's classifier is the same small CNN as C, trained with Adam from its own seed."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.methods.pate_triplegan.model import Classifier


@functools.partial(jax.jit, static_argnames=("graphdef", "steps", "batch_size"))
def _train(graphdef, params, x, y, key, *, steps: int, batch_size: int, lr: float):
    tx = optax.adam(lr)

    def step(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (batch_size,), 0, x.shape[0])

        def loss(p):
            logits = nnx.merge(graphdef, p)(x[idx])
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]))

        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
    return params


def cas_accuracy(train_x, train_y, test_x, test_y, num_classes: int, *, seed: int = 0, steps: int = 1000,
                 batch_size: int = 128, lr: float = 1e-3, channels=(32, 64), hidden: int = 128) -> float:
    """Accuracy on (test_x, test_y) of a CNN trained on (train_x, train_y) for ``steps`` Adam steps."""
    model = Classifier(num_classes, tuple(train_x.shape[1:]), tuple(channels), hidden, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    params = _train(graphdef, params, jnp.asarray(train_x), jnp.asarray(train_y), jax.random.key(seed + 1),
                    steps=steps, batch_size=batch_size, lr=lr)
    model = nnx.merge(graphdef, params)
    preds = np.concatenate([np.asarray(jnp.argmax(model(jnp.asarray(test_x[i:i + 1000])), -1))
                            for i in range(0, len(test_x), 1000)])
    return float(np.mean(preds == np.asarray(test_y)))
