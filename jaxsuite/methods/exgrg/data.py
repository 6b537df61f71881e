"""Graphs for ExGRG as one full batch: row-normalised dense features (a dense matmul beats BCOO on CPU), a jraph.GraphsTuple,
the fixed relation-graph components (adjacency, LapPE k-NN, RWSE k-NN) and the split masks.

A graph is a built-in data set's name, a path to an ``.npz`` file or a :class:`jaxsuite.data.planetoid.Graph`
(a user's own: ``graph_input.GraphData.from_arrays / from_networkx / from_npz``)."""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data.planetoid import PLANETOID, Graph, karate_club, load_planetoid
from jaxsuite.methods.exgrg.graph_input import GraphData
from jaxsuite.methods.exgrg.relation_graph import Edges, hop_scope, laplacian_pe, random_walk_se, static_knn
from jaxsuite.nn.gnn import graphs_tuple

DATASETS = ("karate", "cora", "citeseer", "pubmed")


def is_npz(name) -> bool:
    return isinstance(name, str) and name.endswith(".npz")


def load_graph(name: str | Graph) -> Graph:
    """A built-in data set by name, a user's graph from an ``.npz`` path, or a ``Graph`` as given."""
    if isinstance(name, Graph):
        return name
    if is_npz(name):
        return GraphData.from_npz(name)
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} for exgrg (known: {', '.join(DATASETS)}, or a path to an "
                          ".npz graph file)")
    return karate_club() if name == "karate" else load_planetoid(name)


def normalise_features(features: np.ndarray) -> np.ndarray:
    """Each row divided by its L1 norm (rows of zeros stay zero). For the built-in non-negative bag-of-words
    features the L1 norm is the row sum, so they are unchanged; for signed features a row sum can be 0 or
    negative (dividing by it blew values up to 1e12 or flipped signs), the L1 norm cannot: every value ends in
    [-1, 1] and the signs are kept."""
    return features / np.maximum(np.abs(features).sum(1, keepdims=True), 1e-12)


def full_batch(graph: str | Graph, pe_dim: int = 16, rw_steps: int = 16, pe_k: int = 10, knn_hops: int = 0,
               fixed: tuple[str, ...] = ("adj", "lap", "rw")) -> dict:
    """The whole graph as one batch; ``fixed`` names the fixed relation-graph components to build (only
    those: LapPE needs an eigensolver) and ``knn_hops`` > 0 adds the r-hop scope of the k-NN E-step.
    A built-in data set's batch is cached per process; a user's graph (``Graph`` or ``.npz``) is built anew."""
    if isinstance(graph, str) and not is_npz(graph):
        return _builtin_batch(graph, pe_dim, rw_steps, pe_k, knn_hops, tuple(fixed))
    return build_batch(load_graph(graph), pe_dim, rw_steps, pe_k, knn_hops, tuple(fixed))


@functools.lru_cache(maxsize=8)
def _builtin_batch(name: str, pe_dim: int, rw_steps: int, pe_k: int, knn_hops: int, fixed: tuple[str, ...]) -> dict:
    return build_batch(load_graph(name), pe_dim, rw_steps, pe_k, knn_hops, fixed)


def build_batch(g: Graph, pe_dim: int = 16, rw_steps: int = 16, pe_k: int = 10, knn_hops: int = 0,
                fixed: tuple[str, ...] = ("adj", "lap", "rw")) -> dict:
    n = g.num_nodes
    feats = normalise_features(g.features)
    pe_k = min(pe_k, n - 1)
    build = {
        "adj": lambda: Edges(jnp.asarray(g.senders), jnp.asarray(g.receivers), jnp.ones(len(g.senders), jnp.float32)),
        "lap": lambda: jax_edges(static_knn(laplacian_pe(g.senders, g.receivers, n, min(pe_dim, n - 3)), pe_k)),
        "rw": lambda: jax_edges(static_knn(random_walk_se(g.senders, g.receivers, n, rw_steps), pe_k)),
    }
    static = {c: build[c]() for c in fixed}
    extra = {"knn_scope": jnp.asarray(hop_scope(g.senders, g.receivers, n, knn_hops))} if knn_hops > 0 else {}
    return {"x": jnp.asarray(feats, jnp.float32), **extra,
            "graph": graphs_tuple(g.senders, g.receivers, n), "static": static,
            "labels": jnp.asarray(g.labels), "train_mask": jnp.asarray(g.train_mask),
            "val_mask": jnp.asarray(g.val_mask), "test_mask": jnp.asarray(g.test_mask)}


def jax_edges(e: Edges) -> Edges:
    return Edges(jnp.asarray(e.senders), jnp.asarray(e.receivers), jnp.asarray(e.weights))


def data_status(name: str) -> str:
    if name == "karate":
        return "embedded (networkx)"
    if name == "pubmed":
        return "present" if (PLANETOID.folder / "ind.pubmed.allx").is_file() else "missing ind.pubmed.allx"
    status = PLANETOID.status(_files(name))
    return status if status == "present" or status.startswith("bad") else f"missing ({PLANETOID.folder})"


def _files(name: str) -> list[str]:
    return [f.name for f in PLANETOID.files if f.name.startswith(f"ind.{name}.")]


def digests(name: str) -> dict[str, str]:
    """The pinned sha256 of ``name``'s planetoid files, each verified ({} for the embedded karate club); PubMed,
    not pinned, by its folder's manifest."""
    if name == "karate":
        return {}
    if name == "pubmed":
        from jaxsuite.data.cache import manifest_digest

        return {"planetoid/ind.pubmed.*": manifest_digest(PLANETOID.folder, ("ind.pubmed.*",))}
    return PLANETOID.digests(_files(name))
