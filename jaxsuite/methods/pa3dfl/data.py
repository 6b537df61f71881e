"""Federated data of a run: a labelled image set partitioned over clients (``jaxsuite.data.federated``), each
client's local train / test sets padded into width groups, and the clients' widths.

Data sets: ``digits`` (scikit-learn's 1,797 8x8 digits, embedded), ``mnist`` (MNIST's 10k test images from
$JAXSUITE_DATA/mnist, the only MNIST images in the shared data), ``fashion_mnist`` / ``cifar10`` / ``cifar100``
(the paper's, train and test pooled before the partition; from the user's $JAXSUITE_DATA: ``jaxsuite.data.mnist.
load_fashion_mnist``, ``jaxsuite.data.cifar``). Pixels in [0, 1], NHWC.

Widths: ``clients.widths`` lists the capacity levels (strings such as "1/8"); client i gets level i mod L after a
seeded shuffle, so every level has the same number of clients (the paper's uniform capacity distribution).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import cifar, federated
from jaxsuite.data.cache import data_root, manifest_digest
from jaxsuite.data.mnist import load_fashion_mnist, load_mnist
from jaxsuite.data.sources import MNIST

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")


def data_status(name: str) -> str:
    if name == "digits":
        return "embedded (scikit-learn)"
    if name == "mnist":
        status = MNIST.status(_MNIST_FILES)
        return status if status == "present" or status.startswith("bad") else \
            f"missing {', '.join(f for f in _MNIST_FILES if not (MNIST.folder / f).is_file())} in {MNIST.folder}"
    if name == "fashion_mnist":
        folder = data_root() / "fashion_mnist"
        splits = ("t10k",) if name == "mnist" else ("train", "t10k")
        missing = [f"{s}-{k}-idx{d}-ubyte.gz" for s in splits for k, d in (("images", 3), ("labels", 1))
                   if not (folder / f"{s}-{k}-idx{d}-ubyte.gz").is_file()]
        return "present" if not missing else f"missing {', '.join(missing)} in {folder}"
    if name in cifar.LAYOUT:
        return cifar.status(name)
    raise ConfigError(f"unknown dataset {name!r} for pa3dfl (known: {', '.join(DATASETS)})")


_MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def digests(name: str) -> dict[str, str]:
    """MNIST's pinned sha256 (verified); a user-supplied folder's manifest digest (relative paths and sizes)."""
    if name == "mnist":
        return MNIST.digests(_MNIST_FILES)
    if name == "fashion_mnist":
        return {"fashion_mnist": manifest_digest(data_root() / "fashion_mnist", ("*.gz",))}
    if name in cifar.LAYOUT:
        return {name: manifest_digest(data_root() / name)}
    return {}


def load_images(name: str, downsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, H, W, C] float32 in [0, 1], labels [N] int32); ``downsample`` > 1 averages each
    downsample x downsample block (28x28 MNIST -> 14x14 with 2)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = (d.images.astype(np.float32) / 16.0)[..., None], d.target.astype(np.int32)
    elif name == "mnist":  # the test split only: the shared data has no MNIST training images
        images, labels = load_mnist("test")
        x, y = images.astype(np.float32)[..., None] / 255.0, labels.astype(np.int32)
    elif name == "fashion_mnist":  # the paper's: train and test pooled, then partitioned over the clients
        parts = [load_fashion_mnist(s) for s in ("train", "test")]
        x = np.concatenate([i for i, _ in parts]).astype(np.float32)[..., None] / 255.0
        y = np.concatenate([lab for _, lab in parts])
    elif name in cifar.LAYOUT:
        parts = [cifar.load_cifar(name, s) for s in ("train", "test")]
        x = np.concatenate([i for i, _ in parts]).astype(np.float32) / 255.0
        y = np.concatenate([lab for _, lab in parts])
    else:
        raise ConfigError(f"unknown dataset {name!r} for pa3dfl (known: {', '.join(DATASETS)})")
    f = downsample
    if not (isinstance(f, int) and f >= 1 and x.shape[1] % f == 0):
        raise ConfigError(f"config key 'data.downsample' must be an integer >= 1 dividing {x.shape[1]}, got {f!r}")
    n, h, w, c = x.shape
    return x.reshape(n, h // f, f, w // f, f, c).mean((2, 4)), y


def group_key(p: Fraction) -> str:
    """A width as a pytree / checkpoint key: 1/4 -> "1_4"."""
    p = Fraction(p)
    return f"{p.numerator}_{p.denominator}"


def width_of(key: str) -> Fraction:
    num, den = key.split("_")
    return Fraction(int(num), int(den))


def parse_widths(levels) -> tuple[Fraction, ...]:
    try:
        out = tuple(Fraction(str(w)) for w in levels)
    except (ValueError, ZeroDivisionError) as e:
        raise ConfigError(f"config key 'clients.widths' must list fractions such as '1/4', got {levels!r}") from e
    if not out or any(not 0 < w <= 1 for w in out) or 1 not in out:
        raise ConfigError(f"config key 'clients.widths' must be fractions in (0, 1] including 1, got {levels!r}")
    return out


def client_widths(levels: tuple[Fraction, ...], num_clients: int, seed: int) -> tuple[Fraction, ...]:
    order = np.random.default_rng([seed, 41]).permutation(num_clients)
    return tuple(levels[int(i) % len(levels)] for i in order)


def _stack(x, y, parts: list[np.ndarray], n_max: int) -> dict:
    xs = np.zeros((len(parts), n_max, *x.shape[1:]), np.float32)
    ys = np.zeros((len(parts), n_max), np.int32)
    for j, idx in enumerate(parts):
        xs[j, : len(idx)], ys[j, : len(idx)] = x[idx], y[idx]
    return {"x": xs, "y": ys, "count": np.array([len(i) for i in parts], np.int32)}


def build(cfg, seed: int) -> dict:
    """{"x", "y", "parts": per client {"train", "test"} indices, "widths": per client, "num_classes",
    "in_channels", "image_size"}."""
    x, y = load_images(cfg.data.dataset, cfg.data.downsample)
    d, c = cfg.data, cfg.clients
    parts = federated.partition(y, d.partition, c.num_clients, seed, alpha=d.alpha,
                                shards_per_client=d.shards_per_client, test_fraction=d.test_fraction,
                                min_size=d.min_size)
    return {"x": x, "y": y, "parts": parts, "widths": client_widths(parse_widths(c.widths), c.num_clients, seed),
            "num_classes": int(y.max()) + 1, "in_channels": int(x.shape[-1]), "image_size": int(x.shape[1])}


def width_groups(built: dict, widths: tuple[Fraction, ...], split: str) -> dict:
    """{width key: {"ids", "x", "y", "count"}}: the clients of each width, their ``split`` set padded to the
    power of two at or above the largest client's (so that runs of other seeds mostly share one compilation)."""
    parts = built["parts"]
    n_max = 1 << (max(len(p[split]) for p in parts) - 1).bit_length()
    groups = {}
    for w in sorted(set(widths)):
        ids = [i for i, wi in enumerate(widths) if wi == w]
        groups[group_key(w)] = {"ids": np.array(ids, np.int32),
                          **_stack(built["x"], built["y"], [parts[i][split] for i in ids], n_max)}
    return groups
