"""MIM-Refiner: the NNA loss against a naive loop of the official formula, the queue, layer-wise lr decay and
freezing as optax transformations, MAE's masking/loss, the probes, and a smoke run of every variant."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.core.config import load_config
from jaxsuite.core.runner import run_one
from jaxsuite.methods.mim_refiner import losses, mae, optim, probe, queue, train


def _naive_pair(pre, post, pred, tau):
    b = len(pre)
    total = 0.0
    for i in range(b):
        logits = np.array([(post[i] if j == i else pre[i]) @ pred[j] / tau for j in range(b)])
        total += -(logits[i] - np.log(np.exp(logits).sum()))
    return total / b


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("indexing", ["fixed", "official"])
def test_nna_loss_equals_naive_loop(indexing):
    rng = np.random.default_rng(0)
    b, g, n_local, d, tau = 5, 2, 3, 8, 0.2
    pre, post = rng.normal(size=(b, g, d)), rng.normal(size=(b, g, d))
    pred = rng.normal(size=(b, g + n_local, d))
    total, metrics = losses.nna_loss(jnp.asarray(pre), jnp.asarray(post), jnp.asarray(pred), tau, indexing)
    pre_n, post_n, pred_n = _unit(pre), _unit(post), _unit(pred)
    glob = [_naive_pair(pre_n[:, a], post_n[:, a], pred_n[:, c], tau) for a in range(g) for c in range(g) if a != c]
    offset = g if indexing == "fixed" else 0  # the official loop reads predicted[:, ii] for local view ii
    loc = [_naive_pair(pre_n[:, a], post_n[:, a], pred_n[:, offset + c], tau) for a in range(g) for c in range(n_local)]
    np.testing.assert_allclose(float(total), np.mean(glob + loc), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["global_loss"]), np.mean(glob), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["local_loss"]), np.mean(loc), rtol=1e-5)


def test_queue_lookup_excludes_own_index_and_enqueue_wraps():
    qx = jnp.eye(4, 3, dtype=jnp.float32) * 2.0  # rows e0, e1, e2, 0
    qi = jnp.array([7, 8, 9, -1])
    z = jnp.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.2]])
    nn, sim = queue.lookup(qx, qi, z, jnp.array([7, 3]), 1, jax.random.PRNGKey(0))
    # sample 7's own entry (e0) is excluded: its neighbour is e1; sample 3 gets e1
    np.testing.assert_allclose(np.asarray(nn), [[0, 2, 0], [0, 2, 0]])
    assert float(sim[1]) > 0.9
    x, i, ptr = queue.enqueue(qx, qi, jnp.array(3), jnp.ones((2, 3)), jnp.array([1, 2]))
    np.testing.assert_array_equal(np.asarray(i), [2, 8, 9, 1])
    assert int(ptr) == 1 and float(x[0, 0]) == 1.0 and float(x[3, 1]) == 1.0


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("mim_refiner", "quick", [
        "data.name=digits", "data.image_size=16", "model.patch_size=4", "model.dim=32", "model.depth=3",
        "model.heads=2", "mae.dim=16", "mae.heads=2", "mae.steps=3", "refine.head_blocks=(-1,1)",
        "refine.head.proj_hidden=32", "refine.head.out_dim=16", "refine.head.pred_hidden=32", "refine.queue_size=64",
        "refine.stage2_steps=2", "refine.stage3_steps=2", "refine.stage3_topk=4", "aug.global_size=16",
        "aug.local_size=8", "batch_size=32", "eval.linear_steps=20", "eval.one_shot_draws=2"])


def test_stage2_freezes_encoder_and_stage3_decays_layerwise(tiny_config):
    cfg = tiny_config
    state = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0), stage=2))()
    images = jax.random.uniform(jax.random.PRNGKey(1), (32, 16, 16, 1))
    batch = {"image": images, "idx": jnp.arange(32)}
    step = jax.jit(train.train_step)
    s2, m = step(step(state, batch)[0], batch)  # two steps: the warm-up's first learning rate is 0
    assert np.isfinite(float(m["loss"]))
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s2.params["encoder"], state.params["encoder"])
    assert all(jax.tree.leaves(same)), "stage 2 must leave the encoder unchanged"
    assert not all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s2.params["heads"],
                                                state.params["heads"])))
    assert int(s2.aux["queues"]["ptr"][0]) == 0 and int(s2.aux["queues"]["idx"][1, 37]) == 5  # 64 slots, 2 pushes
    # stage 3: parameter groups per layer (lr multiplier decay^(depth + 1 - id)), tokens and norms never decayed
    labels = optim.labels(state.params, 3)
    assert labels["encoder"]["patch_embed"]["kernel"] == "enc0_decay"
    assert labels["encoder"]["blocks"][2]["mlp"]["fc1"]["kernel"] == "enc3_decay"
    assert labels["encoder"]["norm"]["scale"] == "enc4_nodecay"
    assert labels["encoder"]["cls_token"] == "enc0_nodecay"
    s3 = jax.jit(lambda: train.to_stage3(cfg, s2))()
    s3b, _ = step(s3, batch)
    s3c, _ = step(s3b, batch)  # past the zero learning rate of the warm-up's first step
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), s3c.params["encoder"], s3b.params["encoder"])
    assert moved["blocks"][2]["mlp"]["fc1"]["kernel"] > 0
    # EMA: stage 3 evaluates an exponential average that trails the live encoder
    ema_gap = float(jnp.abs(s3c.aux["ema"]["blocks"][0]["attn"]["qkv"]["kernel"]
                            - s3c.params["encoder"]["blocks"][0]["attn"]["qkv"]["kernel"]).max())
    assert ema_gap > 0


def test_evaluate_reports_every_block_and_the_best_one(tiny_config):
    """``train.evaluate``: k-NN of each of the 3 blocks and of the final output; "best" picks its block on the
    validation split and reports that block's test k-NN as ``knn_accuracy``."""
    cfg = tiny_config
    state = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0), stage=3))()
    rng = np.random.default_rng(0)
    data = {s: {"image": rng.random((n, 16, 16, 1), np.float32), "label": np.arange(n) % 4}
            for s, n in (("train", 40), ("val", 12), ("test", 12))}
    final = train.evaluate(state, data, cfg.eval)
    assert final["evaluated_block"] == 3.0 and final["knn_accuracy"] == final["extra/knn_block3"]
    best_cfg = cfg.eval.copy_and_resolve_references()
    best_cfg.block = "best"
    best = train.evaluate(state, data, best_cfg)
    chosen = int(best["evaluated_block"])
    assert best["knn_accuracy"] == best[f"extra/knn_block{chosen}"]
    assert best[f"extra/val_knn_block{chosen}"] == max(best[f"extra/val_knn_block{i}"] for i in range(4))
    best_cfg.block = "middle"
    with pytest.raises(Exception, match="eval.block"):
        train.evaluate(state, data, best_cfg)


def test_mae_masks_three_quarters_and_loss_counts_masked_patches_only(tiny_config):
    cfg = tiny_config
    state = jax.jit(lambda: mae.init(cfg, jax.random.PRNGKey(0)))()
    model = state.merge()
    images = jax.random.uniform(jax.random.PRNGKey(2), (4, 16, 16, 1))
    pred, mask = model(images, jax.random.PRNGKey(3))
    assert pred.shape == (4, 16, 16) and mask.shape == (4, 16)
    np.testing.assert_array_equal(np.asarray(mask.sum(1)), [12] * 4)  # 75 % of the 16 patches
    target = mae.patchify(images, 4)
    perfect = jnp.where(mask[..., None] > 0, target, pred)  # exact on masked patches, anything on visible ones
    assert float(mae.mae_loss(perfect, images, mask, 4, norm_pix=False)) == pytest.approx(0.0, abs=1e-10)
    # patchify: patch (1, 2) of a 16x16 image with p=4 is rows 4..7, cols 8..11
    np.testing.assert_allclose(np.asarray(target[0, 1 * 4 + 2]), np.asarray(images[0, 4:8, 8:12, 0]).reshape(-1))


def test_bad_shapes_are_config_errors_naming_the_key(tiny_config):
    from jaxsuite.core.errors import ConfigError
    from jaxsuite.methods.mim_refiner import experiment

    bad = tiny_config.copy_and_resolve_references()
    bad.model.patch_size = 5
    with pytest.raises(ConfigError, match="data.image_size"):
        experiment.check_data(bad)
    bad = tiny_config.copy_and_resolve_references()
    bad.model.heads = 3
    with pytest.raises(ConfigError, match="model.dim"):
        experiment.check_data(bad)


def test_knn_and_one_shot_on_separable_features():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 5
    ytr, yte = rng.integers(0, 3, 300), rng.integers(0, 3, 100)
    ftr, fte = centers[ytr] + rng.normal(size=(300, 8)), centers[yte] + rng.normal(size=(100, 8))
    assert probe.knn_accuracy(ftr, ytr, fte, yte, num_classes=3) > 0.95
    assert probe.linear_accuracy(ftr, ytr, fte, yte, num_classes=3, steps=100) > 0.95
    assert probe.one_shot_accuracy(ftr, ytr, fte, yte, num_classes=3, draws=3) > 0.8
    shuffled = rng.permutation(ytr)
    assert probe.knn_accuracy(ftr, shuffled, fte, yte, num_classes=3) < 0.6


@pytest.mark.slow
def test_every_variant_runs_through_the_reproduce_path(tiny_config, tmp_path):
    for variant in ("refined_multi", "mae_best_block", "mae_continued", "raw_pixels"):
        metrics = run_one("mim_refiner", tiny_config, variant, 0, tmp_path / variant, shared_dir=tmp_path / "shared",
                          progress=False)
        for key in ("knn_accuracy", "linear_accuracy", "one_shot_accuracy",
                    "extra/knn_block0" if variant == "raw_pixels" else "extra/knn_block3"):
            assert 0.0 <= metrics[key] <= 1.0, (variant, key)
    assert json.loads((tmp_path / "refined_multi" / "identity.json").read_text())["config"]["kind"] == "refine"


def test_stage3_step_sharded_over_the_mesh_equals_single_device(tiny_config):
    """The batch on the 4 simulated devices (``data`` axis), parameters replicated: the same step. The heads'
    batch norm and the NNA negatives are over the whole global batch under jit; per-shard statistics (8 of the
    32 samples) or per-shard negatives would change the losses by O(1) and the projections by O(0.1-1).

    Float reduction order differs between the layouts, and the heads' batch norm amplifies it (measured: 3e-5
    relative in the loss, 5e-3 absolute in unit-scale projections), hence the tolerances."""
    import chex

    from jaxsuite.core.sharding import make_mesh, replicate, shard_batch

    cfg = tiny_config
    state = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0), stage=3))()
    batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (32, 16, 16, 1)), "idx": jnp.arange(32)}
    step = jax.jit(train.train_step)
    mesh = make_mesh()
    sharded_batch = shard_batch(batch, mesh)
    assert len(sharded_batch["image"].sharding.device_set) == 4
    want, want_m = step(state, batch)
    got, got_m = step(replicate(state, mesh), sharded_batch)
    chex.assert_trees_all_close(got_m, want_m, rtol=1e-3)
    chex.assert_trees_all_close(got.model_state, want.model_state, atol=1e-2)
    chex.assert_trees_all_close(got.aux["queues"], want.aux["queues"], atol=1e-2)
    # a second step (the first has the warm-up's zero learning rate): the parameters move the same way, up to
    # Adam's +-lr steps on near-zero gradients (the attention key bias has an exactly zero one)
    want, _ = step(want, batch)
    got, _ = step(got, sharded_batch)
    moved = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)).ravel()
                            for a, b in zip(jax.tree.leaves(want.params), jax.tree.leaves(state.params))])
    diffs = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)).ravel()
                            for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params))])
    assert np.mean(moved > 1e-4) > 0.5 and np.mean(diffs > 1e-4) < 0.05, (np.mean(moved > 1e-4), np.mean(diffs > 1e-4))


@pytest.mark.slow
def test_stage3_resume_continues_exactly(tiny_config, tmp_path):
    """Stage 3 stopped after 2 of 4 steps and resumed from its checkpoint ends where an uninterrupted run ends
    (queues, EMA and optimiser state included)."""
    import chex

    from jaxsuite.core.loop import fit, host_batches
    from jaxsuite.methods.mim_refiner import data as mr_data

    cfg = tiny_config.copy_and_resolve_references()
    cfg.refine.stage3_steps = 4
    splits = mr_data.load(cfg)
    arrays = {"image": splits["train"]["image"], "idx": splits["train"]["idx"]}
    s2 = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0), stage=2))()

    def run(workdir, steps):
        return fit(init_fn=lambda: train.to_stage3(cfg, s2), train_step=train.train_step,
                   batch_fn=host_batches(arrays, cfg.batch_size, 5), num_steps=steps, workdir=workdir,
                   checkpoint_every=2, log_every=1, progress=False).state

    whole = run(tmp_path / "whole", 4)
    run(tmp_path / "split", 2)
    resumed = run(tmp_path / "split", 4)
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.aux, whole.aux)
    chex.assert_trees_all_equal(resumed.opt_state, whole.opt_state)


def test_validation_is_held_out_of_train_and_disjoint_from_test(tiny_config):
    """The validation part is a stratified share of the data set's train split, held out of everything trained
    on; train, validation and test images are three disjoint sets."""
    from jaxsuite.core.errors import ConfigError
    from jaxsuite.data import image_splits
    from jaxsuite.methods.mim_refiner import data as mr_data

    splits = mr_data.load(tiny_config)
    whole = image_splits.load(tiny_config.data)
    assert len(splits["train"]["label"]) + len(splits["val"]["label"]) == len(whole["train"]["label"])
    frac = len(splits["val"]["label"]) / len(whole["train"]["label"])
    assert abs(frac - tiny_config.data.val_fraction) < 0.02
    assert set(np.unique(splits["val"]["label"])) == set(np.unique(whole["train"]["label"]))  # stratified
    keys = {name: {s["image"][i].tobytes() for i in range(len(s["image"]))} for name, s in splits.items()}
    assert not keys["train"] & keys["val"] and not keys["val"] & keys["test"] and not keys["train"] & keys["test"]
    bad = tiny_config.copy_and_resolve_references()
    bad.data.val_fraction = 1.5
    with pytest.raises(ConfigError, match="data.val_fraction"):
        mr_data.load(bad)


def test_evaluated_block_is_chosen_on_validation_only():
    """eval.block="best" picks the block with the best validation k-NN; the test labels cannot move it."""
    from ml_collections import ConfigDict

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 5
    y = {"train": rng.integers(0, 3, 200), "val": rng.integers(0, 3, 60), "test": rng.integers(0, 3, 60)}
    # block 0: separable everywhere; block 1: separable only on test (noise on train / val)
    feats = {s: np.stack([centers[v] + rng.normal(size=(len(v), 8)),
                          (centers[v] if s == "test" else 0) + rng.normal(size=(len(v), 8)) * 5]) for s, v in y.items()}
    splits = {s: {"label": v} for s, v in y.items()}
    e = ConfigDict({"block": "best", "knn_k": 5, "knn_tau": 0.07, "linear_steps": 20, "one_shot_draws": 2})
    out = probe.evaluate_features(e, feats, splits, seed=0)
    assert out["evaluated_block"] == 0.0
    assert out["val_knn_accuracy"] == out["extra/val_knn_block0"] > 0.9
    assert out["knn_accuracy"] == out["extra/knn_block0"]
