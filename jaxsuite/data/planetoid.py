"""Planetoid citation graphs (Cora, CiteSeer, PubMed) in the original ``ind.<name>.*`` pickle format
(Yang et al. 2016; the files GCN and PyG read), from $JAXSUITE_DATA/planetoid.

The pickles are read with :class:`RestrictedUnpickler`, which admits only the few numpy / scipy /
collections classes these files contain: a pickle that names anything else (``os.system``, ...) is
refused with a clear error instead of running code.
"""
from __future__ import annotations

import collections
import dataclasses
import pickle

import numpy as np
import scipy.sparse as sp

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data.cache import RemoteFile, Source

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

_ALLOWED = {
    ("scipy.sparse.csr", "csr_matrix"): sp.csr_matrix,
    ("scipy.sparse._csr", "csr_matrix"): sp.csr_matrix,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
}

_BASE = "https://raw.githubusercontent.com/kimiyoung/planetoid/af6abf468a772cc055bec88c52e4d6f51b7c37e3/data/"
_SHA = {
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
}
PLANETOID = Source("planetoid", "Planetoid Cora / CiteSeer citation graphs (kimiyoung/planetoid, MIT)",
                   tuple(RemoteFile(name, sha, (_BASE + name,)) for name, sha in _SHA.items()))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the numpy / scipy.sparse / defaultdict objects the planetoid files hold."""

    def find_class(self, module: str, name: str):
        cls = _ALLOWED.get((module, name))
        if cls is None:
            raise UserError(f"refusing to unpickle {module}.{name}: planetoid files hold only numpy arrays, "
                            "scipy CSR matrices and adjacency dicts")
        return cls


def _load(path) -> object:
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise UserError(f"{path} is not a valid planetoid pickle: {err}") from None


@dataclasses.dataclass
class Graph:
    """An undirected graph with node features and labels and the public split."""
    name: str
    features: np.ndarray  # float32 [N, F]
    labels: np.ndarray  # int32 [N] (-1 where a node has no label)
    senders: np.ndarray  # int32 [E], both directions, no self loops
    receivers: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1


def _edges_from_dict(graph: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    src = np.fromiter((i for i, nbrs in graph.items() for _ in nbrs), np.int64)
    dst = np.fromiter((j for nbrs in graph.values() for j in nbrs), np.int64)
    keep = (src != dst) & (src < n) & (dst < n)
    adj = sp.coo_matrix((np.ones(keep.sum()), (src[keep], dst[keep])), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).tocoo()
    return adj.row.astype(np.int32), adj.col.astype(np.int32)


def load_planetoid(name: str) -> Graph:
    """Cora or CiteSeer with the public split (train = the ``x`` rows, val = the next 500, test = test.index)."""
    if name == "pubmed":
        path = PLANETOID.folder / "ind.pubmed.allx"
        if not path.is_file():
            raise DataMissingError(f"PubMed needs {path} (the features of its 18,717 non-test nodes), which is "
                                   "missing: the shared copy lacks it (over 4 MiB); fetch the planetoid files "
                                   "from kimiyoung/planetoid")
    if name not in ("cora", "citeseer", "pubmed"):
        raise UserError(f"unknown planetoid data set {name!r} (known: cora, citeseer, pubmed)")
    parts = {k: _load(PLANETOID.path(f"ind.{name}.{k}")) for k in ("x", "y", "tx", "ty", "allx", "ally", "graph")}
    test_idx = np.loadtxt(PLANETOID.path(f"ind.{name}.test.index"), dtype=np.int64)
    test_sorted = np.sort(test_idx)
    n_graph = max(max(parts["graph"].keys()), int(test_sorted.max())) + 1
    tx, ty = parts["tx"], parts["ty"]
    if name == "citeseer":  # isolated test ids without features get zero rows (as GCN / PyG do)
        full = np.arange(test_sorted.min(), test_sorted.max() + 1)
        tx_ext = sp.lil_matrix((len(full), tx.shape[1]), dtype=np.float32)
        tx_ext[test_sorted - test_sorted.min()] = tx
        ty_ext = np.zeros((len(full), ty.shape[1]), np.int32)
        ty_ext[test_sorted - test_sorted.min()] = ty
        tx, ty = tx_ext.tocsr(), ty_ext
    features = sp.vstack([parts["allx"], tx]).tolil()
    labels_1h = np.vstack([parts["ally"], ty])
    features[test_idx] = features[test_sorted]
    labels_1h[test_idx] = labels_1h[test_sorted]
    n = features.shape[0]
    if n != n_graph:
        raise UserError(f"planetoid {name}: {n} feature rows but the graph names {n_graph} nodes")
    labels = np.where(labels_1h.sum(1) > 0, labels_1h.argmax(1), -1).astype(np.int32)
    senders, receivers = _edges_from_dict(parts["graph"], n)
    masks = [np.zeros(n, bool) for _ in range(3)]
    n_train = parts["y"].shape[0]
    masks[0][:n_train] = True
    masks[1][n_train:n_train + 500] = True
    masks[2][test_idx] = True
    return Graph(name, np.asarray(features.todense(), np.float32), labels, senders, receivers, *masks)


def karate_club() -> Graph:
    """networkx's Zachary karate club (34 nodes, 2 factions) with one-hot features and a 4/10/20 split."""
    import networkx as nx

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    labels = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(n)], np.int32)
    edges = np.array(list(g.edges()), np.int32)
    senders = np.concatenate([edges[:, 0], edges[:, 1]])
    receivers = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.random.default_rng(0).permutation(n)
    masks = [np.zeros(n, bool) for _ in range(3)]
    masks[0][[0, 33, 1, 32]] = True
    rest = [i for i in order if not masks[0][i]]
    masks[1][rest[:10]] = True
    masks[2][rest[10:]] = True
    return Graph("karate", np.eye(n, dtype=np.float32), labels, senders, receivers, *masks)
