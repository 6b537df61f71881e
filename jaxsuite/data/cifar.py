"""CIFAR-10 and CIFAR-100 from their official "python version" archives, extracted by the user into
$JAXSUITE_DATA/cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch} and
$JAXSUITE_DATA/cifar100/cifar-100-python/{train, test} (pickled dicts: b"data" uint8 [N, 3072] in CHW order,
b"labels" or b"fine_labels"), read by ``restricted_pickle`` (no code in a pickle runs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import restricted_pickle
from jaxsuite.data.cache import data_root

LAYOUT = {"cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)],
                                              "test": ["test_batch"]}, b"labels"),
          "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, b"fine_labels")}
URLS = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}


def folder(name: str) -> Path:
    return data_root() / name / LAYOUT[name][0]


def status(name: str) -> str:
    missing = [f for files in LAYOUT[name][1].values() for f in files if not (folder(name) / f).is_file()]
    return "present" if not missing else f"missing {', '.join(missing)} in {folder(name)}"


def _read(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = restricted_pickle.load(path, "CIFAR python-version batch", encoding="bytes")
    try:
        data, labels = np.asarray(d[b"data"], np.uint8), np.asarray(d[label_key], np.int32)
    except (KeyError, TypeError, IndexError) as e:
        raise UserError(f"{path} is not a CIFAR python-version batch (a pickled dict with b'data' and "
                        f"{label_key!r}): {e!r}") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise UserError(f"{path}: expected data [N, 3072] and N labels, got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 32, 32, 3], labels int32 [N]) of ``cifar10`` / ``cifar100``'s train or test split."""
    if name not in LAYOUT:
        raise UserError(f"unknown CIFAR data set {name!r} (known: {', '.join(LAYOUT)})")
    sub, splits, label_key = LAYOUT[name]
    paths = [folder(name) / f for f in splits[split]]
    for p in paths:
        if not p.is_file():
            raise DataMissingError(f"data file {p.name} not found in {p.parent}: download {URLS[name]} and extract "
                                   f"it into {data_root() / name}")
    parts = [_read(p, label_key) for p in paths]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
