"""Multi-digit images: two digits on one canvas (left and right, small jitter, pixel-wise max).

``multi_digits`` composes sklearn's 8x8 digits (shipped in the wheel) upsampled to 16x16;
``multi_mnist`` composes MNIST's 28x28 test split from $JAXSUITE_DATA/mnist. Source images are
split into disjoint train/test pools *before* composing, so no test digit is seen in training.
Two tasks: the left digit and the right digit.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

TASKS = ("left", "right")


def split_pools(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def compose_pairs(images: np.ndarray, labels: np.ndarray, n_pairs: int, canvas_hw: tuple[int, int],
                  left_x: tuple[int, int], right_x: tuple[int, int], y_range: tuple[int, int],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n_pairs`` canvases [n, H, W, 1] in [0, 1] with labels ``left`` and ``right``."""
    n, h, w = images.shape
    H, W = canvas_hw
    if max(left_x[1], right_x[1]) + w > W or y_range[1] + h > H:
        raise ValueError(f"digits of {h}x{w} at the given offsets do not fit a {H}x{W} canvas")
    i, j = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    canvas = np.zeros((n_pairs, H, W), np.float32)
    for idx, xr in ((i, left_x), (j, right_x)):
        xs = rng.integers(xr[0], xr[1] + 1, n_pairs)
        ys = rng.integers(y_range[0], y_range[1] + 1, n_pairs)
        for m in range(n_pairs):
            region = canvas[m, ys[m]:ys[m] + h, xs[m]:xs[m] + w]
            np.maximum(region, images[idx[m]], out=region)
    return {"image": canvas[..., None], "left": labels[i].astype(np.int32), "right": labels[j].astype(np.int32)}


def _compose_splits(images, labels, *, n_train, n_test, test_fraction, seed, **layout):
    train_pool, test_pool = split_pools(len(images), test_fraction, seed)
    rng = np.random.default_rng([seed, 1])
    train = compose_pairs(images[train_pool], labels[train_pool], n_train, rng=rng, **layout)
    test = compose_pairs(images[test_pool], labels[test_pool], n_test, rng=rng, **layout)
    return {"train": train, "test": test}


def multi_digits(n_train: int = 10000, n_test: int = 2000, *, test_fraction: float = 0.3, seed: int = 0):
    """sklearn digits (1797 images, 8x8, 0..16) upsampled to 16x16 on a 20x32 canvas."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = ndimage.zoom(digits.images.astype(np.float32) / 16.0, (1, 2, 2), order=1).clip(0, 1)
    return _compose_splits(images, digits.target, n_train=n_train, n_test=n_test, test_fraction=test_fraction,
                           seed=seed, canvas_hw=(20, 32), left_x=(0, 4), right_x=(12, 16), y_range=(0, 4))


def multi_mnist(n_train: int = 20000, n_test: int = 4000, *, test_fraction: float = 0.2, seed: int = 0):
    """MNIST's 10k test images (28x28) split into pools, composed on a 36x48 canvas."""
    from jaxsuite.data.mnist import load_mnist

    images, labels = load_mnist("test")
    images = images.astype(np.float32) / 255.0
    return _compose_splits(images, labels, n_train=n_train, n_test=n_test, test_fraction=test_fraction,
                           seed=seed, canvas_hw=(36, 48), left_x=(0, 6), right_x=(14, 20), y_range=(0, 8))
