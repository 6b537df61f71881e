"""Assembly data for SPAFormer: the splits, and the parts put in assembly-sequence order.

Splits: ``train`` and ``test`` over ``data.categories`` (unseen shape instances: proc_furniture draws them from
other seeds) and ``heldout``: the ``data.heldout`` categories, never trained on (zero-shot generalisation).

Sequence orders (``data.order``), the order the parts are given in and the position the sequence encoding carries;
like the official loader, every per-part array (and both axes of ``contact``) is reordered:

* ``diagonal`` (the paper's default, prep_pose_sequence_diagonal.py): ascending mean(x, y, z) of each part's
  centroid in the assembled shape;
* ``top_down``: descending height (y) of the centroid;
* ``random``: a fixed random permutation per shape.

The order is computed from the ground-truth assembly and given at test time too: a weak constraint the paper
assumes an instruction manual provides.
"""
from __future__ import annotations

import functools
import json

import ml_collections
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import partnet_assembly, proc_furniture

DATASETS = ("proc_furniture", "partnet")
ORDERS = ("diagonal", "top_down", "random")
PER_PART = ("part_pcs", "part_poses", "geo_ids", "part_types", "part_valid")


def data_status(name: str) -> str:
    return "generated" if name == "proc_furniture" else "user-supplied (data.root)"


def check(config) -> None:
    d = config.data
    if d.name not in DATASETS:
        raise ConfigError(f"config key 'data.name' must be one of {DATASETS}, got {d.name!r}")
    if d.order not in ORDERS:
        raise ConfigError(f"config key 'data.order' must be one of {ORDERS}, got {d.order!r}")
    if d.name == "proc_furniture":
        for key in ("categories", "heldout"):
            bad = [c for c in d[key] if c not in proc_furniture.CATEGORIES]
            if bad:
                raise ConfigError(f"config key 'data.{key}' has unknown categories {bad} "
                                  f"(proc_furniture has {', '.join(proc_furniture.CATEGORIES)})")
        for key in ("train_per_category", "test_per_category", "heldout_count"):
            if d[key] < 1:
                raise ConfigError(f"config key 'data.{key}' must be positive for proc_furniture, got {d[key]}")
        if not 1 <= d.max_parts <= proc_furniture.MAX_PARTS:
            raise ConfigError(f"config key 'data.max_parts' must be in 1..{proc_furniture.MAX_PARTS}")
    elif not d.root:
        raise ConfigError("config key 'data.root' must name the PartNet-Assembly folder for data.name='partnet'")


def centroids(arrays: dict) -> np.ndarray:
    """[S, P, 3]: the centroid of each part's points in the assembled shape."""
    pcs, poses = arrays["part_pcs"], arrays["part_poses"]
    w, x, y, z = np.moveaxis(poses[..., 3:], -1, 0)
    # R(q) mean(p) + t: the mean commutes with the rigid map
    m = pcs.mean(2)
    u = np.stack([x, y, z], -1)
    uv = np.cross(u, m)
    rotated = m + 2 * (w[..., None] * uv + np.cross(u, uv))
    return rotated + poses[..., :3]


def sequence_order(arrays: dict, order: str, seed: int) -> np.ndarray:
    """[S, P] part permutation per shape (real parts first, in ``order``; padding after)."""
    valid = arrays["part_valid"]
    c = centroids(arrays)
    if order == "diagonal":
        key = c.mean(-1)
    elif order == "top_down":
        key = -c[..., 1]
    else:
        key = np.stack([np.random.default_rng([seed, s]).random(valid.shape[1]) for s in range(len(valid))])
    key = np.where(valid, key, np.inf)
    return np.argsort(key, axis=1, kind="stable")


def reorder(arrays: dict, perm: np.ndarray) -> dict:
    out = dict(arrays)
    for k in PER_PART:
        out[k] = np.take_along_axis(arrays[k], perm.reshape(perm.shape + (1,) * (arrays[k].ndim - 2)), axis=1)
    contact = np.take_along_axis(arrays["contact"], perm[:, :, None, None], axis=1)
    out["contact"] = np.take_along_axis(contact, perm[:, None, :, None], axis=2)
    return out


def _generated(d, categories, count: int, seed: int) -> dict:
    parts = [proc_furniture.cached(c, count, seed, d.num_points, d.max_parts) for c in categories]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # category index relative to the config's list (train/test) or the held-out list
    out["category"] = np.repeat(np.arange(len(categories), dtype=np.int32), count)
    return out


@functools.lru_cache(maxsize=2)
def _raw(data_json: str) -> dict[str, dict[str, np.ndarray]]:
    d = ml_collections.ConfigDict(json.loads(data_json))
    if d.name == "proc_furniture":
        return {"train": _generated(d, d.categories, d.train_per_category, d.seed),
                "test": _generated(d, d.categories, d.test_per_category, d.seed + 1),
                "heldout": _generated(d, d.heldout, d.heldout_count, d.seed + 2)}
    splits = {"train": partnet_assembly.load(d.root, list(d.categories), "train", d.num_points, d.max_parts,
                                             d.train_per_category),
              "test": partnet_assembly.load(d.root, list(d.categories), "test", d.num_points, d.max_parts,
                                            d.test_per_category)}
    if d.heldout:
        splits["heldout"] = partnet_assembly.load(d.root, list(d.heldout), "test", d.num_points, d.max_parts,
                                                  d.heldout_count)
    return splits


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train", "test", "heldout"}: padded arrays in sequence order (see the module docstring). The shapes are
    built (or read) once per process for a data config; only the order differs between variants."""
    check(config)
    spec = {k: v for k, v in config.data.to_dict().items() if k != "order"}
    raw = _raw(json.dumps(spec, sort_keys=True))
    return {name: reorder(arrays, sequence_order(arrays, config.data.order, config.data.seed + 7 * i))
            for i, (name, arrays) in enumerate(raw.items())}
