"""Evaluation metrics of the paper's tasks (Sec. 4.1): accuracy for the digit tasks; mIoU and pixel
accuracy for segmentation; mean / median angle error and % of pixels within 11.25, 22.5, 30 degrees
for surface normals. Computed on host over the whole test set (the median needs all pixels)."""
from __future__ import annotations

import numpy as np

IGNORE = 255


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, -1) == labels))


def confusion(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    valid = labels != IGNORE
    return np.bincount(labels[valid] * num_classes + pred[valid], minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def segmentation_metrics(conf: np.ndarray) -> dict[str, float]:
    """mIoU over classes that occur (in labels or predictions), and pixel accuracy."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return {"miou": float(np.mean(tp[present] / union[present])), "pixel_accuracy": float(tp.sum() / conf.sum())}


def normal_angles(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Angle errors in degrees at valid pixels (unit target)."""
    valid = np.sum(target * target, -1) > 0.5
    p = pred[valid] / np.maximum(np.linalg.norm(pred[valid], axis=-1, keepdims=True), 1e-6)
    return np.degrees(np.arccos(np.clip(np.sum(p * target[valid], -1), -1.0, 1.0)))


def normal_metrics(angles: np.ndarray) -> dict[str, float]:
    return {"normal_mean_angle": float(np.mean(angles)), "normal_median_angle": float(np.median(angles)),
            "normal_within_11.25": float(np.mean(angles < 11.25)), "normal_within_22.5": float(np.mean(angles < 22.5)),
            "normal_within_30": float(np.mean(angles < 30))}
