"""Image classification data for MIM-Refiner's self-supervised training and frozen-feature evaluation: the
labelled train / test splits of :mod:`jaxsuite.data.image_splits` (``mnist``, ``digits``, ``imagefolder`` --
ImageNet-1K in the paper preset), with a validation part held out of the train split, plus ``idx``, the
example's index in its split (the NN queue uses it to never retrieve a sample's own projection).

Validation (issue 35's selection protocol): ``data.val_fraction`` of every class of the train split, drawn
once with ``data.split_seed``, is held out of *all* training (the MAE, the refiner and every probe's labelled
bank) and is what every choice is made on (``eval.block="best"``, the preset's tuned settings). The test split
is only read by the final evaluation of a run.
"""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import image_splits
from jaxsuite.data.image_splits import DATASETS, data_status

__all__ = ["DATASETS", "data_status", "check", "load", "SPLITS"]

SPLITS = ("train", "val", "test")


def check(config) -> dict[str, str]:
    fraction = config.data.get("val_fraction", None)
    if not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"config key 'data.val_fraction' must be a fraction in (0, 1) of the train split held "
                          f"out for validation, got {fraction!r}")
    return image_splits.check(config.data)


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {"image", "label", "idx"}, "val": {...}, "test": {...}} for ``config.data``: train and val are
    disjoint stratified parts of the data set's train split."""
    check(config)
    splits = image_splits.load(config.data)
    whole = splits["train"]
    train, val = image_splits.stratified_split(whole["label"], config.data.val_fraction,
                                               config.data.split_seed + 1)
    if not len(train) or not len(val):
        raise ConfigError(f"config key 'data.val_fraction' ({config.data.val_fraction}) leaves an empty train or "
                          f"validation part of {len(whole['label'])} train images")
    splits = {"train": {k: v[train] for k, v in whole.items()}, "val": {k: v[val] for k, v in whole.items()},
              "test": splits["test"]}
    for split in splits.values():
        split["idx"] = np.arange(len(split["label"]), dtype=np.int32)
    return splits
