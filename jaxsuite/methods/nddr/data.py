"""The data sets NDDR-CNN is run on, each with its tasks and image shape.

* ``multi_digits`` -- two sklearn digits per canvas; tasks: left digit, right digit (quick preset).
* ``multi_mnist`` -- the same from MNIST's test split in $JAXSUITE_DATA/mnist.
* ``shapes_dense`` -- ray-cast scenes with per-pixel class and surface normal (NYUv2's two tasks).
* ``nyuv2`` -- NYUv2 40-class segmentation and normals, read from $JAXSUITE_DATA/nyuv2.
"""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import digits, nyuv2, shapes
from jaxsuite.data.cache import manifest_digest
from jaxsuite.data.sources import MNIST, NYUV2
from jaxsuite.methods.nddr.model import TaskSpec

_CLASSIFY = (TaskSpec("left", "classification", 10), TaskSpec("right", "classification", 10))

DATASETS = {
    "multi_digits": {"tasks": _CLASSIFY, "source": None, "files": ()},
    "multi_mnist": {"tasks": _CLASSIFY, "source": MNIST,
                    "files": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    "shapes_dense": {"tasks": (TaskSpec("segmentation", "segmentation", len(shapes.CLASSES)),
                               TaskSpec("normals", "normals", 3)), "source": None, "files": ()},
    "nyuv2": {"tasks": (TaskSpec("segmentation", "segmentation", nyuv2.NUM_CLASSES),
                        TaskSpec("normals", "normals", 3)), "source": NYUV2,
              "files": ("image/train", "image/test", "seg40/train", "seg40/test", "normal/train", "normal/test")},
}


def check_name(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} for nddr (known: {', '.join(DATASETS)})")


def check_files(name: str) -> dict[str, str]:
    """Raise DataMissingError naming the first file (or folder) of ``name`` that is absent, DataCorruptError for
    a pinned file whose sha256 differs; return the digests (pinned sha256, or NYUv2's manifest digest)."""
    check_name(name)
    spec = DATASETS[name]
    for f in spec["files"]:
        if not (spec["source"].folder / f).exists():
            spec["source"].path(f)
    if spec["source"] is None:
        return {}
    if spec["source"].files:
        return spec["source"].digests(spec["files"])
    folder = spec["source"].folder
    return {f"{name}:{folder}": manifest_digest(folder, tuple(f"{f}/*" for f in spec["files"]) + ("*.mat",))}


def data_status(name: str) -> str:
    spec = DATASETS[name]
    if spec["source"] is None:
        return "generated"
    if spec["source"].files:
        status = spec["source"].status(spec["files"])
        return status if status == "present" or status.startswith("bad") else f"missing ({spec['source'].folder})"
    missing = [f for f in spec["files"] if not (spec["source"].folder / f).exists()]
    return "present" if not missing else f"missing ({spec['source'].folder})"


def tasks(name: str) -> tuple[TaskSpec, ...]:
    check_name(name)
    return DATASETS[name]["tasks"]


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {...}, "test": {...}} with "image" [N, H, W, C] float32 and one array per task."""
    name, d = config.dataset, config.data
    check_name(name)
    if name == "multi_digits":
        return digits.multi_digits(d.n_train, d.n_test, seed=d.seed)
    if name == "multi_mnist":
        return digits.multi_mnist(d.n_train, d.n_test, seed=d.seed)
    if name == "shapes_dense":
        return shapes.shapes_dense(d.n_train, d.n_test, size=d.image_size, seed=d.seed)
    size = (d.image_size, d.image_size)
    return {"train": nyuv2.load_split("train", size), "test": nyuv2.load_split("test", size)}


def image_shape(config) -> tuple[int, int, int]:
    """(H, W, C) of the images of ``config.dataset`` without loading it."""
    name, d = config.dataset, config.data
    check_name(name)
    return {"multi_digits": (20, 32, 1), "multi_mnist": (36, 48, 1),
            "shapes_dense": (d.image_size, d.image_size, 3), "nyuv2": (d.image_size, d.image_size, 3)}[name]
