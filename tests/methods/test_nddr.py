"""NDDR-CNN: the (1, 0) reduction to single-task networks, the fusion layers, the optimiser's
multipliers and weight decay, the losses and metrics, and a smoke run of every variant through
`reproduce`."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.core import runner
from jaxsuite.methods.nddr import experiment, losses, metrics, train
from jaxsuite.methods.nddr.model import CrossStitch, MultiTaskNet, NDDRLayer, nddr_init
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def images():
    return jnp.asarray(np.random.default_rng(0).random((8, 20, 32, 1), np.float32))


def _copy_columns(dst: MultiTaskNet, src: MultiTaskNet):
    nnx.update(dst.columns, nnx.state(src.columns))


@pytest.mark.parametrize("epsilon, exact", [(0.0, True), (1e-5, False)])
def test_nddr_with_alpha1_beta0_equals_single_task_networks(images, epsilon, exact):
    cfg = tiny_config()
    tasks = experiment.nddr_data.tasks("multi_digits")
    single = MultiTaskNet(tasks, cfg.model, 1, (20, 32), fusion="none", rngs=nnx.Rngs(0))
    # train the single-task nets' BN statistics a little so they are not the identity
    single(images, train=True, rngs=nnx.Rngs(dropout=0))
    fused = MultiTaskNet(tasks, cfg.model, 1, (20, 32), fusion="nddr", init_weights=(1.0, 0.0),
                         nddr_bn_epsilon=epsilon, rngs=nnx.Rngs(1))
    _copy_columns(fused, single)
    out_single, out_fused = single(images, train=False), fused(images, train=False)
    for a, b in zip(out_single, out_fused, strict=True):
        if exact:  # BN with fresh statistics and epsilon 0 is the identity; ReLU of a ReLU output too
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        else:
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    # and the (0.9, 0.1) default does mix the tasks
    mixed = MultiTaskNet(tasks, cfg.model, 1, (20, 32), fusion="nddr", rngs=nnx.Rngs(1))
    _copy_columns(mixed, single)
    assert not np.allclose(np.asarray(mixed(images, train=False)[0]), np.asarray(out_single[0]))


def test_nddr_init_blocks():
    w = nddr_init(3, 4, task=1, alpha=0.9, beta=0.1)[0, 0]
    assert w.shape == (12, 4)
    np.testing.assert_array_equal(w[4:8], np.float32(0.9) * np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(w[:4], np.float32(0.1) * np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(w[8:], np.float32(0.1) * np.eye(4, dtype=np.float32))
    layer = NDDRLayer(2, 4, rngs=nnx.Rngs(0))
    assert layer.convs[0].bias is None and layer.convs[0].kernel.value.shape == (1, 1, 8, 4)
    xavier = NDDRLayer(2, 4, init="xavier", rngs=nnx.Rngs(0))
    assert not np.allclose(np.asarray(xavier.convs[0].kernel.value[0, 0]), nddr_init(2, 4, 0, 0.9, 0.1)[0, 0])


def test_cross_stitch_mixes_linearly():
    cs = CrossStitch(2, rngs=nnx.Rngs(0))
    a, b = jnp.ones((1, 2, 2, 3)), 2 * jnp.ones((1, 2, 2, 3))
    out = cs([a, b], train=False)
    np.testing.assert_allclose(np.asarray(out[0]), 0.9 * 1 + 0.1 * 2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out[1]), 0.1 * 1 + 0.9 * 2, rtol=1e-6)


@pytest.mark.parametrize("overrides", [["model.shortcut=True"], ["model.kind=hard_sharing"],
                                       ["model.fusion=cross_stitch"]])
def test_variant_networks_produce_task_outputs(images, overrides):
    cfg = tiny_config(["optim.decay_steps=5", *overrides])
    state = train.init(cfg, jax.random.PRNGKey(0))
    outs = train.predict(state, images)
    assert [o.shape for o in outs] == [(8, 10), (8, 10)]


def test_optimizer_multipliers_and_weight_decay():
    """One SGD step (momentum state empty) from zero parameters: update = -lr * multiplier * grad;
    from unit kernels with zero gradient: update = -lr * multiplier * 0.5 * wd on kernels only."""
    cfg = tiny_config(["optim.decay_steps=100", "optim.lr=0.1", "optim.fusion_lr_mult=100.0",
                       "model.shortcut=True"])
    state = train.init(cfg, jax.random.PRNGKey(0))
    groups = jax.tree_util.tree_map_with_path(lambda p, _: train.param_group(p), state.params)
    flat = {jax.tree_util.keystr(p): g for p, g in jax.tree_util.tree_leaves_with_path(groups)}
    assert {"fusion", "head_w", "head_b", "base"} == set(flat.values())
    assert all(g == "fusion" for k, g in flat.items() if "fusions" in k or "shortcut" in k)
    assert all(g in ("head_w", "head_b") for k, g in flat.items() if "fc8" in k)
    mult = {"base": 1.0, "fusion": 100.0, "head_w": 10.0, "head_b": 20.0}

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    updates, _ = state.tx.update(jax.tree.map(jnp.ones_like, state.params), state.tx.init(zeros), zeros)
    for (path, u), g in zip(jax.tree_util.tree_leaves_with_path(updates), jax.tree.leaves(groups)):
        np.testing.assert_allclose(np.asarray(u), -0.1 * mult[g], rtol=1e-6, err_msg=jax.tree_util.keystr(path))

    ones = jax.tree.map(jnp.ones_like, state.params)
    updates, _ = state.tx.update(zeros, state.tx.init(ones), ones)
    for (path, u), g in zip(jax.tree_util.tree_leaves_with_path(updates), jax.tree.leaves(groups)):
        is_kernel = jax.tree_util.keystr(path).endswith("['kernel']")
        expected = -0.1 * mult[g] * 0.5 * 5e-4 if is_kernel else 0.0
        np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-5, atol=1e-12, err_msg=jax.tree_util.keystr(path))


def test_init_from_single_task_copies_columns():
    cfg_single = tiny_config(["optim.decay_steps=5", "model.fusion=none"])
    single = train.init(cfg_single, jax.random.PRNGKey(0))
    fused = train.init(tiny_config(["optim.decay_steps=5"]), jax.random.PRNGKey(1), init_from=single)
    for a, b in zip(jax.tree.leaves(single.params["columns"]), jax.tree.leaves(fused.params["columns"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert "fusions" in fused.params


class LossTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_segmentation_loss_ignores_void(self):
        logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 3, 4)), jnp.float32)
        labels = jnp.array([[[0, 1, 255], [2, 3, 255], [255, 255, 0]]] * 2)
        got = self.variant(losses.segmentation_loss)(logits, labels)
        valid = np.asarray(labels) != 255
        logp = jax.nn.log_softmax(logits)
        nll = -np.take_along_axis(np.asarray(logp), np.where(valid, labels, 0)[..., None], -1)[..., 0]
        np.testing.assert_allclose(got, nll[valid].mean(), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_normals_loss(self):
        target = jnp.array([[[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])  # second pixel invalid
        f = self.variant(losses.normals_loss)
        np.testing.assert_allclose(f(3.0 * target + jnp.array([0, 0, 0.0]), target), 0.0, atol=1e-6)
        np.testing.assert_allclose(f(-target, target), 2.0, atol=1e-6)
        np.testing.assert_allclose(f(jnp.array([[[[1.0, 0, 0], [5.0, 5, 5]]]]), target), 1.0, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(1, 200), st.integers(0, 10**6))
def test_confusion_and_miou_invariants(k, n, seed):
    rng = np.random.default_rng(seed)
    labels, pred = rng.integers(0, k, n), rng.integers(0, k, n)
    labels[rng.random(n) < 0.2] = 255
    conf = metrics.confusion(pred, labels, k)
    assert conf.sum() == (labels != 255).sum()
    if conf.sum():
        m = metrics.segmentation_metrics(conf)
        assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["pixel_accuracy"] <= 1.0
    perfect = metrics.segmentation_metrics(metrics.confusion(np.arange(k), np.arange(k), k))
    assert perfect == {"miou": 1.0, "pixel_accuracy": 1.0}


def test_normal_angle_metrics():
    target = np.array([[0.0, 0.0, 1.0]] * 4)
    pred = np.array([[0.0, 0.0, 1.0], [0.0, np.sin(np.radians(20)), np.cos(np.radians(20))], [1.0, 0, 0], [0, 0, 0.5]])
    angles = metrics.normal_angles(pred, target)
    np.testing.assert_allclose(angles, [0, 20, 90, 0], atol=1e-4)
    m = metrics.normal_metrics(angles)
    assert m["normal_mean_angle"] == pytest.approx(27.5, abs=1e-3) and m["normal_median_angle"] == pytest.approx(10, abs=1e-3)
    assert (m["normal_within_11.25"], m["normal_within_22.5"], m["normal_within_30"]) == (0.5, 0.75, 0.75)


def test_dense_evaluate_reports_paper_metrics():
    cfg = tiny_config(["dataset=shapes_dense", "data.image_size=16", "optim.decay_steps=5", "model.head_dilation=1"])
    state = train.init(cfg, jax.random.PRNGKey(0))
    from jaxsuite.data.shapes import shapes_dense
    data = shapes_dense(4, 6, size=16, seed=3)["test"]
    out = train.evaluate(state, data, batch_size=4)
    assert set(out) == {"miou", "pixel_accuracy", "normal_mean_angle", "normal_median_angle", "normal_within_11.25",
                        "normal_within_22.5", "normal_within_30"}
    assert 0 <= out["miou"] <= 1 and 0 <= out["normal_mean_angle"] <= 180


def test_every_variant_runs_through_reproduce(tmp_path):
    overrides = ["data.n_train=64", "data.n_test=32", "model.channels=(4,4,4)", "model.head_hidden=8",
                 "batch_size=16", "eval_batch_size=32", "pretrain.steps=3", "finetune_steps=2", "log_every=1"]
    payload = runner.reproduce("nddr", "quick", overrides, seeds=[0], out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "nddr" / "results.json").read_text())
    assert set(saved["variants"]) == set(experiment.VARIANTS)
    assert saved["primary_metric"] == "mean_accuracy" and saved["reference"] == "nddr"
    for name, m in saved["variants"].items():
        assert len(m["mean_accuracy"]) == 1 and 0.0 <= m["mean_accuracy"][0] <= 1.0, name
        assert m["train_seconds"][0] > 0
    assert (tmp_path / "nddr" / "results.md").read_text().count("| nddr") >= 1
    assert (tmp_path / "nddr" / "mean_accuracy.png").stat().st_size > 1000
    for key in ("method", "preset", "dataset", "higher_is_better", "extra", "seeds", "config", "git_commit",
                "jax_version", "devices", "wall_seconds"):
        assert key in saved
    assert payload["variants"] == saved["variants"]
    # validation metrics for every variant (what the preset's choices were made on), phase 1 on validation only
    for name, m in saved["variants"].items():
        assert 0.0 <= m["val_mean_accuracy"][0] <= 1.0, name
    assert set(saved["extra"]["single_task_pretrain"]) == {"val_left_accuracy", "val_right_accuracy",
                                                           "val_mean_accuracy"}
    # the single-task phase is trained once per seed and shared by the variants (its folder keyed by its config)
    assert len(list((tmp_path / "nddr" / "shared" / "pretrain").glob("seed0-*/summary.json"))) == 1


def test_validation_split_is_held_out_of_train_and_disjoint_from_test(monkeypatch):
    """multi_digits: validation canvases come from source digits of the train pool that train never uses; the
    held-out indices depend on the seed and the sizes only (not on the data's values)."""
    from jaxsuite.data import digits
    from jaxsuite.methods.nddr import data as nddr_data

    kept, held = nddr_data.held_out(100, 0.2, 0)
    assert len(held) == 20 and not set(kept) & set(held) and len(kept) + len(held) == 100
    np.testing.assert_array_equal(held, nddr_data.held_out(100, 0.2, 0)[1])
    assert not np.array_equal(held, nddr_data.held_out(100, 0.2, 1)[1])

    pools = []
    compose = digits.compose_pairs

    def spy(images, labels, n_pairs, **kw):
        pools.append(images.copy())
        return compose(images, labels, n_pairs, **kw)

    monkeypatch.setattr(digits, "compose_pairs", spy)
    cfg = tiny_config(["data.n_train=50", "data.n_val=20", "data.n_test=30"])
    data = nddr_data.load(cfg)
    assert {k: len(v["image"]) for k, v in data.items()} == {"train": 50, "val": 20, "test": 30}
    train, val, test = ({img.tobytes() for img in p} for p in pools)
    assert not train & val and not val & test and not train & test
