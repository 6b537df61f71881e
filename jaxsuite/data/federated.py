"""Non-IID client partitions of a labelled data set, for federated learning experiments.

- ``dirichlet``: label skew (Hsu, Qi, Brown 2019): for every class, the clients' shares of its examples are drawn
  from Dir(alpha 1_N); a client already holding its fair share N_total / N gets no more (the balancing rule of
  the common implementations), and the draw is repeated until every client has ``min_size`` examples. Small
  alpha: each client sees few classes; large alpha: close to IID.
- ``shards``: pathological label skew (McMahan et al. 2017): examples sorted by label, cut into
  ``num_clients x shards_per_client`` equal shards, each client takes ``shards_per_client`` of them at random.

``local_split`` then splits each client's examples into a local train and test set with the same label
distribution (stratified per class), as personalised-FL evaluation needs. Everything depends on the seed only.
"""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError

SCHEMES = ("dirichlet", "shards")


def dirichlet_partition(labels: np.ndarray, num_clients: int, alpha: float, seed: int, *, min_size: int = 10,
                        max_tries: int = 1000) -> list[np.ndarray]:
    """Indices of each client's examples (sorted), label shares per class from Dir(alpha)."""
    if not alpha > 0:
        raise ConfigError(f"config key 'data.alpha' must be > 0, got {alpha}")
    n = len(labels)
    if num_clients * min_size > n:
        raise ConfigError(f"{num_clients} clients x min_size {min_size} exceed the {n} examples")
    rng = np.random.default_rng([seed, 31])
    by_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    for _ in range(max_tries):
        parts = [[] for _ in range(num_clients)]
        for idx in by_class:
            idx = rng.permutation(idx)
            share = rng.dirichlet(np.full(num_clients, alpha))
            full = np.array([sum(len(p) for p in part) >= n / num_clients for part in parts])
            share = np.where(full, 0.0, share)
            share = share / share.sum() if share.sum() > 0 else np.full(num_clients, 1.0 / num_clients)
            cuts = (np.cumsum(share) * len(idx)).astype(int)[:-1]
            for part, piece in zip(parts, np.split(idx, cuts)):
                part.append(piece)
        clients = [np.sort(np.concatenate(part)) for part in parts]
        if min(len(c) for c in clients) >= min_size:
            return clients
    raise ConfigError(f"no Dirichlet(alpha={alpha}) partition of {n} examples over {num_clients} clients gave "
                      f"every client {min_size} examples in {max_tries} draws: raise 'data.alpha' or lower "
                      f"'data.num_clients'")


def shard_partition(labels: np.ndarray, num_clients: int, shards_per_client: int, seed: int) -> list[np.ndarray]:
    """Indices of each client's examples (sorted): ``shards_per_client`` label-sorted shards each."""
    total = num_clients * shards_per_client
    if not 0 < total <= len(labels):
        raise ConfigError(f"{num_clients} clients x {shards_per_client} shards must be in (0, {len(labels)}]")
    rng = np.random.default_rng([seed, 37])
    order = np.argsort(labels, kind="stable")
    size = len(labels) // total
    shards = order[: size * total].reshape(total, size)
    picks = rng.permutation(total).reshape(num_clients, shards_per_client)
    return [np.sort(shards[p].reshape(-1)) for p in picks]


def local_split(indices: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of one client, each class split in the same proportion (at least one training
    example per class the client holds)."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"config key 'data.test_fraction' must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(labels[indices]):
        idx = rng.permutation(indices[labels[indices] == k])
        n_test = min(int(round(test_fraction * len(idx))), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def partition(labels: np.ndarray, scheme: str, num_clients: int, seed: int, *, alpha: float = 0.5,
              shards_per_client: int = 2, test_fraction: float = 0.2, min_size: int = 10) -> list[dict]:
    """Per client ``{"train": indices, "test": indices}`` under ``scheme`` (``SCHEMES``)."""
    labels = np.asarray(labels)
    if scheme == "dirichlet":
        clients = dirichlet_partition(labels, num_clients, alpha, seed, min_size=min_size)
    elif scheme == "shards":
        clients = shard_partition(labels, num_clients, shards_per_client, seed)
    else:
        raise ConfigError(f"config key 'data.partition' must be one of {SCHEMES}, got {scheme!r}")
    out = []
    for i, idx in enumerate(clients):
        train, test = local_split(idx, labels, test_fraction, seed * 100_003 + i)
        out.append({"train": train, "test": test})
    return out
