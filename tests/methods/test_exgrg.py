"""ExGRG: the planetoid reader (restricted unpickler, PubMed message), the relation-graph components
against brute force, the loss terms against their definitions, the jitted EM step on the karate club,
and every variant end to end through the CLI on the karate club."""
import json
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.core.config import load_config, set_key
from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import planetoid
from jaxsuite.methods.exgrg import experiment, losses, probe, train
from jaxsuite.methods.exgrg.relation_graph import Edges, kmeans, knn_edges, random_walk_se
from tests.helpers import cli, sets

KARATE = ["datasets=('karate',)", "model.sizes=(16,16)", "steps=6", "supervised.steps=6", "num_random_splits=2",
          "relation.knn_k=3", "relation.num_clusters=2", "data.pe_dim=4", "data.rw_steps=4", "data.pe_k=3",
          "checkpoint_every=3", "log_every=2"]


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "ind.cora.x"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(UserError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        planetoid._load(path)


def test_pubmed_without_allx_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="ind.pubmed.allx"):
        planetoid.load_planetoid("pubmed")


def test_cora_and_citeseer_match_the_published_statistics():
    cora, cite = planetoid.load_planetoid("cora"), planetoid.load_planetoid("citeseer")
    # nodes, features, classes, undirected edges (PyG's counts), public split sizes
    assert cora.features.shape == (2708, 1433) and cora.num_classes == 7 and len(cora.senders) == 10556
    assert cite.features.shape == (3327, 3703) and cite.num_classes == 6 and len(cite.senders) == 9104
    for g, n_train in ((cora, 140), (cite, 120)):
        assert (g.train_mask.sum(), g.val_mask.sum(), g.test_mask.sum()) == (n_train, 500, 1000)
        assert not (g.train_mask & g.test_mask).any() and (g.labels[g.test_mask] >= 0).all()


@settings(max_examples=10, deadline=None)
@given(st.integers(8, 40), st.integers(1, 5), st.integers(0, 2**16))
def test_knn_edges_match_brute_force(n, k, seed):
    h = np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)
    e = knn_edges(jnp.asarray(h), k)
    hn = h / np.linalg.norm(h, axis=1, keepdims=True)
    sim = hn @ hn.T
    np.fill_diagonal(sim, -np.inf)
    for i in range(n):
        got = np.asarray(e.receivers)[np.asarray(e.senders) == i]
        assert len(got) == k and i not in got
        # the k-th best similarity bounds every chosen neighbour from below (ties may pick either)
        kth = np.sort(sim[i])[::-1][k - 1]
        assert (sim[i, got] >= kth - 1e-5).all()


def test_cluster_invariance_equals_explicit_clique_edges():
    rng = np.random.default_rng(0)
    z1, z2 = (jnp.asarray(rng.normal(size=(12, 5)), jnp.float32) for _ in range(2))
    assign = jnp.asarray(rng.integers(0, 3, 12))
    s, r, w = [], [], []
    for i in range(12):
        for j in range(12):
            if assign[i] == assign[j]:
                s.append(i), r.append(j), w.append(1.0 / int((assign == assign[i]).sum()))
    explicit = Edges(jnp.asarray(s), jnp.asarray(r), jnp.asarray(w))
    # edge_invariance normalises by sum(w) = number of non-empty clusters... and cluster_invariance by N
    want = losses.edge_invariance(z1, z2, explicit) * float(explicit.weights.sum()) / 12
    np.testing.assert_allclose(losses.cluster_invariance(z1, z2, assign, 3), want, rtol=1e-5)


def test_kmeans_separates_two_blobs():
    rng = np.random.default_rng(0)
    h = np.concatenate([rng.normal([5, 0], 0.1, (20, 2)), rng.normal([0, 5], 0.1, (20, 2))]).astype(np.float32)
    assign, _ = kmeans(jnp.asarray(h), jnp.asarray([[1.0, 0.1], [0.9, 0.2]]), 5)
    assign = np.asarray(assign)
    assert len(set(assign[:20])) == 1 and len(set(assign[20:])) == 1 and assign[0] != assign[20]


def test_random_walk_se_on_a_triangle():
    s, r = np.array([0, 1, 1, 2, 2, 0]), np.array([1, 0, 2, 1, 0, 2])
    rw = random_walk_se(s, r, 3, 3)
    np.testing.assert_allclose(rw[:, 0], 0.0)  # no self loops: a 1-step walk never returns
    np.testing.assert_allclose(rw[:, 1], 0.5)  # 2 steps: back with probability 1/2
    np.testing.assert_allclose(rw[:, 2], 0.25)


def test_loss_terms_against_their_definitions():
    rng = np.random.default_rng(1)
    z1, z2 = (jnp.asarray(rng.normal(size=(30, 4)) * 0.3, jnp.float32) for _ in range(2))
    n = 30
    pairs = Edges(jnp.arange(n), jnp.arange(n), jnp.ones(n))
    np.testing.assert_allclose(losses.edge_invariance(z1, z2, pairs), jnp.sum((z1 - z2) ** 2) / n, rtol=1e-5)
    std = np.sqrt(np.var(np.asarray(z1), axis=0) + 1e-4)
    np.testing.assert_allclose(losses.variance(z1), np.mean(np.maximum(0, 1 - std)), rtol=1e-5)
    cov = np.cov(np.asarray(z1).T)
    np.testing.assert_allclose(losses.covariance(z1), (np.sum(cov ** 2) - np.sum(np.diag(cov) ** 2)) / 4, rtol=1e-4)
    w = losses.whiten(z1)
    np.testing.assert_allclose(np.diag(np.asarray(w.T @ w)), 1.0, rtol=1e-4)
    # BGRL's loss is 0 for aligned predictions and 8 for opposite ones
    assert float(losses.bgrl(z1, z2, z1 * 2, z2 * 3)) != 0.0
    np.testing.assert_allclose(losses.bgrl(z1, z2, z2, z1), 0.0, atol=1e-5)
    np.testing.assert_allclose(losses.bgrl(z1, z2, -z2, -z1), 8.0, atol=1e-5)
    # a featureless node embeds to 0: the gradient stays finite there
    zero = z1.at[0].set(0.0)
    grads = jax.grad(lambda a: losses.bgrl(a, a, z2, z2))(zero)
    assert np.isfinite(np.asarray(grads)).all()


@pytest.fixture(scope="module")
def karate():
    cfg = experiment.dataset_config(load_config("exgrg", "quick", KARATE), "karate")
    return cfg, experiment.load_batch(cfg)


@pytest.mark.parametrize("variant", ["exgrg", "bgrl", "gcn_supervised"])
def test_train_step_is_jittable_finite_and_learns(karate, variant):
    cfg, _ = karate
    cfg = experiment.dataset_config(experiment.variant_config(cfg, variant), "karate")
    for c in train.COMPONENTS:  # every component of the relation graph on, each a term of the loss
        set_key(cfg, f"relation.weights.{c}", 0.1)
    set_key(cfg, "relation.refresh_every", 2)
    set_key(cfg, "optim.lr", 1e-2)
    batch = experiment.load_batch(cfg)
    state = train.init(cfg, jax.random.PRNGKey(0))
    step = jax.jit(train.train_step)
    losses_seen = []
    for _ in range(30):
        state, metrics = step(state, batch)
        assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(metrics))
        losses_seen.append(float(metrics["loss"]))
    # the views and (for exgrg) G change every step: compare the first and last few steps on average
    assert int(state.step) == 30 and np.mean(losses_seen[-5:]) < np.mean(losses_seen[:5])
    if variant == "exgrg":  # every component contributed a term
        assert {f"inv_{c}" for c in train.COMPONENTS} <= set(metrics)


def test_probe_selects_on_validation_and_reads_separable_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40).astype(np.int32)
    emb = np.eye(3, dtype=np.float32)[labels] * 2 + rng.normal(0, 0.1, (120, 3)).astype(np.float32)
    masks = probe.random_splits(labels, 1, (0.3, 0.2))
    out = probe.linear_probe(emb, labels, masks[0, 0], masks[1, 0], masks[2, 0], num_classes=3, num_random_splits=2)
    assert out["test_accuracy"] == 1.0 and out["random_split_accuracy"] == 1.0
    noise = rng.normal(size=(120, 3)).astype(np.float32)
    assert probe.linear_probe(noise, labels, masks[0, 0], masks[1, 0], masks[2, 0], num_classes=3)["test_accuracy"] < 0.7


def test_unknown_component_and_missing_dataset_are_clear_errors(tmp_path):
    out = cli("run", "exgrg", *sets(*KARATE, "relation.weights.bogus=1.0"), "--workdir", str(tmp_path / "a"))
    assert out.returncode == 2 and "relation.weights.bogus" in out.stderr
    out = cli("run", "exgrg", *sets("datasets=('pubmed',)"), "--workdir", str(tmp_path / "b"))
    assert out.returncode == 2 and "ind.pubmed.allx" in out.stderr and "Traceback" not in out.stderr


def test_with_only_the_augmentation_pairs_the_loss_is_cca_ssg():
    rng = np.random.default_rng(2)
    z1, z2 = (losses.whiten(jnp.asarray(rng.normal(size=(50, 8)), jnp.float32)) for _ in range(2))
    pairs = Edges(jnp.arange(50), jnp.arange(50), jnp.ones(50))
    ours = 50 * losses.edge_invariance(z1, z2, pairs) + 1e-3 * (losses.decorrelation(z1) + losses.decorrelation(z2))
    np.testing.assert_allclose(ours, losses.cca_ssg(z1, z2, 1e-3), rtol=1e-5)


def _reproduce_karate(tmp_path, variants, seeds="0"):
    chosen = "variants=(" + ",".join(repr(v) for v in variants) + ")"
    out = cli("reproduce", "exgrg", "--seeds", seeds, "--out", str(tmp_path), *sets(*KARATE, chosen), timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path / "exgrg" / "results.json").read_text())
    assert list(res["variants"]) == list(variants) and res["primary_metric"] == "test_accuracy"
    for name, metrics in res["variants"].items():
        assert metrics["test_accuracy"] == metrics["karate/test_accuracy"], name
        assert len(metrics["test_accuracy"]) == len(seeds.split(","))
        assert all(0.0 <= a <= 1.0 for a in metrics["test_accuracy"]), name
    return res


def test_reproduce_on_karate(tmp_path):
    res = _reproduce_karate(tmp_path, ("exgrg", "raw_features", "gcn_supervised"))
    # a one-hot-feature karate club: the supervised GCN separates the two factions
    assert np.mean(res["variants"]["gcn_supervised"]["test_accuracy"]) >= 0.8
    assert res["variants"]["exgrg"]["karate/epochs_per_second"][0] > 0


@pytest.mark.slow
def test_reproduce_every_variant_on_karate(tmp_path):
    _reproduce_karate(tmp_path, tuple(experiment.VARIANTS), seeds="0,1")


def test_shared_first_layer_projection_equals_the_plain_forward(karate):
    from flax import nnx

    from jaxsuite.nn.gnn import GCN

    cfg, batch = karate
    gcn = GCN((batch["x"].shape[1], 8, 4), rngs=nnx.Rngs(0))
    plain = gcn(batch["graph"], batch["x"])
    shared = gcn(batch["graph"], batch["x"], projected=gcn.project(batch["x"]))
    np.testing.assert_allclose(np.asarray(shared), np.asarray(plain), rtol=1e-6, atol=1e-6)


def test_resume_continues_exactly_with_the_cached_relation_graph(karate, tmp_path):
    from jaxsuite.core.loop import fit

    cfg, _ = karate
    cfg = experiment.dataset_config(cfg, "karate")
    set_key(cfg, "relation.weights.cluster", 0.1)
    set_key(cfg, "relation.refresh_every", 4)  # the resumed half starts between two E-steps
    batch = experiment.load_batch(cfg)

    def run(workdir, steps):
        return fit(init_fn=lambda: train.init(cfg, jax.random.PRNGKey(0)), train_step=train.train_step,
                   batch_fn=lambda step: batch, num_steps=steps, workdir=workdir, checkpoint_every=3,
                   log_every=1, progress=False, shard_batches=False).state

    straight = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)
    resumed = run(tmp_path / "b", 6)
    for a, b in zip(jax.tree.leaves((straight.params, straight.aux)), jax.tree.leaves((resumed.params, resumed.aux))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
