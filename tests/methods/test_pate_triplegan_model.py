"""Shapes and ranges of the three players; a vmapped stack of teacher discriminators equals a loop."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.methods.pate_triplegan.model import Classifier, Discriminator, Generator


def test_players_shapes_and_ranges():
    g = Generator(16, 10, (8, 8, 1), (32,), rngs=nnx.Rngs(0))
    d = Discriminator(10, (8, 8, 1), (32,), rngs=nnx.Rngs(1))
    c = Classifier(10, (8, 8, 1), (4, 8), 16, rngs=nnx.Rngs(2))
    z, y = jax.random.normal(jax.random.key(0), (5, 16)), jnp.arange(5)
    x = g(z, y)
    assert x.shape == (5, 8, 8, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert d(x, y).shape == (5,) and c(x).shape == (5, 10)


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
        one = apply(jax.tree.map(lambda a: a[t], state))
        np.testing.assert_allclose(np.asarray(stacked[t]), np.asarray(one), rtol=1e-6)
