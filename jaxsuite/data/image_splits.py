"""Labelled image data split into train / test parts, shared by the image methods (MIM-Refiner, Adv-KD).

* ``mnist`` -- MNIST's test split from $JAXSUITE_DATA/mnist (the train images are not in the offline copy),
  split once into disjoint train / test parts (``data.test_fraction``, stratified by class, a fixed seed).
* ``digits`` -- scikit-learn's 8x8 digits (shipped in its wheel), upsampled to 16x16: the embedded data set of
  smoke tests.
* ``imagefolder`` -- a user folder ``data.root`` with ``train/<class>/*`` and ``test/<class>/*`` images,
  read through `datasets`' imagefolder builder, resized to ``data.image_size``.

Images come back as float32 NHWC in [0, 1], labels int32. ``data`` is the config's ``data`` block: ``name``,
``image_size``, ``test_fraction``, ``split_seed``, ``root``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsuite.core.errors import ConfigError, DataMissingError
from jaxsuite.data.cache import manifest_digest
from jaxsuite.data.mnist import load_mnist
from jaxsuite.data.sources import MNIST

DATASETS = ("mnist", "digits", "imagefolder")
_MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def data_status(name: str) -> str:
    if name == "digits":
        return "embedded (scikit-learn)"
    if name == "imagefolder":
        return "user folder (config key data.root)"
    status = MNIST.status(_MNIST_FILES)
    return status if status in ("present",) or status.startswith("bad") else f"missing ({MNIST.folder})"


def check(data) -> dict[str, str]:
    """The data config's files present (MNIST's verified against their pinned sha256); returns their digests
    (a user folder: its manifest digest, relative paths and sizes)."""
    name = data.name
    if name not in DATASETS:
        raise ConfigError(f"config key 'data.name' is {name!r}; known data sets: {', '.join(DATASETS)}")
    if name == "mnist":  # raises DataMissingError / DataCorruptError naming the file and the fetch command
        return MNIST.digests(_MNIST_FILES)
    if name == "imagefolder":
        root = Path(data.root)
        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise DataMissingError(f"config key 'data.root': {root / split} is not a folder "
                                       f"(expected {root}/{{train,test}}/<class>/<image files>)")
        return {f"imagefolder:{root}": manifest_digest(root, ("train/**/*", "test/**/*"))}
    return {}


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): ``test_fraction`` of every class goes to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _imagefolder(root: Path, size: int) -> dict[str, dict[str, np.ndarray]]:
    import datasets

    out = {}
    for split in ("train", "test"):
        ds = datasets.load_dataset("imagefolder", data_dir=str(root / split), split="train")
        images = np.stack([np.asarray(im.convert("RGB").resize((size, size))) for im in ds["image"]])
        out[split] = {"image": images.astype(np.float32) / 255.0, "label": np.asarray(ds["label"], np.int32)}
    return out


def load(d) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {"image", "label"}, "test": {...}} for the data config ``d``."""
    check(d)
    if d.name == "imagefolder":
        splits = _imagefolder(Path(d.root), d.image_size)
    else:
        if d.name == "mnist":
            images, labels = load_mnist("test")
            images = images.astype(np.float32)[..., None] / 255.0
        else:
            from scipy import ndimage
            from sklearn.datasets import load_digits

            raw = load_digits()
            images = ndimage.zoom(raw.images.astype(np.float32) / 16.0, (1, 2, 2), order=1)[..., None]
            labels = raw.target.astype(np.int32)
        train, test = stratified_split(labels, d.test_fraction, d.split_seed)
        splits = {"train": {"image": images[train], "label": labels[train]},
                  "test": {"image": images[test], "label": labels[test]}}
    for split in splits.values():
        split["image"] = np.clip(split["image"], 0.0, 1.0).astype(np.float32)
    size = splits["train"]["image"].shape[1]
    if size != d.image_size:
        raise ConfigError(f"config key 'data.image_size' is {d.image_size} but {d.name} images are {size}x{size}")
    return splits
