"""A PNG grid of generated samples: one row per class, ``per_class`` samples each."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def save_grid(x: np.ndarray, y: np.ndarray, num_classes: int, path: Path, *, per_class: int = 10) -> Path:
    """Rows = classes 0..K-1 (the labels G was asked for), columns = their first ``per_class`` samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = x.shape[1:3]
    canvas = np.ones((num_classes * (h + 1), per_class * (w + 1)), np.float32)
    for k in range(num_classes):
        for j, i in enumerate(np.flatnonzero(y == k)[:per_class]):
            canvas[k * (h + 1):k * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = x[i, ..., 0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, canvas, cmap="gray", vmin=0.0, vmax=1.0)
    return path
