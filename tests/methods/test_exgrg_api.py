"""ExGRG's public API outside ``fit()``: the README's donated loop for every variant, a user's own graph
(``GraphData`` from arrays, networkx, .npz; clear errors for bad input), signed features, the PubMed hint."""
import json

import jax
import networkx as nx
import numpy as np
import pytest

from jaxsuite.core.config import load_config, set_key
from jaxsuite.core.errors import DataCorruptError, DataMissingError, UserError
from jaxsuite.data.planetoid import karate_club
from jaxsuite.methods.exgrg import data as exgrg_data
from jaxsuite.methods.exgrg import experiment, train
from jaxsuite.methods.exgrg.graph_input import GraphData

TINY = ["datasets=('karate',)", "model.sizes=(8,8)", "steps=4", "supervised.steps=4", "supervised.hidden=8",
        "num_random_splits=1", "relation.knn_k=3", "relation.num_clusters=2", "data.pe_dim=4", "data.rw_steps=4",
        "data.pe_k=3", "checkpoint_every=0", "eval_every=0"]
TRAINED = [v for v in experiment.VARIANTS if v != "raw_features"]  # raw_features trains nothing: no state


@pytest.fixture(scope="module")
def base():
    return load_config("exgrg", "quick", TINY)


def _state_and_batch(base, variant, graph=None):
    cfg = experiment.dataset_config(experiment.variant_config(base, variant), graph or "karate")
    batch = experiment.load_batch(cfg, graph)
    return cfg, batch, train.init(cfg, jax.random.PRNGKey(0))


@pytest.mark.parametrize("variant", TRAINED)
def test_init_returns_independent_buffers(base, variant):
    _, _, state = _state_and_batch(base, variant)
    leaves = jax.tree.leaves(state)
    ptrs = [leaf.unsafe_buffer_pointer() for leaf in leaves]
    assert len(set(ptrs)) == len(ptrs), "two leaves of the initial state share a buffer"


@pytest.mark.parametrize("variant", TRAINED)
def test_readme_donated_loop_runs_for_every_variant(base, variant):
    """The README's loop verbatim (init, then jax.jit(train_step, donate_argnums=0)), outside fit()."""
    _, batch, state = _state_and_batch(base, variant)
    step = jax.jit(train.train_step, donate_argnums=0)
    for _ in range(2):
        state, metrics = step(state, batch)
    assert int(state.step) == 2 and np.isfinite(float(metrics["loss"]))


def test_raw_features_has_no_train_state(base):
    cfg = experiment.dataset_config(experiment.variant_config(base, "raw_features"), "karate")
    experiment.load_batch(cfg)
    with pytest.raises(UserError, match="'kind'"):
        train.init(cfg, jax.random.PRNGKey(0))


# ---- a user's own graph ------------------------------------------------------------------------------------

def _two_communities(n=40, f=6, seed=0, signed=True):
    """Two dense communities joined by two edges; features = class mean + noise, signed by default."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2).astype(np.int64)
    s, r = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if y[i] == y[j] and rng.random() < 0.3:
                s.append(i), r.append(j)
    s += [0, 1]
    r += [n - 1, n - 2]
    means = np.where(y[:, None] == 0, 0.5, -0.5) * np.ones((1, f))
    x = means + rng.normal(0, 1.0, (n, f)) if signed else np.abs(means + rng.normal(0, 1.0, (n, f)))
    return x.astype(np.float32), np.array([s, r]), y


def test_from_arrays_makes_edges_undirected_and_draws_a_split():
    x, ei, y = _two_communities()
    extra = np.array([[3, 3, 5], [3, 7, 7]])  # a self loop, a duplicate direction
    g = GraphData.from_arrays(x, edge_index=np.concatenate([ei, extra], 1), labels=y, name="mine")
    pairs = set(zip(g.senders.tolist(), g.receivers.tolist()))
    assert all((b, a) in pairs for a, b in pairs) and all(a != b for a, b in pairs)
    assert len(pairs) == len(g.senders) and (3, 7) in pairs and (7, 5) in pairs
    tr, va, te = g.train_mask, g.val_mask, g.test_mask
    assert (tr.sum(), va.sum(), te.sum()) == (4, 4, 32) and not ((tr & va) | (tr & te) | (va & te)).any()
    same = GraphData.from_arrays(x, senders=ei[0], receivers=ei[1], labels=y, name="mine")
    np.testing.assert_array_equal(same.senders, GraphData.from_arrays(x, edge_index=ei, labels=y).senders)
    assert same.features.dtype == np.float32 and same.labels.dtype == np.int32


def test_from_networkx_matches_the_built_in_karate_club():
    g = GraphData.from_networkx(nx.karate_club_graph(), features=None, labels="club", name="karate")
    ref = karate_club()
    np.testing.assert_array_equal(g.labels, ref.labels)  # "Mr. Hi" < "Officer": 0 / 1 as the built-in
    np.testing.assert_array_equal(g.features, ref.features)
    assert set(zip(g.senders.tolist(), g.receivers.tolist())) == set(zip(ref.senders.tolist(), ref.receivers.tolist()))


def test_from_networkx_reads_node_attributes_and_masks():
    x, ei, y = _two_communities()
    nxg = nx.Graph()
    for i in range(len(y)):
        nxg.add_node(f"n{i}", feat=x[i], label=int(y[i]), train_mask=i % 5 == 0, val_mask=i % 5 == 1,
                     test_mask=i % 5 >= 2)
    nxg.add_edges_from((f"n{a}", f"n{b}") for a, b in ei.T)
    g = GraphData.from_networkx(nxg, features="feat", labels="label", name="nx")
    np.testing.assert_array_equal(g.features, x)
    assert g.train_mask.sum() == 8 and g.test_mask.sum() == 24


def test_npz_round_trip_and_key_aliases(tmp_path):
    x, ei, y = _two_communities()
    g = GraphData.from_arrays(x, edge_index=ei, labels=y, name="mine")
    g.save_npz(tmp_path / "mine.npz")
    back = GraphData.from_npz(tmp_path / "mine.npz")
    assert back.name == "mine"
    for field in ("features", "labels", "senders", "receivers", "train_mask", "val_mask", "test_mask"):
        np.testing.assert_array_equal(getattr(back, field), getattr(g, field))
    np.savez(tmp_path / "alias.npz", features=x, senders=ei[0], receivers=ei[1], labels=y)
    assert GraphData.from_npz(tmp_path / "alias.npz").num_nodes == 40


def _bad_inputs():
    x, ei, y = _two_communities()
    m = np.zeros(40, bool)
    return [
        (dict(x=x[:, 0], edge_index=ei, labels=y), r"x \(node features\) must be a 2-D array"),
        (dict(x=x, edge_index=ei.T, labels=y), r"edge_index must have shape \[2, num_edges\].*transpose"),
        (dict(x=x, edge_index=ei.astype(float), labels=y), "edge_index must be an integer array"),
        (dict(x=x, edge_index=ei + 5, labels=y), r"edge \w+ ids must be node ids in \[0, 40\)"),
        (dict(x=x, labels=y), "no edges: give edge_index"),
        (dict(x=x, senders=ei[0], labels=y), r"\(receivers is missing\)"),
        (dict(x=x, edge_index=ei, labels=y[:30]), r"labels \(y\) must be an integer array \[num_nodes=40\]"),
        (dict(x=x, edge_index=ei, labels=np.eye(2, dtype=np.int64)[y]), "one-hot"),
        (dict(x=x, edge_index=ei, labels=-np.ones(40, np.int64)), "no node is labelled"),
        (dict(x=np.where(np.eye(40, 6) > 0, np.nan, x), edge_index=ei, labels=y), "non-finite"),
        (dict(x=x, edge_index=ei, labels=y, train_mask=~m), "missing: val_mask, test_mask"),
        (dict(x=x, edge_index=ei, labels=y, train_mask=~m, val_mask=~m, test_mask=~m), "overlap"),
        (dict(x=x, edge_index=ei, labels=y, train_mask=m, val_mask=~m, test_mask=~m), "train_mask selects no node"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_inputs())))
def test_bad_arrays_are_one_line_errors_naming_the_array(case):
    kwargs, pattern = _bad_inputs()[case]
    with pytest.raises(DataCorruptError, match=pattern) as err:
        GraphData.from_arrays(**kwargs, name="mine")
    assert "\n" not in str(err.value) and str(err.value).startswith("graph 'mine': ")


def test_bad_files_and_networkx_graphs_are_clear_errors(tmp_path):
    x, ei, y = _two_communities()
    with pytest.raises(DataMissingError, match="nowhere.npz not found"):
        GraphData.from_npz(tmp_path / "nowhere.npz")
    np.savez(tmp_path / "typo.npz", x=x, edge_index=ei, y=y, train_masks=y > 0)
    with pytest.raises(DataCorruptError, match=r"unknown key\(s\) \['train_masks'\]; expected: x"):
        GraphData.from_npz(tmp_path / "typo.npz")
    np.savez(tmp_path / "nox.npz", edge_index=ei, y=y)
    with pytest.raises(DataCorruptError, match="has no key 'x'"):
        GraphData.from_npz(tmp_path / "nox.npz")
    np.savez(tmp_path / "both.npz", x=x, features=x, edge_index=ei, y=y)
    with pytest.raises(DataCorruptError, match="has both 'x' and 'features'"):
        GraphData.from_npz(tmp_path / "both.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataCorruptError, match="not a readable .npz"):
        GraphData.from_npz(tmp_path / "junk.npz")
    with pytest.raises(DataCorruptError, match="no node has the attribute 'x'"):
        GraphData.from_networkx(nx.path_graph(5), labels=np.zeros(5, np.int64))


def test_l1_row_normalisation_keeps_non_negative_features_bit_exact_and_bounds_signed_ones():
    rng = np.random.default_rng(0)
    x = (rng.random((50, 30)) * (rng.random((50, 30)) < 0.1)).astype(np.float32)
    x[3] = 0.0  # a featureless row (CiteSeer has 15)
    old = x / np.maximum(x.sum(1, keepdims=True), 1e-12)  # the normalisation before signed features
    np.testing.assert_array_equal(exgrg_data.normalise_features(x), old)
    signed, _, _ = _two_communities()
    assert (signed.sum(1) <= 0).any()  # the old normalisation divided these rows by <= 1e-12
    out = exgrg_data.normalise_features(signed)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    np.testing.assert_allclose(np.abs(out).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.sign(out), np.sign(signed))


def test_exgrg_runs_on_a_user_graph_with_signed_features(base):
    x, ei, y = _two_communities()
    g = GraphData.from_arrays(x, edge_index=ei, labels=y, name="signed")
    cfg, batch, state = _state_and_batch(base, "exgrg", g)
    assert cfg.data.num_nodes == 40 and cfg.data.num_features == 6 and cfg.data.num_classes == 2
    feats = np.asarray(batch["x"])
    assert np.isfinite(feats).all() and np.abs(feats).max() <= 1.0
    step = jax.jit(train.train_step, donate_argnums=0)
    for _ in range(3):
        state, metrics = step(state, batch)
        assert np.isfinite(float(metrics["loss"]))
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state.params))


def test_run_takes_a_user_graph_or_an_npz_path_in_datasets(base, tmp_path):
    x, ei, y = _two_communities()
    g = GraphData.from_arrays(x, edge_index=ei, labels=y, name="signed")
    out = experiment.run(base, "cca_ssg", 0, tmp_path / "a", graph=g, progress=False)  # fit, checkpoints, probe
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["test_accuracy"] == out["signed/test_accuracy"]
    g.save_npz(tmp_path / "mine.npz")
    cfg = load_config("exgrg", "quick", TINY)
    set_key(cfg, "datasets", (str(tmp_path / "mine.npz"),))
    digests = experiment.check_data(cfg)
    assert list(digests) == ["user/mine.npz"] and len(digests["user/mine.npz"]) == 64
    assert experiment.results_meta(cfg)["dataset"] == "mine"
    again = experiment.run(cfg, "cca_ssg", 0, tmp_path / "b", progress=False)
    assert again["mine/test_accuracy"] == out["test_accuracy"] and (tmp_path / "b" / "mine").is_dir()
    set_key(cfg, "datasets", (str(tmp_path / "absent.npz"),))
    with pytest.raises(DataMissingError, match="absent.npz not found"):
        experiment.check_data(cfg)


def test_the_pubmed_hint_says_where_its_files_come_from(base, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    cfg = load_config("exgrg", "quick", TINY)
    set_key(cfg, "datasets", ("pubmed",))
    with pytest.raises(DataMissingError) as err:
        experiment.check_data(cfg)
    msg = str(err.value)
    assert "fetches only Cora and CiteSeer" in msg and "kimiyoung/planetoid" in msg and "ind.pubmed" in msg
    assert "run `jaxsuite data fetch planetoid`" not in msg and "\n" not in msg


# ---- BGRL's own budget, chosen on validation ---------------------------------------------------------------

def test_bgrl_steps_is_bgrl_s_budget_only(base):
    cfg = load_config("exgrg", "quick", TINY + ["bgrl.steps=7"])
    assert train.num_steps(experiment.variant_config(cfg, "bgrl")) == 7
    assert train.hyper(experiment.variant_config(cfg, "bgrl")).total_steps == 7  # the EMA anneals over it
    assert train.num_steps(experiment.variant_config(cfg, "exgrg")) == 4
    assert train.num_steps(experiment.variant_config(cfg, "gcn_supervised")) == 4
    assert train.num_steps(experiment.variant_config(base, "bgrl")) == 4  # 0: the shared `steps`
    quick = load_config("exgrg", "quick")  # the built-in graphs give bgrl its own, longer budget
    for name in quick.datasets:
        cfg = experiment.dataset_config(experiment.variant_config(quick, "bgrl"), name)
        assert train.num_steps(cfg) > cfg.steps and experiment.select_period(cfg) > 0
        assert experiment.select_period(experiment.dataset_config(quick, name)) == 0  # exgrg: the last step


def test_pick_step_reads_validation_only_and_takes_the_earliest_tie(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [(5, "train", {"loss": 1.0}), (5, "eval", {"val_accuracy": 0.5, "test_accuracy": 0.9}),
               (10, "eval", {"val_accuracy": 0.7, "test_accuracy": 0.1}),
               (15, "eval", {"val_accuracy": 0.6, "test_accuracy": 0.2}),
               (15, "eval", {"val_accuracy": 0.7, "test_accuracy": 0.3}),  # a resumed run's rewrite: the last
               (20, "eval", {"val_accuracy": 0.65, "test_accuracy": 0.95})]
    path.write_text("".join(json.dumps({"step": s, "split": sp, **m}) + "\n" for s, sp, m in records))
    curve = experiment.eval_curve(path)
    assert sorted(curve) == [5, 10, 15, 20] and curve[15]["test_accuracy"] == 0.3
    assert experiment.pick_step(curve) == 10


def test_bgrl_reports_the_evaluation_with_the_best_validation_accuracy(tmp_path):
    cfg = load_config("exgrg", "quick", TINY + ["bgrl.steps=6", "bgrl.select_period=2", "num_random_splits=2"])
    out = experiment.run(cfg, "bgrl", 0, tmp_path, progress=False)
    curve = experiment.eval_curve(tmp_path / "karate" / "metrics.jsonl")
    assert sorted(curve) == [2, 4, 6]
    best = experiment.pick_step(curve)
    assert out["extra/karate_selected_step"] == best
    assert out["extra/karate_val_curve"] == [[s, curve[s]["val_accuracy"]] for s in (2, 4, 6)]
    for k in ("test_accuracy", "val_accuracy", "random_split_accuracy"):
        assert out[f"karate/{k}"] == pytest.approx(curve[best][k])


def test_results_md_pairs_every_graph_and_split():
    seeds = [0, 1, 2]
    payload = {"reference": "exgrg", "primary_metric": "test_accuracy", "higher_is_better": True, "seeds": seeds,
               "variants": {
                   "exgrg": {"test_accuracy": [0.8, 0.81, 0.82], "cora/test_accuracy": [0.8, 0.81, 0.82],
                             "cora/random_split_accuracy": [0.7, 0.7, 0.7]},
                   "bgrl": {"test_accuracy": [0.7, 0.71, 0.73], "cora/test_accuracy": [0.7, 0.71, 0.73],
                            "cora/random_split_accuracy": [0.7, 0.71, 0.69]},
                   "gcn_supervised": {"test_accuracy": [0.8, 0.8, 0.8], "cora/test_accuracy": [0.8, 0.8, 0.8]}}}
    md = experiment.format_paired(payload)
    assert "| bgrl | +0.0967" in md and "ahead" in md and "not separated" in md
    assert md.count("| gcn_supervised |") == 2 and "| — |" in md
