"""The loaders of the image sets a user brings (CIFAR-10/100 python batches, Fashion-MNIST IDX files) read the
official formats, and name the missing file or the malformed one."""
import gzip
import pickle

import numpy as np
import pytest

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import cifar
from jaxsuite.data.mnist import load_fashion_mnist


def _cifar_batch(path, n, label_key, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"data": data, label_key: labels, b"batch_label": b"x"}, f)
    return data, labels


def test_cifar10_batches_become_nhwc_images(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [_cifar_batch(folder / f"data_batch_{i}", 3, b"labels", i) for i in range(1, 6)]
    with pytest.raises(DataMissingError, match="test_batch"):
        cifar.load_cifar("cifar10", "test")
    x, y = cifar.load_cifar("cifar10", "train")
    assert x.shape == (15, 32, 32, 3) and y.tolist() == sum((lab for _, lab in batches), [])
    first = batches[0][0][0]  # CHW rows: red plane, then green, then blue
    np.testing.assert_array_equal(x[0, 0, 1], [first[1], first[1024 + 1], first[2048 + 1]])
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="test_batch"):
        cifar.load_cifar("cifar10", "test")
    (folder / "test_batch").write_bytes(pickle.dumps(__import__("os").getcwd))  # names a callable: refused
    with pytest.raises(UserError, match="refusing to unpickle"):
        cifar.load_cifar("cifar10", "test")


def test_cifar100_uses_the_fine_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    _, labels = _cifar_batch(folder / "test", 4, b"fine_labels", 0)
    assert cifar.load_cifar("cifar100", "test")[1].tolist() == labels
    assert cifar.status("cifar100").startswith("missing train")


def _idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    _idx(folder / "t10k-images-idx3-ubyte.gz", images)
    with pytest.raises(DataMissingError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist("test")
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([3, 7]))
    x, y = load_fashion_mnist("test")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [3, 7]
