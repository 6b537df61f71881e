"""The private data set and the held-out test set.

``mnist`` (issue default): MNIST's 10k test images from $JAXSUITE_DATA/mnist, split once by a fixed seed into
8,000 private images (of which ``labeled_fraction`` keep their labels) and 2,000 held-out test images that no
private mechanism ever touches. ``digits``: scikit-learn's 1,797 8x8 digits (embedded, for the quickstart and
smoke tests), split 80/20 the same way. Pixels in [0, 1], images NHWC. The split depends on the seed only, never
on the data, so it costs no privacy (no data-dependent preprocessing outside the budget)."""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data.mnist import load_mnist

DATASETS = ("digits", "mnist")


def load(name: str, *, test_size: int, labeled_fraction: float, seed: int = 0) -> dict:
    """{"private": {"x", "y", "labeled"}, "test": {"x", "y"}, "num_classes", "image_shape"}; ``labeled`` marks
    the private examples whose labels the method may use."""
    if name == "mnist":
        images, labels = load_mnist("test")
        x = images.astype(np.float32)[..., None] / 255.0
    elif name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, labels = (d.images.astype(np.float32) / 16.0)[..., None], d.target.astype(np.int32)
    else:
        raise ConfigError(f"unknown dataset {name!r} for pate_triplegan (known: {', '.join(DATASETS)})")
    if not 0 < test_size < len(x):
        raise ConfigError(f"config key 'data.test_size' must be in (0, {len(x)}), got {test_size}")
    if not 0 < labeled_fraction <= 1:
        raise ConfigError(f"config key 'data.labeled_fraction' must be in (0, 1], got {labeled_fraction}")
    order = np.random.default_rng([seed, 7]).permutation(len(x))
    test, private = order[:test_size], order[test_size:]
    labeled = np.zeros(len(private), bool)
    labeled[: int(round(labeled_fraction * len(private)))] = True
    return {"private": {"x": x[private], "y": labels[private].astype(np.int32), "labeled": labeled},
            "test": {"x": x[test], "y": labels[test].astype(np.int32)},
            "num_classes": int(labels.max()) + 1, "image_shape": tuple(x.shape[1:])}
