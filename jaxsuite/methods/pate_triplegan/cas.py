"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a classifier only on labelled samples (generated
ones, or the real private data for the ``real_data`` upper bound) and report its accuracy on the real held-out
test set. The evaluator's classifier is the model's ``Classifier`` with the CNN architecture of config keys
``cas.channels`` / ``cas.hidden`` (whatever C's own), trained with Adam from its own seed."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.methods.pate_triplegan.model import Classifier


@functools.partial(jax.jit, static_argnames=("graphdef", "batch_size", "lr"))
def _step(graphdef, params, opt_state, x, y, key, *, batch_size: int, lr: float):
    """One Adam step on a mini-batch drawn with replacement; the data are arguments (not baked-in constants), so
    every CAS run of the same shapes reuses one compiled step."""
    tx = optax.adam(lr)
    idx = jax.random.randint(key, (batch_size,), 0, x.shape[0])

    def loss(p):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(x[idx]), y[idx]))

    updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def cas_accuracy(train_x, train_y, test_x, test_y, num_classes: int, *, seed: int = 0, steps: int = 1000,
                 batch_size: int = 128, lr: float = 1e-3, channels=(32, 64), hidden: int = 128) -> float:
    """Accuracy on (test_x, test_y) of a CNN trained on (train_x, train_y) for ``steps`` Adam steps on
    mini-batches drawn with replacement. A host loop of one jitted step: on CPU, XLA runs convolutions inside
    ``lax.scan`` about 4x slower than the same step called from Python."""
    model = Classifier(num_classes, tuple(train_x.shape[1:]), tuple(channels), hidden, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    opt_state = optax.adam(lr).init(params)
    x, y = jnp.asarray(train_x), jnp.asarray(train_y)
    for key in jax.random.split(jax.random.key(seed + 1), steps):
        params, opt_state = _step(graphdef, params, opt_state, x, y, key, batch_size=batch_size, lr=lr)
    preds = predict(nnx.merge(graphdef, params), test_x)
    return float(np.mean(preds == np.asarray(test_y)))


def predict(classifier, x: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """argmax class of ``classifier`` on ``x``, in chunks."""
    fn = jax.jit(lambda xs: jnp.argmax(classifier(xs), -1))
    return np.concatenate([np.asarray(fn(jnp.asarray(x[i:i + chunk]))) for i in range(0, len(x), chunk)])
