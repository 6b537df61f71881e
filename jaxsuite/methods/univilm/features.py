"""Frozen video feature extractors: per-frame features, computed once and cached with the data.

* :func:`extract`: a small fixed CNN over 32x32 RGB frames (conv 3x3 3->16, ReLU, conv 3x3 stride 2 16->16, ReLU,
  4x4 average pooling to a 4x4 grid) -> 256-d per frame. Its weights are He-normal draws from a fixed key and are
  never trained: a frozen extractor in the role S3D plays for the paper (whose features are Kinetics-trained;
  random convolutions keep colour, shape and position, which is what moving_shapes asks about).
* :func:`load_feature_file`: the paper-scale path, one pre-extracted ``.npy`` per video ([T, D], S3D at one
  feature per second), as the official dataloaders read them.
"""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.core.errors import UserError

FEATURE_DIM = 256
_EXTRACTOR_SEED = 20200205


@functools.lru_cache(maxsize=1)
def extractor_params() -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(jax.random.PRNGKey(_EXTRACTOR_SEED))
    return {"w1": jax.random.normal(k1, (3, 3, 3, 16)) * np.sqrt(2.0 / 27),
            "w2": jax.random.normal(k2, (3, 3, 16, 16)) * np.sqrt(2.0 / 144)}


@jax.jit
def _features(params: dict, frames: jax.Array) -> jax.Array:
    dims = ("NHWC", "HWIO", "NHWC")
    h = jax.nn.relu(jax.lax.conv_general_dilated(frames, params["w1"], (1, 1), "SAME", dimension_numbers=dims))
    h = jax.nn.relu(jax.lax.conv_general_dilated(h, params["w2"], (2, 2), "SAME", dimension_numbers=dims))
    n, hh, ww, c = h.shape  # [N, 16, 16, 16] -> 4x4 grid of 4x4 means
    h = h.reshape(n, 4, hh // 4, 4, ww // 4, c).mean((2, 4))
    return h.reshape(n, -1)


def extract(frames: np.ndarray, batch: int = 2048) -> np.ndarray:
    """[N, 32, 32, 3] frames in [0, 1] -> [N, 256] float32 features (batches padded to one compiled shape)."""
    if frames.ndim != 4 or frames.shape[1:] != (32, 32, 3):
        raise UserError(f"the frame extractor takes [N, 32, 32, 3] frames, got shape {frames.shape}")
    params = extractor_params()
    out = []
    for start in range(0, len(frames), batch):
        chunk = frames[start:start + batch]
        m = len(chunk)
        if m < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - m, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(_features(params, jnp.asarray(chunk)))[:m])
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def load_feature_file(path: str | Path, feature_dim: int) -> np.ndarray:
    """One video's pre-extracted features [T, feature_dim] from a ``.npy`` file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video feature file {path} not found (expected one .npy of [T, {feature_dim}] per video)")
    feats = np.load(path)
    if feats.ndim != 2 or feats.shape[1] != feature_dim:
        raise UserError(f"video feature file {path} has shape {feats.shape}; expected [T, {feature_dim}] "
                        f"(config key 'data.feature_dim')")
    return feats.astype(np.float32)
