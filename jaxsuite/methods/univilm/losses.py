"""UniVL's losses, in the official code's exact forms (modules/until_module.py, modules/modeling.py).

* :func:`mil_nce` -- video-text joint objective (paper eq. 4, MIL-NCE of Miech et al. 2020): rows / columns are the
  ``n_pair`` consecutive clips of each video; for text row i the positives are every clip of its own video, the
  negatives every other video's clips, counted in both directions (the video-to-text column and the text-to-video
  row, own-video entries removed from the latter); only the middle clip of each video is an anchor
  (``anchors="middle"``, official) or every clip is (``"all"``: n_pair times the signal per batch).
* :func:`cross_entropy_retrieval` (``CrossEn``) -- text-to-video softmax over the videos, diagonal positives: the
  alignment objective on cross-encoder scores (pre-training stage II, FT-Align).
* :func:`max_margin_ranking` (``MaxMarginRankingLoss``) -- FT-Joint fine-tuning: hinge ``margin + s_ij - s_ii`` and
  ``margin + s_ij - s_jj`` averaged over the whole matrix (the diagonal contributes the constant 2 * margin), with the
  official easy/hard negative re-weighting when ``n_pair > 1``.
* :func:`masked_lm` -- conditioned masked language model (CMLM, eq. 5): cross entropy on labelled tokens.
* :func:`masked_frame_nce` -- conditioned masked frame model (CMFM, eq. 6): each masked frame's predicted feature
  scored against every real frame of the batch (dot product), softmax, the true frame the positive.
* :func:`caption_nll` -- language reconstruction / captioning (eq. 8): token cross entropy over real target tokens.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _masked_mean(values, mask):
    mask = mask.astype(values.dtype)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def mil_nce(sim, n_pair: int, anchors: str = "middle"):
    """``sim`` [B*n_pair, B*n_pair] text x video (clips of a video adjacent)."""
    if anchors not in ("middle", "all"):
        raise ValueError(f"MIL-NCE anchors must be 'middle' or 'all', got {anchors!r}")
    rows = sim.shape[0]
    batch = rows // n_pair
    same = jnp.asarray(np.kron(np.eye(batch), np.ones((n_pair, n_pair))), sim.dtype)
    from_text = sim - 1e12 * same
    logpt = jax.nn.log_softmax(jnp.concatenate([sim.T, from_text], -1), -1)
    positives = jnp.concatenate([same, jnp.zeros_like(same)], -1)
    nll = -jax.nn.logsumexp(jnp.where(positives > 0, logpt, -jnp.inf), -1)
    if anchors == "all":
        return nll.mean()
    return nll[jnp.arange(batch) * n_pair + n_pair // 2].mean()


def cross_entropy_retrieval(sim):
    return -jnp.diag(jax.nn.log_softmax(sim, -1)).mean()


def max_margin_ranking(sim, *, margin: float, n_pair: int = 1, negative_weighting: bool = False,
                       hard_negative_rate: float = 0.5):
    d = jnp.diag(sim)
    hinge = jax.nn.relu(margin + sim - d[:, None]) + jax.nn.relu(margin + sim - d[None, :])
    batch = sim.shape[0] // n_pair
    if negative_weighting and n_pair > 1 and batch > 1:
        easy = 1.0 - hard_negative_rate
        alpha = easy / ((batch - 1) * (1.0 - easy))
        weights = np.kron((1 - alpha) * np.eye(batch) + alpha, np.ones((n_pair, n_pair))) * (batch * (1 - easy))
        hinge = hinge * jnp.asarray(weights, sim.dtype)
    return hinge.mean()


def masked_lm(logits, labels):
    """``labels`` -1 = not predicted."""
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, jnp.maximum(labels, 0)[..., None], -1)[..., 0]
    return _masked_mean(nll, labels >= 0)


def masked_frame_nce(predicted, video, video_valid, masked):
    """predicted [B, F, D] (at every frame), video [B, F, D] the LayerNorm'ed true features, ``masked`` [B, F] the
    frames whose loss counts."""
    d = video.shape[-1]
    p, v = predicted.reshape(-1, d), video.reshape(-1, d)
    ok = video_valid.reshape(-1)
    logits = jnp.where(ok[:, None] & ok[None, :], p @ v.T, p @ v.T - 1e8)
    nll = -jnp.diag(jax.nn.log_softmax(logits, -1))
    return _masked_mean(nll, masked.reshape(-1))


def caption_nll(logits, targets, valid):
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
    return _masked_mean(nll, valid)
