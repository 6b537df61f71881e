"""The private data set and the held-out test set.

``mnist`` (issue default): MNIST's 10k test images from $JAXSUITE_DATA/mnist, split once by a fixed seed into
8,000 private images (of which ``labeled_fraction`` keep their labels) and 2,000 held-out test images that no
private mechanism ever touches. ``mnist_full`` (the paper's setting): the 60k training images are private, the
10k test images held out. ``digits``: scikit-learn's 1,797 8x8 digits (embedded, for the quickstart and smoke
tests), split the same way as ``mnist``. Pixels in [0, 1], images NHWC. The split depends on a fixed seed only,
never on the data, so it costs no privacy (no data-dependent preprocessing outside the budget)."""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data.mnist import load_mnist
from jaxsuite.data.sources import MNIST

DATASETS = ("digits", "mnist", "mnist_full")
_MNIST_FILES = {"mnist": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
                "mnist_full": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def data_status(name: str) -> str:
    if name == "digits":
        return "embedded (scikit-learn)"
    if name not in _MNIST_FILES:
        raise ConfigError(f"unknown dataset {name!r} for pate_triplegan (known: {', '.join(DATASETS)})")
    missing = [f for f in _MNIST_FILES[name] if not (MNIST.folder / f).is_file()]
    return "present" if not missing else f"missing {', '.join(missing)} in {MNIST.folder}"


def _images(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32)[..., None] / 255.0


def load(name: str, *, test_size: int, labeled_fraction: float, num_private: int = 0, seed: int = 0) -> dict:
    """{"private": {"x", "y", "labeled", "id"}, "test": {"x", "y"}, "num_classes", "image_shape"}; ``labeled``
    marks the private examples whose labels the method may use; ``id`` is each example's index in its source file
    (a stable identity: the teachers' shards hash it); ``num_private`` > 0 keeps only that many."""
    if not 0 < labeled_fraction <= 1:
        raise ConfigError(f"config key 'data.labeled_fraction' must be in (0, 1], got {labeled_fraction}")
    if name == "mnist_full":
        (x, labels), (tx, ty) = load_mnist("train"), load_mnist("test")
        x, tx = _images(x), _images(tx)
        order = np.random.default_rng([seed, 7]).permutation(len(x))
        test = {"x": tx, "y": ty}
    else:
        if name == "mnist":
            images, labels = load_mnist("test")
            x = _images(images)
        elif name == "digits":
            from sklearn.datasets import load_digits

            digits = load_digits()
            x, labels = (digits.images.astype(np.float32) / 16.0)[..., None], digits.target.astype(np.int32)
        else:
            raise ConfigError(f"unknown dataset {name!r} for pate_triplegan (known: {', '.join(DATASETS)})")
        if not 0 < test_size < len(x):
            raise ConfigError(f"config key 'data.test_size' must be in (0, {len(x)}), got {test_size}")
        order = np.random.default_rng([seed, 7]).permutation(len(x))
        test = {"x": x[order[:test_size]], "y": labels[order[:test_size]]}
        order = order[test_size:]
    if num_private:
        if not 0 < num_private <= len(order):
            raise ConfigError(f"config key 'data.num_private' must be in (0, {len(order)}], got {num_private}")
        order = order[:num_private]
    labeled = np.zeros(len(order), bool)
    labeled[: int(round(labeled_fraction * len(order)))] = True
    return {"private": {"x": x[order], "y": labels[order].astype(np.int32), "labeled": labeled,
                        "id": order.astype(np.int64)},
            "test": {"x": test["x"], "y": test["y"].astype(np.int32)},
            "num_classes": int(labels.max()) + 1, "image_shape": tuple(x.shape[1:])}
