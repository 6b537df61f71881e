"""Images for Adv-KD: the labelled splits of :mod:`jaxsuite.data.image_splits` scaled to [-1, 1] (the DDPM data
range). ``mnist`` at 28x28 (quick preset: the teacher, the students and the FD classifier all train on the train
part; FD is measured against the held-out part), ``digits`` at 16x16 (smoke tests), ``imagefolder`` for the paper
preset's CelebA-HQ-style folder (256x256)."""
from __future__ import annotations

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import image_splits
from jaxsuite.data.image_splits import DATASETS, data_status

__all__ = ["DATASETS", "data_status", "check", "load"]


def check(config) -> dict[str, str]:
    digests = image_splits.check(config.data)
    if config.data.channels not in (1, 3):
        raise ConfigError(f"config key 'data.channels' must be 1 or 3, got {config.data.channels}")
    return digests


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {"image" [N, S, S, C] in [-1, 1], "label"}, "test": {...}}."""
    splits = image_splits.load(config.data)
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
