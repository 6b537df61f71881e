"""Ghost clipping equals the vmap path (jax-privacy's per-example gradients): per-example norms and clipped sums
for every supported layer type, for layers it does not know (announced fallback), tied and shared weights, and
for a batch sharded over the mesh."""
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsuite.core.sharding import DATA_AXIS, make_mesh
from jaxsuite.privacy import dpsgd, ghost_rules

B = 8


class EveryLayer(nnx.Module):
    """Embed, LayerNorm, LinearGeneral (in and out of heads), RMSNorm, 1-D Conv with input dilation, 2-D Convs
    (SAME with stride, explicit asymmetric padding with kernel dilation), Linear on a sequence and on a vector.
    ``wide`` and ``conv_wide`` have T (p + q) < p q, so their norms take the ghost form; the other sequence
    layers take the direct form."""

    def __init__(self, rngs):
        self.embed = nnx.Embed(11, 8, rngs=rngs)
        self.ln = nnx.LayerNorm(8, rngs=rngs)
        self.heads_in = nnx.LinearGeneral(8, (2, 4), rngs=rngs)
        self.heads_out = nnx.LinearGeneral((2, 4), 8, axis=(-2, -1), rngs=rngs)
        self.rms = nnx.RMSNorm(8, rngs=rngs)
        self.seq_conv = nnx.Conv(8, 6, (3,), padding=((1, 2),), input_dilation=2, rngs=rngs)
        self.conv = nnx.Conv(3, 5, (3, 3), strides=2, padding="SAME", rngs=rngs)
        self.dilated = nnx.Conv(5, 4, (2, 2), padding=((1, 0), (0, 1)), kernel_dilation=2, use_bias=False, rngs=rngs)
        self.seq_dense = nnx.Linear(8, 8, rngs=rngs)
        self.wide = nnx.Linear(8, 16, rngs=rngs)
        self.conv_wide = nnx.Conv(5, 8, (3, 3), padding="VALID", rngs=rngs)
        self.head = nnx.Linear(8 + 4 + 6 + 16 + 8, 3, rngs=rngs)

    def __call__(self, ids, img):
        h = self.ln(self.embed(ids))
        h = self.rms(h + self.heads_out(jax.nn.gelu(self.heads_in(h))))
        h = jnp.tanh(self.seq_dense(h))
        seq = jnp.mean(self.seq_conv(h), axis=1)
        c1 = jax.nn.relu(self.conv(img))
        c, wide = self.dilated(c1), self.conv_wide(c1)
        return self.head(jnp.concatenate([h.mean(1), c.mean((1, 2)), seq, self.wide(h).mean(1), wide.mean((1, 2))], -1))


class Fallbacks(nnx.Module):
    """What ghost clipping does not tap: BatchNorm (unknown), a tied embedding read again by ``attend``, a Linear
    inside ``jax.checkpoint``; and what it does: one Linear called twice (its calls are summed per example)."""

    def __init__(self, rngs):
        self.embed = nnx.Embed(11, 6, rngs=rngs)
        self.shared = nnx.Linear(6, 6, rngs=rngs)
        self.inner = nnx.Linear(6, 6, rngs=rngs)
        self.bn = nnx.BatchNorm(6, use_running_average=True, rngs=rngs)

    def __call__(self, ids, img):
        h = self.embed(ids)
        h = self.shared(jax.nn.relu(self.shared(h)))
        h = jax.checkpoint(lambda v: self.inner(v))(h)
        return self.embed.attend(self.bn(h).mean(1))[:, :3]


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones(B, np.float32)
    mask[-2:] = 0.0  # padding slots of a Poisson batch
    return {"ids": jnp.asarray(rng.integers(0, 11, (B, 5)), jnp.int32),
            "img": jnp.asarray(rng.normal(size=(B, 7, 7, 3)), jnp.float32),
            "y": jnp.asarray(rng.integers(0, 3, B), jnp.int32), "mask": jnp.asarray(mask)}


def _loss_and_params(model_cls):
    graphdef, params, rest = nnx.split(model_cls(nnx.Rngs(0)), nnx.Param, ...)

    def loss(p, one):  # one example (a batch of one), masked
        logits = nnx.merge(graphdef, p, rest)(one["ids"], one["img"])
        return jnp.sum(one["mask"] * (jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(
            logits, one["y"][:, None], -1)[:, 0]))
    return loss, params


@pytest.fixture(scope="module")
def every_layer():
    loss, params = _loss_and_params(EveryLayer)
    fns = {m: jax.jit(dpsgd.clipped_grad_sum(loss, 0.5, return_norms=True, clipping=m)) for m in dpsgd.CLIPPING}
    return fns, params


def _assert_same(fns, params, batch):
    (ref, ref_norms), (got, got_norms) = fns["vmap"](params, batch), fns["ghost"](params, batch)
    np.testing.assert_allclose(got_norms, ref_norms, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(got, ref, atol=1e-5, rtol=1e-5)
    return ref_norms


@pytest.mark.parametrize("seed", [0, 1])
def test_every_supported_layer_gives_the_vmap_norms_and_clipped_sums(every_layer, seed):
    fns, params = every_layer
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every parameter is covered: no fallback announced
        norms = _assert_same(fns, params, _batch(seed))
    assert np.all(np.asarray(norms[-2:]) == 0) and np.all(np.asarray(norms[:-2]) > 0.5)  # clipping is active


def test_unknown_tied_and_nested_layers_fall_back_to_exact_per_example_gradients():
    loss, params = _loss_and_params(Fallbacks)
    fns = {m: jax.jit(dpsgd.clipped_grad_sum(loss, 0.3, return_norms=True, clipping=m)) for m in dpsgd.CLIPPING}
    with pytest.warns(UserWarning, match="per-example gradients") as record:
        _assert_same(fns, params, _batch(2))
    text = " ".join(str(w.message) for w in record if "ghost clipping" in str(w.message))
    for path in ("bn/scale", "bn/bias", "embed/embedding", "inner/kernel"):
        assert path in text
    assert "shared/" not in text  # a layer called twice is still ghost-clipped


def test_a_batch_sharded_over_the_mesh_gives_the_same_norms_and_sums(every_layer):
    fns, params = every_layer
    mesh = make_mesh(4)
    batch = _batch(3)
    sharded = jax.device_put(batch, NamedSharding(mesh, P(DATA_AXIS)))
    assert len(sharded["img"].sharding.device_set) == 4
    (ref, ref_norms), (got, got_norms) = fns["ghost"](params, batch), fns["ghost"](params, sharded)
    np.testing.assert_allclose(got_norms, ref_norms, rtol=1e-6)
    chex.assert_trees_all_close(got, ref, atol=1e-6)


def test_clipping_must_be_vmap_or_ghost():
    with pytest.raises(ValueError, match="clipping must be one of"):
        dpsgd.clipped_grad_sum(lambda p, b: 0.0, 1.0, clipping="book")


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 9), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_ghost_and_direct_norm_forms_agree_and_the_certified_norm_bounds_the_true_one(t, p, q, seed):
    rng = np.random.default_rng(seed)
    a, g = (jnp.asarray(rng.normal(size=(3, t, n)), jnp.float32) for n in (p, q))
    exact = np.sum(np.einsum("btp,btq->bpq", np.asarray(a, np.float64), np.asarray(g, np.float64)) ** 2, axis=(1, 2))
    for form in (ghost_rules.ghost_sq_norms, ghost_rules.direct_sq_norms):
        np.testing.assert_allclose(form(a, g), exact, rtol=1e-4, atol=1e-5)
    upper, ok, _ = (np.asarray(v, np.float64) for v in ghost_rules.certified(a, g))
    assert np.all(upper >= exact)  # a rigorous bound: never below the true squared norm
    tol = ghost_rules.norm_tolerance(t, p, q)
    assert np.all(np.where(ok, upper <= exact * (1 + 2 * tol) + 1e-30, True))


def test_a_loss_that_calls_its_layers_differently_on_each_trace_is_refused():
    graphdef, params = nnx.split(nnx.Linear(3, 3, rngs=nnx.Rngs(0)))
    traces = []

    def loss(p, one):  # a hidden Python counter: the second trace calls the layer twice
        traces.append(1)
        layer = nnx.merge(graphdef, p)
        y = layer(one["x"])
        return jnp.sum(layer(y) if len(traces) > 1 else y)

    with pytest.raises(RuntimeError, match="ghost clipping: the loss called"):
        dpsgd.clipped_grad_sum(loss, 1.0, clipping="ghost")(params, {"x": jnp.ones((4, 3))})
