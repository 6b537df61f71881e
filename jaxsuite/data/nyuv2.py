"""NYUv2 (Silberman et al. 2012) for the paper's two dense tasks: 40-class segmentation and normals.

Layout read (as VainF/nyuv2-python-toolkit extracts it), under $JAXSUITE_DATA/nyuv2:
``image/{train,test}/*.png`` (RGB), ``seg40/{train,test}/*.png`` and ``normal/{train,test}/*.png``
with matching file names, and ``splits.mat`` (795 train / 654 test indices). Labels may be raw
(one channel: 0..39, 255 = void) or colour-coded (RGB: PASCAL-VOC colormap at index label+1,
black = void). Normals use Ladicky et al.'s RGB encoding n = rgb / 127.5 - 1; black is invalid.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data.sources import NYUV2

NUM_CLASSES = 40
IGNORE = 255


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL-VOC bit-interleaved colormap, [n, 3] uint8."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def decode_labels(array: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
    """int32 labels 0..39 with 255 for void, from a raw or a colour-coded label image."""
    if array.ndim == 2:
        labels = array.astype(np.int32)
        bad = (labels >= NUM_CLASSES) & (labels != IGNORE)
        if bad.any():
            raise UserError(f"{path}: label values {np.unique(labels[bad])[:5]} outside 0..39 and 255")
        return labels
    rgb = array[..., :3].astype(np.int64)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    cmap = voc_colormap(NUM_CLASSES + 1).astype(np.int64)
    table = {int((r << 16) | (g << 8) | b): i - 1 for i, (r, g, b) in enumerate(cmap)}
    uniq, inverse = np.unique(keys, return_inverse=True)
    unknown = [hex(u) for u in uniq if int(u) not in table]
    if unknown:
        raise UserError(f"{path}: colours {unknown[:5]} are not in the VOC colormap of the 40 NYUv2 classes")
    lut = np.array([table[int(u)] for u in uniq], np.int32)
    labels = lut[inverse].reshape(keys.shape)
    return np.where(labels < 0, IGNORE, labels).astype(np.int32)


def decode_normals(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit normals float32 [H, W, 3], valid bool [H, W]) from the RGB encoding."""
    n = array[..., :3].astype(np.float32) / 127.5 - 1.0
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    valid = array[..., :3].sum(-1) > 0
    return np.where(valid[..., None], n / np.maximum(norm, 1e-6), 0.0).astype(np.float32), valid


def _read(path: Path, size: tuple[int, int] | None, resample) -> np.ndarray:
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}") from err
    if size is not None:
        img = img.resize((size[1], size[0]), resample)
    return np.asarray(img)


def load_frame(image: Path, seg: Path, normal: Path, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """One frame: image float32 [H, W, 3] in [0, 1], segmentation int32 [H, W], normals float32 [H, W, 3]
    (zero where invalid), all resized to ``size`` (H, W) when given (nearest for labels and normals)."""
    rgb = _read(image, size, Image.BILINEAR)[..., :3].astype(np.float32) / 255.0
    labels = decode_labels(_read(seg, size, Image.NEAREST), seg)
    normals, _ = decode_normals(_read(normal, size, Image.NEAREST))
    return {"image": rgb, "segmentation": labels, "normals": normals}


def load_split(split: str, size: tuple[int, int] = (321, 321), root: Path | None = None) -> dict[str, np.ndarray]:
    """All frames of ``split`` ("train" | "test") stacked, resized to ``size``."""
    root = Path(root) if root is not None else NYUV2.folder
    folder = root / "image" / split
    if not folder.is_dir():
        raise DataMissingError(f"NYUv2 folder {folder} not found: {NYUV2.manual}")
    names = sorted(p.name for p in folder.glob("*.png"))
    if not names:
        raise DataMissingError(f"no PNG frames in {folder}: {NYUV2.manual}")
    frames = []
    for name in names:
        paths = [root / sub / split / name for sub in ("image", "seg40", "normal")]
        for p in paths[1:]:
            if not p.is_file():
                raise DataMissingError(f"NYUv2 frame {name}: {p} is missing")
        frames.append(load_frame(*paths, size=size))
    return {k: np.stack([f[k] for f in frames]) for k in frames[0]}
