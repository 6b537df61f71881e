"""MNIST from its original IDX gz files in $JAXSUITE_DATA/mnist, Fashion-MNIST (the same format, put by the user
into $JAXSUITE_DATA/fashion_mnist) likewise."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from jaxsuite.core.errors import DataCorruptError, DataMissingError, UserError
from jaxsuite.data.cache import data_root
from jaxsuite.data.sources import MNIST

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file (gzip or raw): magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataCorruptError(f"data file {path} cannot be read ({type(err).__name__}: {err}): replace it "
                               f"(MNIST: `jaxsuite data fetch mnist`)") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an IDX uint8 file (bad magic {data[:4].hex()})")
    ndim = data[3]
    dims = np.frombuffer(data, ">i4", count=ndim, offset=4)
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path} holds {body.size} bytes of data, its header says {int(np.prod(dims))}")
    return body.reshape(tuple(int(d) for d in dims))


def load_mnist(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int32 [N]) of the ``train`` or ``test`` split."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(MNIST.path(f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(MNIST.path(f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int32)
    if len(images) != len(labels):
        raise UserError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def load_fashion_mnist(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's (images uint8 [N, 28, 28], labels int32 [N]) from $JAXSUITE_DATA/fashion_mnist."""
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = [data_root() / "fashion_mnist" / f"{prefix}-{kind}-idx{d}-ubyte.gz" for kind, d in (("images", 3),
                                                                                                  ("labels", 1))]
    for p in paths:
        if not p.is_file():
            raise DataMissingError(f"data file {p.name} not found in {p.parent}: download it from "
                                   f"{FASHION_MNIST_URL}{p.name} (Xiao et al. 2017)")
    images, labels = read_idx(paths[0]), read_idx(paths[1]).astype(np.int32)
    if len(images) != len(labels):
        raise UserError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels
