"""Image classification data for MIM-Refiner's self-supervised training and frozen-feature evaluation: the
labelled train / test splits of :mod:`jaxsuite.data.image_splits` (``mnist``, ``digits``, ``imagefolder`` --
ImageNet-1K in the paper preset), plus ``idx``, the example's index in its split (the NN queue uses it to never
retrieve a sample's own projection)."""
from __future__ import annotations

import numpy as np

from jaxsuite.data import image_splits
from jaxsuite.data.image_splits import DATASETS, data_status

__all__ = ["DATASETS", "data_status", "check", "load"]


def check(config) -> dict[str, str]:
    return image_splits.check(config.data)


def load(config) -> dict[str, dict[str, np.ndarray]]:
    """{"train": {"image", "label", "idx"}, "test": {...}} for ``config.data``."""
    splits = image_splits.load(config.data)
    for split in splits.values():
        split["idx"] = np.arange(len(split["label"]), dtype=np.int32)
    return splits
