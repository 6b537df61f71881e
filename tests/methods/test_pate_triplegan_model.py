"""Shapes and ranges of the three players; C without convolutions or hidden layer is logistic regression; C's
optimiser is the configured one; a vmapped stack of teacher discriminators equals a loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.pate_triplegan.model import Classifier, Discriminator, Generator
from jaxsuite.methods.pate_triplegan.train import classifier_optimizer


def test_players_shapes_and_ranges():
    g = Generator(16, 10, (8, 8, 1), (32,), rngs=nnx.Rngs(0))
    d = Discriminator(10, (8, 8, 1), (32,), rngs=nnx.Rngs(1))
    c = Classifier(10, (8, 8, 1), (4, 8), 16, rngs=nnx.Rngs(2))
    z, y = jax.random.normal(jax.random.key(0), (5, 16)), jnp.arange(5)
    x = g(z, y)
    assert x.shape == (5, 8, 8, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert d(x, y).shape == (5,) and c(x).shape == (5, 10)


def test_classifier_without_convolutions_or_hidden_layer_is_logistic_regression():
    c = Classifier(10, (8, 8, 1), (), 0, rngs=nnx.Rngs(3))
    params = nnx.state(c, nnx.Param)
    assert sum(p.size for p in jax.tree.leaves(params)) == 64 * 10 + 10
    x = jax.random.uniform(jax.random.key(4), (3, 8, 8, 1))
    np.testing.assert_allclose(np.asarray(c(x)), np.asarray(x.reshape(3, 64) @ c.fc2.kernel[...] + c.fc2.bias[...]),
                               rtol=1e-5, atol=1e-6)
    assert Classifier(10, (8, 8, 1), (4,), 0, rngs=nnx.Rngs(3))(x).shape == (3, 10)  # one conv block, no hidden


def test_classifier_optimizer_is_the_configured_one():
    g = {"w": jnp.array([1.0, -2.0])}
    sgd = classifier_optimizer(ConfigDict({"lr": 1e-3, "beta1": 0.5, "c_optimizer": "sgd", "c_lr": 0.1,
                                           "c_momentum": 0.0}))
    updates, _ = sgd.update(g, sgd.init(g))
    np.testing.assert_allclose(np.asarray(updates["w"]), [-0.1, 0.2], rtol=1e-6)
    adam = classifier_optimizer(ConfigDict({"lr": 1e-3, "beta1": 0.5}))  # old configs: Adam at optim.lr
    updates, _ = adam.update(g, adam.init(g))
    np.testing.assert_allclose(np.asarray(updates["w"]), [-1e-3, 1e-3], rtol=1e-4)
    with pytest.raises(ConfigError, match="optim.c_optimizer"):
        classifier_optimizer(ConfigDict({"lr": 1e-3, "beta1": 0.5, "c_optimizer": "rmsprop"}))


def test_vmapped_teacher_discriminators_equal_a_loop():
    @nnx.vmap(in_axes=0, out_axes=0)
    def make(key):
        return Discriminator(10, (8, 8, 1), (16,), rngs=nnx.Rngs(key))

    teachers = make(jax.random.split(jax.random.key(0), 3))
    graphdef, state = nnx.split(teachers)
    x, y = jax.random.uniform(jax.random.key(1), (4, 8, 8, 1)), jnp.arange(4)

    def apply(s):
        return nnx.merge(graphdef, s)(x, y)

    stacked = jax.vmap(apply)(state)
    for t in range(3):
        one = apply(jax.tree.map(lambda a: a[t], state))  # noqa: B023 -- called within this iteration
        np.testing.assert_allclose(np.asarray(stacked[t]), np.asarray(one), rtol=1e-6)
