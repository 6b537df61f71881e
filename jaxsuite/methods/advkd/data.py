"""Images for Adv-KD: the labelled splits of :mod:`jaxsuite.data.image_splits` scaled to [-1, 1] (the DDPM data
range), with a validation part held out of the train part. ``mnist`` at 28x28 (quick preset), ``digits`` at 16x16
(smoke tests), ``imagefolder`` for the paper preset's CelebA-HQ-style folder (256x256).

Three disjoint parts (issue 35's selection protocol):

* ``train`` -- what the teacher, the FD classifier and (through the teacher's trajectories) the students learn
  from;
* ``val`` -- ``data.val_fraction`` of every class of the train part, drawn once with ``data.split_seed + 1``,
  held out of all training: the real statistics of ``val_fd``, the FD every choice is made on;
* ``test`` -- the data set's test part (``data.test_fraction`` of MNIST / digits, or the folder's test/): the real
  statistics of the reported ``fd``, read once per run, at its end.

``idx`` is each example's row in image_splits' train part (train, val) or test part (test): train and val
partition the former.
"""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import image_splits
from jaxsuite.data.image_splits import DATASETS, data_status

__all__ = ["DATASETS", "SPLITS", "data_status", "check", "load"]

SPLITS = ("train", "val", "test")


def check(config) -> dict[str, str]:
    fraction = config.data.get("val_fraction", None)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"config key 'data.val_fraction' must be a fraction in (0, 1) of the train part held "
                          f"out for validation, got {fraction!r}")
    digests = image_splits.check(config.data)
    if config.data.channels not in (1, 3):
        raise ConfigError(f"config key 'data.channels' must be 1 or 3, got {config.data.channels}")
    return digests


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {"image" [N, S, S, C] in [-1, 1], "label", "idx"}, "val": {...}, "test": {...}}."""
    check(config)
    parts = image_splits.load(config.data)
    whole = parts["train"]
    train, val = image_splits.stratified_split(whole["label"], config.data.val_fraction, config.data.split_seed + 1)
    if not len(train) or not len(val):
        raise ConfigError(f"config key 'data.val_fraction' ({config.data.val_fraction}) leaves an empty train or "
                          f"validation part of {len(whole['label'])} train images")
    test = parts["test"]
    splits = {"train": {"image": whole["image"][train], "label": whole["label"][train], "idx": train.astype(np.int32)},
              "val": {"image": whole["image"][val], "label": whole["label"][val], "idx": val.astype(np.int32)},
              "test": {"image": test["image"], "label": test["label"],
                       "idx": np.arange(len(test["label"]), dtype=np.int32)}}
    for name, split in splits.items():
        image = split["image"]
        if image.shape[-1] != config.data.channels:
            if config.data.channels == 1:
                image = image.mean(-1, keepdims=True)
            else:
                raise ConfigError(f"config key 'data.channels' is {config.data.channels} but the {name} images have "
                                  f"{image.shape[-1]} channel(s)")
        split["image"] = image * 2.0 - 1.0
    return splits
