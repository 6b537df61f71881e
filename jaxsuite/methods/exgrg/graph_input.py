"""A user's own graph as ExGRG input: :class:`GraphData` from arrays, a networkx graph or an ``.npz`` file.

Every constructor checks what it is given and raises a one-line :class:`~jaxsuite.core.errors.DataCorruptError`
(a missing file: :class:`~jaxsuite.core.errors.DataMissingError`) that names the array or key at fault and what
was expected. The result is a :class:`jaxsuite.data.planetoid.Graph` (the container of the built-in graphs), so
``data.full_batch``, ``experiment.load_batch`` and ``experiment.run`` take it in place of a data set's name:

* edges are made undirected (both directions), deduplicated, and self loops are dropped (the GCN adds its own);
  edge weights and attributes are not used;
* ``labels`` are integers, -1 for an unlabelled node (the linear probe reads the labelled ones);
* the masks are given together or not at all; without them a seeded 10 / 10 / 80 split of the labelled nodes
  is drawn (``split_seed``).

Features may have any sign: ``data.normalise_features`` divides each row by its L1 norm.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np

from jaxsuite.core.errors import DataCorruptError, DataMissingError
from jaxsuite.data.planetoid import Graph

MASKS = ("train_mask", "val_mask", "test_mask")
NPZ_KEYS = {"x": "node features [N, F]", "edge_index": "edges [2, E]", "senders": "edge sources [E]",
            "receivers": "edge targets [E]", "y": "labels [N]", **{m: "bool [N]" for m in MASKS}}
_ALIASES = {"features": "x", "labels": "y"}
_SPLIT = (0.1, 0.1)  # train / val fractions of the labelled nodes when no masks are given


@dataclasses.dataclass
class GraphData(Graph):
    """An undirected graph with node features, labels and a train / val / test split, checked on construction.
    Build it with :meth:`from_arrays`, :meth:`from_networkx` or :meth:`from_npz`; :meth:`save_npz` writes it back."""

    @classmethod
    def from_arrays(cls, x, *, edge_index=None, senders=None, receivers=None, labels, train_mask=None,
                    val_mask=None, test_mask=None, name: str = "graph", split_seed: int = 0) -> GraphData:
        """``x``: features [N, F] (dense, or a scipy sparse matrix); the edges as ``edge_index`` [2, E] or as
        ``senders`` and ``receivers`` [E] (node ids in [0, N)); ``labels`` [N] integers (-1: unlabelled)."""
        x = _features(name, x)
        n = x.shape[0]
        src, dst = _edges(name, n, edge_index, senders, receivers)
        y = _labels(name, n, labels)
        masks = _masks(name, n, y, {"train_mask": train_mask, "val_mask": val_mask, "test_mask": test_mask},
                       split_seed)
        return cls(str(name), x, y, src, dst, *masks)

    @classmethod
    def from_networkx(cls, g, *, features: str | np.ndarray | None = "x", labels: str | np.ndarray = "y",
                      masks: tuple[str, str, str] = MASKS, name: str | None = None, split_seed: int = 0) -> GraphData:
        """Nodes in ``list(g.nodes)`` order. ``features`` / ``labels``: a node attribute's name or an array in that
        order (``features=None``: one-hot node ids). ``masks``: node attributes read when every node has them
        (when no node has them, a seeded split is drawn). Directed graphs and multigraphs are made simple and
        undirected."""
        name = str(name if name is not None else (g.graph.get("name") or "graph"))
        nodes = list(g.nodes)
        if not nodes:
            _bad(name, "the networkx graph has no nodes")
        index = {v: i for i, v in enumerate(nodes)}
        edges = np.array([(index[a], index[b]) for a, b, *_ in g.edges], np.int64).reshape(-1, 2)
        if features is None:
            x = np.eye(len(nodes), dtype=np.float32)
        else:
            x = _node_attr(g, nodes, features, name, required=True)
        y = _node_attr(g, nodes, labels, name, required=True)
        if y.dtype.kind in "USO":  # class names ("Mr. Hi", ...): ids in sorted order of the names
            y = np.unique(y.astype(str), return_inverse=True)[1].reshape(-1)
        found = {m: _node_attr(g, nodes, attr, name, required=False) for m, attr in zip(MASKS, masks)}
        return cls.from_arrays(x, edge_index=edges.T, labels=y, name=name, split_seed=split_seed, **found)

    @classmethod
    def from_npz(cls, path: str | os.PathLike, *, name: str | None = None, split_seed: int = 0) -> GraphData:
        """An ``.npz`` (``numpy.savez``) with ``x`` (or ``features``), ``edge_index`` (or ``senders`` and
        ``receivers``), ``y`` (or ``labels``) and optionally ``train_mask``, ``val_mask``, ``test_mask``."""
        path = Path(path)
        if not path.is_file():
            raise DataMissingError(f"graph file {path} not found (an .npz with keys x, edge_index, y)")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DataCorruptError(f"{path} is not a readable .npz file of arrays: {err}") from None
        name = str(name if name is not None else path.stem)
        keys = {_ALIASES.get(k, k): k for k in arrays}
        for alias, key in _ALIASES.items():
            if alias in arrays and key in arrays:
                _bad(name, f"{path} has both {key!r} and {alias!r} (one name for one array)")
        unknown = sorted(k for k in keys if k not in NPZ_KEYS)
        if unknown:
            _bad(name, f"{path} has unknown key(s) {unknown}; expected: "
                       + ", ".join(f"{k} ({v})" for k, v in NPZ_KEYS.items()))
        for k in ("x", "y"):
            if k not in keys:
                _bad(name, f"{path} has no key {k!r} ({NPZ_KEYS[k]}; found: {sorted(arrays)})")
        get = {k: arrays[orig] for k, orig in keys.items()}
        return cls.from_arrays(get.pop("x"), labels=get.pop("y"), name=name, split_seed=split_seed, **get)

    def save_npz(self, path: str | os.PathLike) -> None:
        """Write the graph as :meth:`from_npz` reads it (undirected edges, both directions)."""
        np.savez_compressed(path, x=self.features, edge_index=np.stack([self.senders, self.receivers]),
                            y=self.labels, train_mask=self.train_mask, val_mask=self.val_mask,
                            test_mask=self.test_mask)


def _bad(name: str, msg: str):
    raise DataCorruptError(f"graph {name!r}: {msg}")


def _describe(a) -> str:
    return f"{a.dtype} array of shape {tuple(a.shape)}"


def _features(name: str, x) -> np.ndarray:
    if hasattr(x, "toarray"):  # scipy sparse
        x = x.toarray()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        _bad(name, f"x (node features) must be a 2-D array [num_nodes >= 2, num_features >= 1], got {_describe(x)}")
    if x.dtype.kind not in "biuf":
        _bad(name, f"x (node features) must be numeric, got {_describe(x)}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        _bad(name, f"x (node features) has {int(bad.sum())} non-finite value(s) (NaN or inf), first at row "
                   f"{int(np.argwhere(bad)[0, 0])}")
    return x


def _int_array(name: str, key: str, a, shape_doc: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        _bad(name, f"{key} must be an integer array {shape_doc}, got {_describe(a)}")
    return a.astype(np.int64)


def _edges(name: str, n: int, edge_index, senders, receivers) -> tuple[np.ndarray, np.ndarray]:
    if edge_index is not None:
        if senders is not None or receivers is not None:
            _bad(name, "give the edges as edge_index or as senders and receivers, not both")
        ei = _int_array(name, "edge_index", edge_index, "[2, num_edges]")
        if ei.ndim != 2 or ei.shape[0] != 2:
            hint = " (transpose it)" if ei.ndim == 2 and ei.shape[1] == 2 else ""
            _bad(name, f"edge_index must have shape [2, num_edges], got {tuple(ei.shape)}{hint}")
        src, dst = ei
    elif senders is not None and receivers is not None:
        src = _int_array(name, "senders", senders, "[num_edges]")
        dst = _int_array(name, "receivers", receivers, "[num_edges]")
        if src.ndim != 1 or src.shape != dst.shape:
            _bad(name, f"senders and receivers must be 1-D of one length, got shapes {src.shape} and {dst.shape}")
    else:
        missing = "receivers" if senders is not None else "senders" if receivers is not None else "edge_index"
        _bad(name, f"no edges: give edge_index [2, num_edges] or senders and receivers [num_edges] ({missing} "
                   "is missing)")
    for key, ids in (("source", src), ("target", dst)):
        out = (ids < 0) | (ids >= n)
        if out.any():
            _bad(name, f"edge {key} ids must be node ids in [0, {n}) for {n} nodes (rows of x), got "
                       f"{int(ids[out][0])} ({int(out.sum())} out of range)")
    keep = src != dst  # the GCN adds its own self loops
    pairs = np.unique(np.concatenate([np.stack([src[keep], dst[keep]], 1), np.stack([dst[keep], src[keep]], 1)]),
                      axis=0)
    return pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)


def _labels(name: str, n: int, labels) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[0] == n and y.dtype.kind in "biuf" and set(np.unique(y)) <= {0, 1}:
        hint = " (one-hot? pass y.argmax(1), with -1 for rows without a 1)"
    else:
        hint = ""
    if y.ndim != 1 or y.shape[0] != n or y.dtype.kind not in "iu":
        _bad(name, f"labels (y) must be an integer array [num_nodes={n}] (-1: unlabelled), got {_describe(y)}{hint}")
    if (y < -1).any():
        _bad(name, f"labels (y) must be class ids >= 0 or -1 (unlabelled), got {int(y.min())}")
    if not (y >= 0).any():
        _bad(name, "labels (y): no node is labelled (all -1); the linear probe needs labelled nodes")
    return y.astype(np.int32)


def _masks(name: str, n: int, y: np.ndarray, given: dict, seed: int) -> list[np.ndarray]:
    missing = [k for k, v in given.items() if v is None]
    if len(missing) == 3:
        labelled = np.random.default_rng([0x5EED, seed]).permutation(np.flatnonzero(y >= 0))
        a = int(round(_SPLIT[0] * len(labelled)))
        b = a + int(round(_SPLIT[1] * len(labelled)))
        if a == 0 or b == a or b == len(labelled):
            _bad(name, f"{len(labelled)} labelled node(s) are too few for a 10/10/80 split; give train_mask, "
                       "val_mask and test_mask")
        masks = [np.zeros(n, bool) for _ in range(3)]
        for m, ids in zip(masks, (labelled[:a], labelled[a:b], labelled[b:])):
            m[ids] = True
        return masks
    if missing:
        _bad(name, f"give train_mask, val_mask and test_mask together or none of them (for a seeded "
                   f"10/10/80 split); missing: {', '.join(missing)}")
    masks = []
    for key, m in given.items():
        m = np.asarray(m)
        if m.shape != (n,) or m.dtype.kind not in "biu" or not np.isin(m, (0, 1)).all():
            _bad(name, f"{key} must be a boolean array [num_nodes={n}], got {_describe(m)}")
        m = m.astype(bool)
        if not m.any():
            _bad(name, f"{key} selects no node")
        if (y[m] < 0).any():
            _bad(name, f"{key} selects {int((y[m] < 0).sum())} node(s) with label -1 (unlabelled)")
        masks.append(m)
    for (ka, a), (kb, b) in ((("train_mask", masks[0]), ("test_mask", masks[2])),
                             (("val_mask", masks[1]), ("test_mask", masks[2])),
                             (("train_mask", masks[0]), ("val_mask", masks[1]))):
        if (a & b).any():
            _bad(name, f"{ka} and {kb} overlap in {int((a & b).sum())} node(s); they must be disjoint")
    return masks


def _node_attr(g, nodes: list, attr, name: str, *, required: bool):
    """An array of ``attr`` over ``nodes`` (``attr`` already an array: returned as is); None when no node has
    it and it is not required."""
    if not isinstance(attr, str):
        return None if attr is None else np.asarray(attr)
    has = [attr in g.nodes[v] for v in nodes]
    if not any(has):
        if required:
            _bad(name, f"no node has the attribute {attr!r} (pass an array or the attribute's name)")
        return None
    if not all(has):
        _bad(name, f"node {nodes[has.index(False)]!r} has no attribute {attr!r} (every node needs one)")
    try:
        return np.asarray([g.nodes[v][attr] for v in nodes])
    except ValueError as err:  # ragged feature vectors
        _bad(name, f"node attribute {attr!r} has values of different shapes: {err}")
