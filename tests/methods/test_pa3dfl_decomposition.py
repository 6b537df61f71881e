"""Pa3dFL's decomposition: a narrow client's weight is exactly the corresponding slice of the full weight, theta_u
is the same for every width, the smallest width has one group; the client CNN and the hyper-network fit together."""
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.pa3dfl import decomposition as dec
from jaxsuite.methods.pa3dfl import server
from jaxsuite.methods.pa3dfl.model import DecomposedCNN, HyperNetwork, cnn_specs

P_MIN = Fraction(1, 4)
WIDTHS = (Fraction(1), Fraction(1, 2), Fraction(1, 4))
CONV = dec.LayerSpec("conv", "conv", 8, 4, 3)
LINEAR = dec.LayerSpec("fc", "linear", 8, 12)
HEAD = dec.LayerSpec("head", "linear", 10, 8, prune_out=False)


@pytest.mark.parametrize("spec", [CONV, LINEAR, HEAD], ids=lambda s: s.name)
@pytest.mark.parametrize("p", WIDTHS[1:], ids=str)
def test_a_narrow_weight_is_the_slice_of_the_full_weight(spec, p):
    u = jax.random.normal(jax.random.key(0), spec.u_shape(P_MIN))
    v = jax.random.normal(jax.random.key(1), spec.v_shape(P_MIN))
    full = dec.compose(spec, u, v, P_MIN, Fraction(1))
    narrow = dec.compose(spec, u, dec.prune_v(spec, v, P_MIN, p), P_MIN, p)
    s_p, t_p = narrow.shape[-2:]
    assert t_p == (spec.out_features * p if spec.prune_out else spec.out_features)
    np.testing.assert_allclose(narrow, full[..., :s_p, :t_p], rtol=1e-5, atol=1e-5)


def test_output_channels_are_groups_of_r1_built_from_the_same_blocks_of_theta_u():
    spec, k = CONV, 3
    r1, r2, g = spec.r1(P_MIN), spec.r2(P_MIN), spec.groups(P_MIN)
    assert (r1, r2, g) == (2, 9, 4)  # R1 = T p_min, R2 = max(min(S, T), k^2), G = T / R1
    u = np.random.default_rng(0).normal(size=spec.u_shape(P_MIN))
    v = np.random.default_rng(1).normal(size=spec.v_shape(P_MIN))
    w = np.asarray(dec.compose(spec, jnp.asarray(u), jnp.asarray(v), P_MIN, Fraction(1)))
    for i in range(k * k):
        for r in range(r1):
            for gg in range(g):
                for s in range(spec.in_features):
                    expect = u[i * r1 + r] @ v[:, gg * spec.in_features + s]
                    assert np.isclose(w[i // k, i % k, s, gg * r1 + r], expect)


def test_theta_u_does_not_depend_on_the_width_and_the_smallest_client_has_one_group():
    for spec in (CONV, LINEAR):
        assert spec.width(P_MIN, P_MIN)[0] == 1
        assert spec.out_width(P_MIN, P_MIN) == spec.r1(P_MIN)
    with pytest.raises(ConfigError, match="whole"):
        dec.LayerSpec("odd", "linear", 6, 4).r1(P_MIN)


def test_client_cnn_and_hypernetwork_fit_together():
    """Shapes only (``eval_shape``): the generated, pruned personal tensors are the client network's at every
    width, theta_u is not pruned, and the network maps images to class logits."""
    specs = cnn_specs(1, (8, 8), 16, 10)
    shapes = {s.name: s.v_shape(P_MIN) for s in specs}

    def generated(p):
        hyper = HyperNetwork(specs, shapes, num_clients=5, embed_dim=6, hidden=12, attention=True, rngs=nnx.Rngs(0))
        return server.prune_generated("pa3dfl", specs, P_MIN, hyper(jnp.asarray(2)), p)

    x = jax.ShapeDtypeStruct((3, 8, 8, 1), jnp.float32)
    sizes = []
    for p in WIDTHS:
        net = nnx.eval_shape(lambda: DecomposedCNN(specs, P_MIN, p, rngs=nnx.Rngs(1)))  # noqa: B023 -- called within this iteration
        mine = jax.eval_shape(lambda: generated(p))  # noqa: B023 -- called within this iteration
        for s in specs:
            assert mine["v"][s.name].shape == net.v[s.name].shape and mine["b"][s.name].shape == net.b[s.name].shape
            assert net.u[s.name].shape == s.u_shape(P_MIN)
        logits = jax.eval_shape(lambda x: DecomposedCNN(specs, P_MIN, p, rngs=nnx.Rngs(1))(x), x)  # noqa: B023 -- called within this iteration
        assert logits.shape == (3, 10)
        sizes.append(sum(np.prod(a.shape) for a in jax.tree.leaves(nnx.state(net, nnx.Param))))
    assert sizes[0] > sizes[1] > sizes[2]


def test_attention_is_a_distribution_and_a_cold_temperature_picks_the_most_similar_client():
    specs = cnn_specs(1, (8, 8), 16, 10)
    hyper = HyperNetwork(specs, {s.name: s.v_shape(P_MIN) for s in specs}, num_clients=5, embed_dim=6, hidden=12,
                         attention=True, rngs=nnx.Rngs(0))
    att = hyper.attention(jnp.asarray(1))
    assert att.shape == (len(specs), 5)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-6)
    hyper.log_tau[...] = jnp.full((len(specs),), -20.0)
    e = hyper.encoded()
    cold = hyper.attention(jnp.asarray(1))
    np.testing.assert_allclose(cold, jax.nn.one_hot(jnp.argmax(e @ e[1]), 5)[None].repeat(len(specs), 0), atol=1e-6)


@pytest.mark.parametrize("k,size", [(3, 7), (5, 6)])
def test_the_im2col_convolution_and_the_reshape_pool_equal_xla_s(k, size):
    from jaxsuite.methods.pa3dfl.model import conv_same, max_pool2

    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    w = jax.random.normal(jax.random.key(1), (k, k, 3, 4))
    want = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(conv_same(x, w), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(max_pool2(x), nnx.max_pool(x, (2, 2), (2, 2)))
