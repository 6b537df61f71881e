"""An adversary's audit of the clipped sum (issue 33): for every supported layer type and form, inputs built to
break the per-example bound -- positions or patches that cancel (the crafted family x_1 = s u + d, x_2 = -s u,
s from 1e2 to 1e6), outliers (inputs x 1e3), NaN and Inf -- and a float64 check on the host that

- removing one example moves the clipped sum by at most C (1 + 1e-5), replacing it by at most 2 C (1 + 1e-5);
- the ghost path equals the vmap path wherever both are finite;
- an example with a non-finite norm contributes zero and is counted, never dropped silently.

Removing an example is what a Poisson batch does to it: its mask slot goes to 0 (its loss, and so its gradient,
is zero), the shapes stay. The search over random draws is under the ``slow`` marker."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.privacy import dpsgd, ghost_rules

C = 1.0
B = 16
TOL = 1e-5
SCALES = (1e2, 1e3, 1e4, 1e5, 1e6)


class DenseGhost(nnx.Module):
    """The issue's reproduction: a 64x64 Linear on two positions (ghost form: T (p + q) < p q), mean, head."""
    shape = (2, 64)

    def __init__(self, rngs):
        self.l1, self.head = nnx.Linear(64, 64, rngs=rngs), nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        return self.head(self.l1(x).mean(1))


class DenseDirect(nnx.Module):
    """An 8x8 Linear on 16 positions (direct form), through a LinearGeneral into two heads."""
    shape = (16, 8)

    def __init__(self, rngs):
        self.l1 = nnx.Linear(8, 8, rngs=rngs)
        self.heads = nnx.LinearGeneral(8, (2, 4), rngs=rngs)
        self.head = nnx.LinearGeneral((2, 4), 10, axis=(-2, -1), rngs=rngs)

    def __call__(self, x):
        return self.head(jnp.tanh(self.heads(self.l1(x).mean(1))))


class ConvGhost(nnx.Module):
    """A 3x3 Conv with 16 -> 32 channels on 4x4 images (4 output pixels: the ghost form), mean, head."""
    shape = (4, 4, 16)

    def __init__(self, rngs):
        self.conv, self.head = nnx.Conv(16, 32, (3, 3), padding="VALID", rngs=rngs), nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.head(self.conv(x).mean((1, 2)))


class ConvDirect(nnx.Module):
    """A 3x3 Conv with 3 -> 4 channels on 8x8 images, SAME padding (64 output pixels: the direct form)."""
    shape = (8, 8, 3)

    def __init__(self, rngs):
        self.conv, self.head = nnx.Conv(3, 4, (3, 3), padding="SAME", rngs=rngs), nnx.Linear(4, 10, rngs=rngs)

    def __call__(self, x):
        return self.head(self.conv(x).mean((1, 2)))


class EmbedNorms(nnx.Module):
    """Embed, LayerNorm and RMSNorm on 6 tokens, the positions signed +-1 (so that a repeated token's row
    gradients cancel), mean, head. Its input is token ids (floats here, cast), so outliers are ids, not scales."""
    shape = (6,)
    SIGNS = jnp.asarray([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])

    def __init__(self, rngs):
        self.embed = nnx.Embed(11, 16, rngs=rngs)
        self.ln, self.rms = nnx.LayerNorm(16, rngs=rngs), nnx.RMSNorm(16, rngs=rngs)
        self.head = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
        h = self.rms(self.ln(self.embed(x.astype(jnp.int32))))
        return self.head(jnp.mean(h * self.SIGNS[:, None], axis=1))


MODELS = (DenseGhost, DenseDirect, ConvGhost, ConvDirect, EmbedNorms)


def _crafted(model_cls, s: float, rng) -> np.ndarray:
    """One input whose positions (or patches) cancel in the layer's gradient, at scale ``s``."""
    shape = model_cls.shape
    if model_cls is EmbedNorms:  # one token everywhere: its row's gradients cancel across the signed positions
        return np.full(shape, rng.integers(0, 11), np.float32)
    u, d = rng.normal(size=shape[-1]), rng.normal(size=shape)
    if len(shape) == 2:  # sequences: x_t = +-s u (+ d at the first position)
        signs = np.where(np.arange(shape[0]) % 2 == 0, 1.0, -1.0)[:, None]
        x = s * signs * u + np.where(np.arange(shape[0])[:, None] == 0, d, 0.0)
    else:  # images: rows alternate +-s u, so every 2x2 block (what the patches sum over) cancels
        signs = np.where(np.arange(shape[0]) % 2 == 0, 1.0, -1.0)[:, None, None]
        x = s * signs * u + 1e-3 * s * d * (rng.random(shape) < 0.05)
    return x.astype(np.float32)


def _ordinary(model_cls, n: int, rng) -> np.ndarray:
    if model_cls is EmbedNorms:
        return rng.integers(0, 11, (n, *model_cls.shape)).astype(np.float32)
    return rng.normal(size=(n, *model_cls.shape)).astype(np.float32)


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: m.__name__)
def clipped(request):
    """(model class, {clipping: jitted fn(params, batch) -> (sum as float64 vector, norms, stats)}, params)."""
    model_cls = request.param
    graphdef, params, rest = nnx.split(model_cls(nnx.Rngs(0)), nnx.Param, ...)

    def loss(p, one):
        logits = nnx.merge(graphdef, p, rest)(one["x"])
        ce = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, one["y"][:, None], -1)[:, 0]
        return jnp.sum(one["mask"] * ce)

    fns = {m: jax.jit(dpsgd.clipped_grad_sum(loss, C, return_norms=True, return_stats=True, clipping=m))
           for m in dpsgd.CLIPPING}

    def run(mode, x, y, mask):
        total, norms, stats = fns[mode](params, {"x": jnp.asarray(x), "y": jnp.asarray(y), "mask": jnp.asarray(mask)})
        flat = np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(total)])
        return flat, np.asarray(norms), {k: int(v) for k, v in stats.items()}

    return model_cls, run


def _neighbours(model_cls, run, mode, x_special, rng):
    """(||S(D) - S(D - x)||, ||S(D) - S(D - x + ordinary)||, stats of D) for a batch of B - 1 ordinary
    examples and ``x_special`` in the last slot."""
    x = np.concatenate([_ordinary(model_cls, B - 1, rng), x_special[None]])
    y = rng.integers(0, 10, B).astype(np.int32)
    mask = np.ones(B, np.float32)
    full, norms, stats = run(mode, x, y, mask)
    removed, _, _ = run(mode, x, y, np.where(np.arange(B) == B - 1, 0.0, 1.0).astype(np.float32))
    x_rep = x.copy()
    x_rep[-1] = _ordinary(model_cls, 1, rng)[0]
    replaced, _, _ = run(mode, x_rep, y, mask)
    assert np.all(np.isfinite(full)), f"{mode}: the clipped sum is not finite"
    return np.linalg.norm(full - removed), np.linalg.norm(full - replaced), stats, norms


@pytest.mark.parametrize("mode", dpsgd.CLIPPING)
def test_crafted_cancellation_cannot_push_one_example_past_the_clip(clipped, mode):
    model_cls, run = clipped
    rng = np.random.default_rng(0)
    for s in SCALES:
        for _ in range(3):
            remove, replace, _, _ = _neighbours(model_cls, run, mode, _crafted(model_cls, s, rng), rng)
            assert remove <= C * (1 + TOL), f"{model_cls.__name__} {mode} s={s:g}: remove-one moved {remove}"
            assert replace <= 2 * C * (1 + TOL), f"{model_cls.__name__} {mode} s={s:g}: replace-one moved {replace}"


def test_both_ways_of_building_the_rerouted_gradients_keep_the_bound(monkeypatch):
    """The rerouted examples' gradients are built in every step where that is cheap next to the Grams, else under
    ``lax.cond``; the small test layers take the second way, so the first is forced here."""
    monkeypatch.setattr(ghost_rules, "SLOTS_ALWAYS_BUILT", math.inf)
    for model_cls in (DenseGhost, ConvGhost):
        graphdef, params, rest = nnx.split(model_cls(nnx.Rngs(0)), nnx.Param, ...)

        def loss(p, one, graphdef=graphdef, rest=rest):
            logits = nnx.merge(graphdef, p, rest)(one["x"])
            return jnp.sum(one["mask"] * _ce(logits, one["y"]))

        fn = jax.jit(dpsgd.clipped_grad_sum(loss, C, return_norms=True, return_stats=True, clipping="ghost"))

        def run(mode, x, y, mask, fn=fn, params=params):
            total, norms, stats = fn(params, {"x": jnp.asarray(x), "y": jnp.asarray(y), "mask": jnp.asarray(mask)})
            flat = np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree.leaves(total)])
            return flat, np.asarray(norms), {k: int(v) for k, v in stats.items()}

        rng = np.random.default_rng(5)
        for s in (1e3, 1e6):
            remove, replace, stats, _ = _neighbours(model_cls, run, "ghost", _crafted(model_cls, s, rng), rng)
            assert remove <= C * (1 + TOL) and replace <= 2 * C * (1 + TOL), (model_cls.__name__, s)
            assert stats["rerouted"] == 1


def test_ghost_reroutes_the_crafted_examples_it_cannot_certify(clipped):
    model_cls, run = clipped
    if model_cls is not DenseGhost and model_cls is not ConvGhost:
        pytest.skip("no ghost-form layer: every route is the per-example tensor's own")
    rng = np.random.default_rng(1)
    _, _, stats, _ = _neighbours(model_cls, run, "ghost", _crafted(model_cls, 1e5, rng), rng)
    assert stats == {"nonfinite": 0, "rerouted": 1, "dropped": 0}


def test_outliers_stay_within_the_bound_and_ghost_equals_vmap(clipped):
    model_cls, run = clipped
    rng = np.random.default_rng(2)
    x = _ordinary(model_cls, B, rng)
    if model_cls is not EmbedNorms:
        x[::3] *= 1e3
    y, mask = rng.integers(0, 10, B).astype(np.int32), np.ones(B, np.float32)
    (ghost, g_norms, g_stats), (ref, v_norms, _) = run("ghost", x, y, mask), run("vmap", x, y, mask)
    np.testing.assert_allclose(ghost, ref, rtol=1e-4, atol=1e-5 * C)
    assert np.all(g_norms >= v_norms * (1 - 1e-5))  # the ghost norm never falls below the true one
    assert g_stats["dropped"] == 0
    for mode in dpsgd.CLIPPING:
        special = x[0] * (1.0 if model_cls is EmbedNorms else 1e3)
        remove, replace, _, _ = _neighbours(model_cls, run, mode, special, rng)
        assert remove <= C * (1 + TOL) and replace <= 2 * C * (1 + TOL)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_example_contributes_zero_and_is_counted(clipped, bad):
    model_cls, run = clipped
    if model_cls is EmbedNorms:
        pytest.skip("token ids: a non-finite id is not an input of Embed")
    rng = np.random.default_rng(3)
    x = _ordinary(model_cls, B, rng)
    x[5].flat[7] = bad
    y = rng.integers(0, 10, B).astype(np.int32)
    keep = np.where(np.arange(B) == 5, 0.0, 1.0).astype(np.float32)
    for mode in dpsgd.CLIPPING:
        full, norms, stats = run(mode, x, y, np.ones(B, np.float32))
        without, _, _ = run(mode, x, y, keep)
        assert np.all(np.isfinite(full))
        np.testing.assert_allclose(full, without, atol=1e-6)
        assert stats["nonfinite"] == 1, f"{mode}: {stats}"
        assert not np.isfinite(norms[5])


def test_the_issues_reproduction_with_one_example_removed_from_the_batch():
    """The issue's exact setting: 31 ordinary examples and one crafted, removed by leaving it out of the batch."""
    graphdef, params, rest = nnx.split(DenseGhost(nnx.Rngs(0)), nnx.Param, ...)

    def loss(p, one):
        logits = nnx.merge(graphdef, p, rest)(one["x"])
        return jnp.sum(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, one["y"][:, None], -1)[:, 0])

    fn = jax.jit(dpsgd.clipped_grad_sum(loss, C, clipping="ghost"))
    rng = np.random.default_rng(4)
    base = rng.normal(size=(31, 2, 64)).astype(np.float32)
    y = rng.integers(0, 10, 32).astype(np.int32)
    flat = lambda t: np.concatenate([np.asarray(v, np.float64).ravel() for v in jax.tree.leaves(t)])
    without = flat(fn(params, {"x": jnp.asarray(base), "y": jnp.asarray(y[:31])}))
    for s in SCALES:
        u, d = rng.normal(size=64), rng.normal(size=64)
        crafted = np.stack([s * u + d, -s * u]).astype(np.float32)
        full = flat(fn(params, {"x": jnp.asarray(np.concatenate([base, crafted[None]])), "y": jnp.asarray(y)}))
        assert np.linalg.norm(full - without) <= C * (1 + TOL), s


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from(MODELS), mode=st.sampled_from(dpsgd.CLIPPING), log_s=st.floats(2.0, 6.0),
       seed=st.integers(0, 2 ** 16), outliers=st.integers(0, 4), kind=st.sampled_from(["crafted", "outlier", "nan"]))
def test_search_for_a_violation(model, mode, log_s, seed, outliers, kind):
    """Random batches with outliers around a special example (crafted at a random scale, an outlier, or a NaN):
    the neighbouring bounds hold for every draw."""
    graphdef, params, rest = nnx.split(model(nnx.Rngs(seed % 3)), nnx.Param, ...)
    fn = _SEARCH_FNS.setdefault((model, mode, seed % 3), jax.jit(dpsgd.clipped_grad_sum(
        lambda p, one: jnp.sum(one["mask"] * _ce(nnx.merge(graphdef, p, rest)(one["x"]), one["y"])), C,
        return_stats=True, clipping=mode)))
    rng = np.random.default_rng(seed)
    x = _ordinary(model, B, rng)
    if model is not EmbedNorms:
        x[rng.choice(B - 1, outliers, replace=False)] *= 10 ** rng.uniform(1, 3)
    x[-1] = _crafted(model, 10 ** log_s, rng) if kind == "crafted" or model is EmbedNorms else x[-1] * 10 ** log_s
    if kind == "nan" and model is not EmbedNorms:
        x[-1].flat[0] = math.nan
    y = rng.integers(0, 10, B).astype(np.int32)

    def total(x_, mask):
        out, stats = fn(params, {"x": jnp.asarray(x_), "y": jnp.asarray(y), "mask": jnp.asarray(mask)})
        return np.concatenate([np.asarray(v, np.float64).ravel() for v in jax.tree.leaves(out)]), stats

    full, stats = total(x, np.ones(B, np.float32))
    removed, _ = total(x, (np.arange(B) < B - 1).astype(np.float32))
    x_rep = x.copy()
    x_rep[-1] = _ordinary(model, 1, rng)[0]
    replaced, _ = total(x_rep, np.ones(B, np.float32))
    assert np.all(np.isfinite(full))
    assert np.linalg.norm(full - removed) <= C * (1 + TOL)
    assert np.linalg.norm(full - replaced) <= 2 * C * (1 + TOL)
    if kind == "nan" and model is not EmbedNorms:
        assert int(stats["nonfinite"]) == 1


_SEARCH_FNS: dict = {}


def _ce(logits, y):
    return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[:, None], -1)[:, 0]
