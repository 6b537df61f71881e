"""Client partitions: disjoint, covering, skewed as asked, deterministic; local test sets follow the client's
label distribution; bad settings are named."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import federated

LABELS = np.repeat(np.arange(10), 200)[np.random.default_rng(0).permutation(2000)]


def _classes(labels, idx):
    return len(np.unique(labels[idx]))


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 20), st.floats(0.05, 10.0), st.integers(0, 1000))
def test_dirichlet_clients_are_disjoint_and_cover_the_data(n, alpha, seed):
    clients = federated.dirichlet_partition(LABELS, n, alpha, seed, min_size=5)
    allidx = np.concatenate(clients)
    assert len(allidx) == len(LABELS) and len(np.unique(allidx)) == len(LABELS)
    assert min(len(c) for c in clients) >= 5


def test_small_alpha_skews_labels_and_large_alpha_does_not():
    skewed = federated.dirichlet_partition(LABELS, 20, 0.1, 0)
    iid = federated.dirichlet_partition(LABELS, 20, 100.0, 0)
    assert np.mean([_classes(LABELS, c) for c in skewed]) < 5
    assert min(_classes(LABELS, c) for c in iid) == 10


def test_shards_give_each_client_at_most_its_shard_count_of_classes():
    clients = federated.shard_partition(LABELS, 20, 2, 0)
    assert all(_classes(LABELS, c) <= 2 for c in clients)
    assert len(np.unique(np.concatenate(clients))) == 2000 == sum(len(c) for c in clients)


def test_local_test_set_follows_the_clients_label_distribution():
    parts = federated.partition(LABELS, "dirichlet", 10, 0, alpha=0.5, test_fraction=0.25)
    for p in parts:
        assert not set(p["train"]) & set(p["test"])
        train_hist = np.bincount(LABELS[p["train"]], minlength=10) / len(p["train"])
        test_hist = np.bincount(LABELS[p["test"]], minlength=10) / len(p["test"])
        assert set(np.flatnonzero(test_hist)) <= set(np.flatnonzero(train_hist))
        np.testing.assert_allclose(test_hist, train_hist, atol=0.08)


def test_partitions_depend_on_the_seed_only():
    a = federated.partition(LABELS, "shards", 10, 3)
    b = federated.partition(LABELS, "shards", 10, 3)
    c = federated.partition(LABELS, "shards", 10, 4)
    assert all(np.array_equal(x["train"], y["train"]) for x, y in zip(a, b))
    assert not all(np.array_equal(x["train"], y["train"]) for x, y in zip(a, c))


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="data.partition"):
        federated.partition(LABELS, "iid", 10, 0)
    with pytest.raises(ConfigError, match="data.alpha"):
        federated.partition(LABELS, "dirichlet", 10, 0, alpha=0.0)
    with pytest.raises(ConfigError, match="data.test_fraction"):
        federated.partition(LABELS, "shards", 10, 0, test_fraction=1.0)
