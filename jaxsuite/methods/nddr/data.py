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


def held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices of ``range(n)``: a seeded permutation's first ``round(n * fraction)`` are held
    out. It depends on ``n``, ``fraction`` and ``seed`` only, never on the data's values."""
    perm = np.random.default_rng([seed, 2]).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _multi_digit_splits(images, labels, d, *, test_fraction: float, **layout) -> dict[str, dict[str, np.ndarray]]:
    """As ``digits._compose_splits`` (the same test pool of source digits), with the train pool split once more:
    ``d.val_fraction`` of its source digits form a validation pool, so validation canvases share no source digit
    with the train or the test canvases."""
    train_pool, test_pool = digits.split_pools(len(images), test_fraction, d.seed)
    keep, hold = held_out(len(train_pool), d.val_fraction, d.seed)
    fit_pool, val_pool = train_pool[keep], train_pool[hold]
    out = {}
    for i, (split, pool, n) in enumerate((("train", fit_pool, d.n_train), ("val", val_pool, d.n_val),
                                          ("test", test_pool, d.n_test))):
        rng = np.random.default_rng([d.seed, 1, i])
        out[split] = digits.compose_pairs(images[pool], labels[pool], n, rng=rng, **layout)
    return out


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {...}, "val": {...}, "test": {...}} with "image" [N, H, W, C] float32 and one array per task.

    "val" is a held-out part of the training data, disjoint from "test", fixed by ``data.seed``: for the digit
    data sets ``data.val_fraction`` of the train pool's source digits (composed into ``data.n_val`` canvases);
    for ``shapes_dense`` ``data.n_val`` more scenes of the train stream (the first ``n_train`` are the train set,
    unchanged); for NYUv2 ``data.val_fraction`` of the 795 train frames. Only validation may steer a choice; the
    test split is scored once, at the end of a run."""
    name, d = config.dataset, config.data
    check_name(name)
    if name == "multi_digits":
        from scipy import ndimage
        from sklearn.datasets import load_digits

        src = load_digits()  # as digits.multi_digits: 8x8 in 0..16, upsampled to 16x16
        images = ndimage.zoom(src.images.astype(np.float32) / 16.0, (1, 2, 2), order=1).clip(0, 1)
        return _multi_digit_splits(images, src.target, d, test_fraction=0.3, canvas_hw=(20, 32),
                                   left_x=(0, 4), right_x=(12, 16), y_range=(0, 4))
    if name == "multi_mnist":
        from jaxsuite.data.mnist import load_mnist

        images, labels = load_mnist("test")  # as digits.multi_mnist
        return _multi_digit_splits(images.astype(np.float32) / 255.0, labels, d, test_fraction=0.2,
                                   canvas_hw=(36, 48), left_x=(0, 6), right_x=(14, 20), y_range=(0, 8))
    if name == "shapes_dense":
        data = shapes.shapes_dense(d.n_train + d.n_val, d.n_test, size=d.image_size, seed=d.seed)
        stream = data["train"]
        return {"train": {k: v[:d.n_train] for k, v in stream.items()},
                "val": {k: v[d.n_train:] for k, v in stream.items()}, "test": data["test"]}
    size = (d.image_size, d.image_size)
    train = nyuv2.load_split("train", size)
    keep, hold = held_out(len(train["image"]), d.val_fraction, d.seed)
    return {"train": {k: v[keep] for k, v in train.items()}, "val": {k: v[hold] for k, v in train.items()},
            "test": nyuv2.load_split("test", size)}


def image_shape(config) -> tuple[int, int, int]:
    """(H, W, C) of the images of ``config.dataset`` without loading it."""
    name, d = config.dataset, config.data
    check_name(name)
    return {"multi_digits": (20, 32, 1), "multi_mnist": (36, 48, 1),
            "shapes_dense": (d.image_size, d.image_size, 3), "nyuv2": (d.image_size, d.image_size, 3)}[name]
