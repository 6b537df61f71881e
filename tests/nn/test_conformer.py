"""Conformer: shapes, the relative shift, and that padding never reaches real frames."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.nn.conformer import Conformer, rel_shift, subsampled_lengths


def test_rel_shift_picks_relative_position_i_minus_j():
    length = 5
    rel = jnp.arange(length - 1, -length, -1)  # the positions of the 2L-1 encodings
    scores = jnp.broadcast_to(rel, (2, length, 2 * length - 1)).astype(jnp.float32)
    shifted = np.asarray(rel_shift(scores))
    i, j = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
    np.testing.assert_array_equal(shifted[0], i - j)


def test_conformer_output_ignores_padding():
    model = Conformer(16, 32, 2, 4, kernel=5, vgg_channels=(2, 4), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 40, 16))
    lengths = jnp.array([40, 22])
    out, out_len = model(x, lengths)
    assert out.shape == (2, 10, 32) and list(out_len) == [10, 6] == list(subsampled_lengths(lengths))
    noisy = x.at[1, 22:].set(100.0)
    out2, _ = model(noisy, lengths)
    np.testing.assert_allclose(out[1, :6], out2[1, :6], atol=1e-5)
    # train mode (BatchNorm on real frames only) is also blind to the padding
    a, _ = model(x, lengths, train=True)
    b, _ = model(noisy, lengths, train=True)
    np.testing.assert_allclose(a[1, :6], b[1, :6], atol=1e-4)
