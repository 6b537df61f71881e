"""The transformer stacks: masks (chex), causality and padding as properties of the outputs, post- vs pre-LN,
re-injection of encodings, and pure dropout."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxsuite.nn.transformer import Decoder, Encoder, causal_mask, combine_masks, padding_mask

D, H, F = 16, 4, 32


def test_masks_have_the_attention_shape_and_values():
    valid = jnp.array([[True, True, False], [True, False, False]])
    pad = padding_mask(valid)
    chex.assert_shape(pad, (2, 1, 1, 3))
    chex.assert_trees_all_equal(pad[:, 0, 0], valid)
    causal = causal_mask(3)
    chex.assert_shape(causal, (1, 1, 3, 3))
    chex.assert_trees_all_equal(causal[0, 0], jnp.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], bool))
    both = combine_masks(causal, pad, None)
    chex.assert_shape(both, (2, 1, 3, 3))
    chex.assert_trees_all_equal(both[1, 0], jnp.array([[1, 0, 0], [1, 0, 0], [1, 0, 0]], bool))
    assert combine_masks(None, None) is None


@pytest.fixture(scope="module")
def stacks():
    return (Encoder(2, D, H, F, dropout=0.1, rngs=nnx.Rngs(0)), Encoder(2, D, H, F, norm_first=True, rngs=nnx.Rngs(1)),
            Decoder(2, D, H, F, dropout=0.1, rngs=nnx.Rngs(2)))


def _x(seed, length=5, batch=2):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, length, D))


def test_decoder_is_causal_and_ignores_padded_memory(stacks):
    _, _, dec = stacks
    x, memory = _x(0), _x(1, length=4)
    memory_valid = jnp.array([[True, True, True, False], [True, True, False, False]])
    out = dec(x, memory, memory_valid=memory_valid)
    later = x.at[:, 3:].set(_x(2)[:, 3:])  # change positions 3, 4 of the target
    np.testing.assert_allclose(dec(later, memory, memory_valid=memory_valid)[:, :3], out[:, :3], atol=1e-6)
    assert not np.allclose(dec(later, memory, memory_valid=memory_valid)[:, 3:], out[:, 3:])
    padded = memory.at[:, 3:].set(100.0).at[1, 2].set(-100.0)  # change only the padded memory tokens
    np.testing.assert_allclose(dec(x, padded, memory_valid=memory_valid), out, atol=1e-5)


def test_encoder_ignores_padded_keys_and_post_ln_ends_normalised(stacks):
    post, pre, _ = stacks
    x = _x(3)
    valid = jnp.array([[True] * 5, [True, True, True, False, False]])
    mask = padding_mask(valid)
    out = post(x, mask)
    changed = x.at[1, 3:].set(50.0)
    np.testing.assert_allclose(post(changed, mask)[1, :3], out[1, :3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(out).mean(-1), 0.0, atol=1e-5)  # post-LN: the last op is a LayerNorm
    np.testing.assert_allclose(np.asarray(out).std(-1), 1.0, atol=1e-2)
    np.testing.assert_allclose(np.asarray(pre(x)).mean(-1), 0.0, atol=1e-5)  # pre-LN: the final norm


def test_reset_tail_is_set_again_after_every_layer(stacks):
    post, _, _ = stacks
    x, e = _x(4), _x(5)[..., :3]
    manual = x
    for layer in post.layers:
        manual = layer(manual)
        manual = manual.at[..., -3:].set(e)
    out, every = post(x, reset_tail=e, return_all=True)
    np.testing.assert_allclose(out, manual, atol=1e-6)
    np.testing.assert_array_equal(every[0][..., -3:], e)
    assert len(every) == 2


def test_dropout_is_pure_in_the_key_and_off_without_one(stacks):
    post, _, _ = stacks
    x = _x(6)
    np.testing.assert_array_equal(post(x), post(x))
    k1, k2 = jax.random.PRNGKey(7), jax.random.PRNGKey(8)
    np.testing.assert_array_equal(post(x, key=k1), post(x, key=k1))
    assert not np.allclose(post(x, key=k1), post(x, key=k2))
    assert not np.allclose(post(x, key=k1), post(x))
    graphdef, state = nnx.split(post)
    jitted = jax.jit(lambda s, x, k: nnx.merge(graphdef, s)(x, key=k))
    np.testing.assert_allclose(jitted(state, x, k1), post(x, key=k1), atol=1e-5)
