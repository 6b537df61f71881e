"""PartNet-Assembly in the layout of the official preparation scripts (Generative-3D-Part-Assembly, SPAFormer),
for users who have the data (it cannot be downloaded automatically: PartNet needs a licence agreement).

Under ``root``:

* ``<Category>_filtered.<split>.npy`` -- the shape ids of a category and split (int array);
* ``shape_data/<id>_level<L>.npy`` -- a pickled dict: ``part_pcs`` [P, N, 3] (canonical frames),
  ``part_poses`` [P, 7] (translation, then quaternion w, x, y, z), ``geo_part_ids`` [P] (geometric equivalence),
  ``part_ids`` [P] (semantic part ids);
* ``contact_points/pairs_with_contact_points_<id>_level<L>.npy`` -- [P, P, 4]: (flag, x, y, z), entry [i, j] in
  part i's frame.

Level 3 for every category except Bag, Bowl, Hat, Laptop and Mug (level 1), as the official scripts; shapes of more
than ``max_parts`` parts are skipped, as the "_filtered" lists do. Returns the padded arrays of
:mod:`jaxsuite.data.proc_furniture` (``geo_ids`` renumbered 0.. per shape).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import proc_furniture, restricted_pickle

LEVEL1 = ("Bag", "Bowl", "Hat", "Laptop", "Mug")


def _load_dict(path: Path) -> dict:
    item = restricted_pickle.load_npy(path, "PartNet-Assembly shape file")  # its pickle may not run code
    try:
        return item.item() if item.dtype == object else dict(item)
    except (TypeError, ValueError) as err:
        raise UserError(f"could not read PartNet-Assembly file {path}: {err}") from err


def load_shape(root: Path, shape_id: int, level: int, num_points: int) -> dict:
    data = _load_dict(root / "shape_data" / f"{shape_id}_level{level}.npy")
    for key in ("part_pcs", "part_poses", "geo_part_ids"):
        if key not in data:
            raise UserError(f"{root / 'shape_data' / f'{shape_id}_level{level}.npy'} has no key {key!r} "
                            f"(expected part_pcs, part_poses, geo_part_ids)")
    pcs = np.asarray(data["part_pcs"], np.float32)
    if pcs.ndim != 3 or pcs.shape[-1] != 3 or pcs.shape[1] < num_points:
        raise UserError(f"shape {shape_id}: part_pcs has shape {pcs.shape}, expected [P, >= {num_points}, 3]")
    count = len(pcs)
    contact_path = root / "contact_points" / f"pairs_with_contact_points_{shape_id}_level{level}.npy"
    contact = np.load(contact_path) if contact_path.is_file() else np.zeros((count, count, 4), np.float32)
    _, geo = np.unique(np.asarray(data["geo_part_ids"]), return_inverse=True)
    return {"part_pcs": pcs[:, :num_points], "part_poses": np.asarray(data["part_poses"], np.float32),
            "geo_ids": geo.astype(np.int32), "part_types": np.full(count, -1, np.int32),
            "contact": np.asarray(contact, np.float32)}


def load(root: str | Path, categories: list[str], split: str, num_points: int,
         max_parts: int = proc_furniture.MAX_PARTS, limit: int = 0) -> dict[str, np.ndarray]:
    """The padded arrays of ``split`` over ``categories`` (``category`` = index into ``categories``); ``limit`` > 0
    keeps the first ``limit`` shapes of each category."""
    root = Path(root)
    shapes, cats = [], []
    for c, name in enumerate(categories):
        ids_path = root / f"{name}_filtered.{split}.npy"
        if not ids_path.is_file():
            raise DataMissingError(f"PartNet-Assembly split file {ids_path} not found (expected "
                                   f"<root>/<Category>_filtered.<split>.npy; set data.root)")
        ids = np.load(ids_path)
        if limit:
            ids = ids[:limit]
        level = 1 if name in LEVEL1 else 3
        for shape_id in ids:
            shape = load_shape(root, int(shape_id), level, num_points)
            if len(shape["geo_ids"]) <= max_parts:
                shapes.append(shape)
                cats.append(c)
    if not shapes:
        raise UserError(f"no PartNet-Assembly shapes of at most {max_parts} parts in {root} for {categories}")
    out = proc_furniture.pad(shapes, max_parts)
    out["category"] = np.asarray(cats, np.int32)
    return out
