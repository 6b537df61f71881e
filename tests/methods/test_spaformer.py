"""SPAFormer: chamfer against a brute-force reference, the generated data's invariants (equivalence, contacts,
canonical frames), matching, losses and metrics at the ground truth, masks as properties of the networks, the
PartNet-Assembly loader on a file written here, and a tiny run through the reproduce path."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError, UserError
from jaxsuite.core.runner import run_one
from jaxsuite.data import partnet_assembly, proc_furniture
from jaxsuite.methods.spaformer import data as spa_data
from jaxsuite.methods.spaformer import experiment, geometry, losses, metrics, networks, train
from tests.helpers import assert_sharded_step_equals_single_device_step

TINY = ["data.train_per_category=4", "data.test_per_category=2", "data.heldout_count=2",
        "data.categories=('chair','table','cabinet')", "data.num_points=16", "model.point_widths=(8,16)",
        "model.point_out=16", "model.mlp_widths=(16,)", "model.dim=64", "model.layers=2", "model.heads=2",
        "model.ffn=32", "model.head_hidden=16", "dgl.hidden=40", "dgl.iterations=2", "loss.match_points=8",
        "loss.loss_points=8", "train.steps=4", "train.batch_size=4", "eval.batch_size=4", "checkpoint_every=2",
        "log_every=2"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("spaformer", "quick", TINY)


@pytest.fixture(scope="module")
def splits(cfg):
    return spa_data.load(cfg)


def _batch(arrays, n=4):
    return {k: jnp.asarray(v[:n]) for k, v in arrays.items()}


def test_chamfer_equals_a_brute_force_reference_with_padding():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7, 3)), rng.normal(size=(3, 9, 3))
    av, bv = rng.random((3, 7)) < 0.7, rng.random((3, 9)) < 0.7
    av[:, 0] = bv[:, 0] = True
    ref = []
    for i in range(3):
        d = ((a[i][av[i]][:, None] - b[i][bv[i]][None]) ** 2).sum(-1)
        ref.append(d.min(1).mean() + d.min(0).mean())
    got = geometry.chamfer(jnp.asarray(a), jnp.asarray(b), jnp.asarray(av), jnp.asarray(bv))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # its gradient is the min's: moving a toward its nearest neighbour lowers the distance
    g = jax.grad(lambda x: geometry.chamfer(x, jnp.asarray(b[0])))(jnp.asarray(a[0]))
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0


def test_quaternions_give_rotations_and_inverse_transform_undoes_transform():
    q = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    r = geometry.quat_to_matrix(q)
    np.testing.assert_allclose(jnp.einsum("bij,bkj->bik", r, r), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=1e-5)
    rot = proc_furniture.rotation("x", 0.3) @ proc_furniture.rotation("y", -1.1)
    np.testing.assert_allclose(geometry.quat_to_matrix(jnp.asarray(proc_furniture.matrix_to_quat(rot))), rot,
                               atol=1e-5)
    pose = jnp.concatenate([jnp.ones((5, 3)), q], -1)
    pts = jax.random.normal(jax.random.PRNGKey(1), (5, 6, 3))
    np.testing.assert_allclose(geometry.inverse_transform(geometry.transform(pts, pose), pose), pts, atol=1e-5)


def test_generator_is_deterministic_and_its_parts_fit_their_definitions():
    a, b = proc_furniture.generate("cabinet", 3, 5, 32), proc_furniture.generate("cabinet", 3, 5, 32)
    chex.assert_trees_all_equal(a, b)
    assert len(proc_furniture.CATEGORIES) >= 7
    counts = np.concatenate([proc_furniture.generate(c, 6, 0, 16)["part_valid"].sum(1)
                             for c in proc_furniture.CATEGORIES])
    assert counts.min() >= 2 and counts.max() <= proc_furniture.MAX_PARTS
    for s in range(3):
        v = a["part_valid"][s]
        pcs, poses, geo, contact = a["part_pcs"][s][v], a["part_poses"][s][v], a["geo_ids"][s][v], a["contact"][s][v][:, v]
        # equivalent parts share identical canonical points; canonical extents decrease along x, y, z
        for g in np.unique(geo):
            members = np.flatnonzero(geo == g)
            for m in members[1:]:
                np.testing.assert_array_equal(pcs[m], pcs[members[0]])
        ext = pcs.max(1) - pcs.min(1)
        assert (ext[:, 0] >= ext[:, 1] - 1e-6).all() and (ext[:, 1] >= ext[:, 2] - 1e-6).all()
        # a contact point given in each part's own frame lands on the same spot when both are placed
        i, j = np.nonzero(contact[..., 0])
        assert len(i) > 0 and (contact[..., 0] == contact[..., 0].T).all()
        wi = geometry.transform(jnp.asarray(contact[i, j, None, 1:]), jnp.asarray(poses[i]))
        wj = geometry.transform(jnp.asarray(contact[j, i, None, 1:]), jnp.asarray(poses[j]))
        np.testing.assert_allclose(wi, wj, atol=1e-5)
        world = geometry.transform(jnp.asarray(pcs), jnp.asarray(poses)).reshape(-1, 3)
        assert float(jnp.abs(world).max()) <= 0.5 + 1e-4


def test_sequence_orders_and_reordering_keep_every_array_consistent(splits):
    arrays = splits["train"]
    c = spa_data.centroids(arrays)
    v = arrays["part_valid"]
    key = c.mean(-1)
    for s in range(len(v)):
        k = key[s][v[s]]
        assert (np.diff(k) >= -1e-6).all()  # diagonal: ascending mean(x, y, z)
        assert v[s][:v[s].sum()].all()       # real parts first
    perm = spa_data.sequence_order(arrays, "top_down", 0)
    td = spa_data.reorder(arrays, perm)
    heights = spa_data.centroids(td)[..., 1]
    assert all((np.diff(heights[s][td["part_valid"][s]]) <= 1e-6).all() for s in range(len(v)))
    # the contacts follow their parts: flagged pairs still meet under the reordered poses
    s = int(np.argmax(td["part_valid"].sum(1)))
    i, j = np.nonzero(td["contact"][s, ..., 0])
    wi = geometry.transform(jnp.asarray(td["contact"][s, i, j, None, 1:]), jnp.asarray(td["part_poses"][s, i]))
    wj = geometry.transform(jnp.asarray(td["contact"][s, j, i, None, 1:]), jnp.asarray(td["part_poses"][s, j]))
    np.testing.assert_allclose(wi, wj, atol=1e-5)


def test_matching_undoes_swaps_within_groups_only_and_ground_truth_scores_perfectly(splits):
    b = _batch(splits["train"], 8)
    true = b["part_poses"]
    # swap the predictions of two parts of one group in every shape that has such a pair
    pred = np.asarray(true).copy()
    swapped = 0
    for s in range(8):
        geo, v = np.asarray(b["geo_ids"][s]), np.asarray(b["part_valid"][s])
        for g in np.unique(geo[v]):
            m = np.flatnonzero((geo == g) & v)
            if len(m) >= 2:
                pred[s, [m[0], m[1]]] = pred[s, [m[1], m[0]]]
                swapped += 1
                break
    assert swapped > 0
    matched = losses.match(jnp.asarray(pred), b, 16)
    np.testing.assert_allclose(np.asarray(matched)[np.asarray(b["part_valid"])],
                               np.asarray(true)[np.asarray(b["part_valid"])], atol=1e-6)
    terms = losses.assembly_losses(matched, b, 16)
    assert all(float(v) < 1e-8 for v in terms.values()), terms
    rows = jax.device_get(metrics.per_shape(matched, b))
    summary = metrics.summarise(rows)
    assert summary["part_accuracy"] == 1.0 and summary["success_rate"] == 1.0
    assert summary["connectivity_accuracy"] == 1.0 and summary["shape_chamfer"] < 1e-8
    # one part moved far: that part (only) fails, and its shape no longer succeeds
    moved = matched.at[0, 0, :3].add(0.3)
    rows = jax.device_get(metrics.per_shape(moved, b))
    assert rows["correct_parts"][0] == rows["parts"][0] - 1 and not rows["all_correct"][0]
    assert rows["connected"][0] < rows["contacts"][0]
    # random predictions: each is assigned to a true part of its own slot's group, one to one
    noise = jax.random.normal(jax.random.PRNGKey(0), true.shape) * 0.3
    rand = jnp.asarray(pred) + noise
    matched = np.asarray(losses.match(rand, b, 16))
    geo, valid = np.asarray(b["geo_ids"]), np.asarray(b["part_valid"])
    for s in range(8):
        src = [int(np.flatnonzero((np.asarray(rand[s]) == matched[s, j]).all(-1))[0]) for j in range(len(geo[s]))]
        assert sorted(src) == list(range(len(geo[s])))
        assert all(geo[s][src[j]] == geo[s][j] for j in np.flatnonzero(valid[s]))


@pytest.fixture(scope="module")
def models(cfg):
    out = {}
    for name, overrides in [("parallel", {}), ("ar", {"model.autoregressive": True}), ("dgl", {"model.kind": "dgl"})]:
        c = cfg.copy_and_resolve_references()
        for k, v in overrides.items():
            section, key = k.split(".")
            c[section][key] = v
        out[name] = (c, train.init(c, jax.random.PRNGKey(0)))
    return out


def test_parallel_model_is_equivariant_to_part_order_without_sequence_and_ignores_padding(models, splits):
    c, state = models["parallel"]
    model = state.merge()
    model.sequence = False
    b = _batch(splits["test"], 2)
    out = model(b)
    perm = jnp.asarray([2, 0, 1] + list(range(3, c.data.max_parts)))
    shuffled = {k: (v[:, perm] if k in spa_data.PER_PART else v) for k, v in b.items() if k != "contact"}
    np.testing.assert_allclose(model(shuffled), out[:, perm], atol=1e-5)
    padded = dict(b, part_pcs=jnp.where(b["part_valid"][..., None, None], b["part_pcs"], 9.0))
    v = np.asarray(b["part_valid"])
    np.testing.assert_allclose(np.asarray(model(padded))[v], np.asarray(out)[v], atol=1e-5)
    q = np.asarray(out[..., 3:])
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    assert np.abs(np.asarray(out[..., :3])).max() < 1.0


def test_autoregressive_model_is_causal_in_the_poses_and_decoding_is_consistent(models, splits):
    _, state = models["ar"]
    model = state.merge()
    b = _batch(splits["test"], 2)
    prev = networks.shift_poses(b["part_poses"])
    out = model(b, prev)
    changed = model(b, prev.at[:, 3:].add(0.5))  # the poses of parts 2, 3, ...: parts 0..2 must not see them
    np.testing.assert_allclose(changed[:, :3], out[:, :3], atol=1e-5)
    assert not np.allclose(changed[:, 3], out[:, 3])
    decoded = networks.decode_autoregressive(model, b)
    np.testing.assert_allclose(model(b, networks.shift_poses(decoded)), decoded, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ar", "dgl"])
def test_train_steps_lower_the_loss_of_the_other_model_kinds(models, splits, name):
    c, state = models[name]
    step = jax.jit(train.step_for(c))
    b = _batch(splits["train"], 4)
    first = None
    for _ in range(8):
        state, m = step(state, b)
        first = float(m["loss"]) if first is None else first
    assert float(m["loss"]) < first, name
    rows, poses = train.score(state, splits["test"], **train.eval_options(c))
    assert poses.shape == splits["test"]["part_poses"].shape
    assert train.evaluate(state, splits["test"], **train.eval_options(c)) == metrics.summarise(rows)
    assert set(metrics.summarise(rows)) == set(experiment.METRICS)


def test_train_step_sharded_over_4_devices_equals_the_single_device_step(models, splits):
    c, state = models["parallel"]
    assert_sharded_step_equals_single_device_step(train.step_for(c), state, _batch(splits["train"], 4))


def test_partnet_assembly_loader_reads_the_official_layout(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "shape_data").mkdir()
    (tmp_path / "contact_points").mkdir()
    np.save(tmp_path / "Chair_filtered.train.npy", np.asarray([11, 12]))
    for sid, p in ((11, 3), (12, 25)):
        q = rng.normal(size=(p, 4))
        shape = {"part_pcs": rng.normal(size=(p, 40, 3)), "geo_part_ids": np.asarray([5, 5, 9] + [7] * (p - 3)),
                 "part_poses": np.concatenate([rng.normal(size=(p, 3)), q / np.linalg.norm(q, axis=1, keepdims=True)],
                                              1), "part_ids": np.arange(p)}
        np.save(tmp_path / "shape_data" / f"{sid}_level3.npy", shape, allow_pickle=True)
        contact = np.zeros((p, p, 4))
        contact[0, 1, 0] = contact[1, 0, 0] = 1.0
        np.save(tmp_path / "contact_points" / f"pairs_with_contact_points_{sid}_level3.npy", contact)
    out = partnet_assembly.load(tmp_path, ["Chair"], "train", 32)
    assert out["part_pcs"].shape == (1, proc_furniture.MAX_PARTS, 32, 3)  # the 25-part shape is skipped
    np.testing.assert_array_equal(out["geo_ids"][0, :3], [0, 0, 1])
    assert out["contact"][0, 0, 1, 0] == 1 and out["part_valid"][0].sum() == 3
    with pytest.raises(UserError, match="Table_filtered.test.npy"):
        partnet_assembly.load(tmp_path, ["Table"], "test", 32)
    with pytest.raises(UserError, match=r"\[P, >= 64, 3\]"):
        partnet_assembly.load(tmp_path, ["Chair"], "train", 64)


def test_bad_config_is_a_config_error_naming_the_key():
    for overrides, key in ((["data.categories=('chair','sofa')"], "data.categories"),
                           (["data.order=spiral"], "data.order"), (["model.dim=40"], "model.dim"),
                           (["loss.match_points=500"], "loss.match_points")):
        with pytest.raises(ConfigError, match=key):
            experiment.check_data(load_config("spaformer", "quick", overrides))


def test_training_stopped_and_resumed_ends_where_an_uninterrupted_run_ends(cfg, splits, tmp_path):
    from jaxsuite.core.loop import fit_arrays

    def fit(steps, workdir):
        return fit_arrays(cfg, init_fn=lambda: train.init(cfg, jax.random.PRNGKey(0)), train_step=train.step_for(cfg),
                          arrays=splits["train"], num_steps=steps, batch_size=4, seed=0, workdir=workdir,
                          desc="t", progress=False, jit_init=False).state

    whole = fit(4, tmp_path / "whole")
    fit(2, tmp_path / "split")
    resumed = fit(4, tmp_path / "split")
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.opt_state, whole.opt_state)


@pytest.mark.slow
def test_every_variant_runs_through_the_reproduce_path(cfg, tmp_path):
    for variant in experiment.VARIANTS:
        found = run_one("spaformer", cfg, variant, 0, tmp_path / variant, progress=False)
        assert all(np.isfinite(found[k]) for k in experiment.METRICS), variant
        assert (tmp_path / variant / "assemblies.npz").exists()


def test_a_run_goes_through_the_reproduce_path_lowers_the_loss_and_draws_its_figure(cfg, tmp_path):
    import json

    workdir = tmp_path / "runs" / "spaformer_parallel" / "seed0"
    run_cfg = cfg.copy_and_resolve_references()
    run_cfg.train.steps = 8
    found = run_one("spaformer", run_cfg, "spaformer_parallel", 0, workdir, progress=False)
    for k in experiment.METRICS:
        assert np.isfinite(found[k])
    assert 0.0 <= found["part_accuracy"] <= 1.0 and found["shape_chamfer"] >= 0.0
    assert "extra/part_accuracy/chair" in found and "extra/heldout/part_accuracy/stool" in found
    losses_logged = [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()
                     if '"train"' in line]
    assert len(losses_logged) == 8 and np.mean(losses_logged[-2:]) < np.mean(losses_logged[:2])
    payload = {"method": "spaformer", "preset": "tiny", "reference": "spaformer_parallel", "seeds": [0]}
    paths = experiment.plots(payload, tmp_path)
    assert paths["assemblies"].stat().st_size > 0
