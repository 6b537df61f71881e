"""The pre-training corruptions of the official dataloader (dataloaders/dataloader_howto100m.py), as pure jax
functions of an explicit key, applied inside the jitted step.

* :func:`mask_tokens` (``_mask_tokens``): every token but the first and the last real one ([CLS] and [SEP]) is
  chosen with probability 0.15; a chosen token becomes [MASK] (80%), a uniformly random vocabulary id (10%) or stays
  (10%); labels are the original ids of the chosen tokens and -1 elsewhere.
* :func:`mask_frames` (``_get_video``): every real frame is zeroed with probability 0.15 (before the video
  LayerNorm); the masked positions are returned.
* :func:`enhance_video` (EnhancedV): with probability ``prob`` per video, all of its clips' input text is dropped
  (it becomes ``[CLS] [SEP]``); the decoder still reconstructs the full transcript.
* :func:`caption_io`: [CLS] w1..wn [SEP] -> decoder input [CLS] w1..wn and target w1..wn [SEP].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def mask_tokens(key, ids, valid, *, vocab_size: int, mask_id: int, prob: float = 0.15):
    k_choose, k_random = jax.random.split(key)
    pos = jnp.arange(ids.shape[-1])
    last = valid.sum(-1, keepdims=True) - 1
    eligible = valid & (pos > 0) & (pos < last)
    u = jax.random.uniform(k_choose, ids.shape)
    chosen = eligible & (u < prob)
    r = u / prob
    out = jnp.where(chosen & (r < 0.8), mask_id, ids)
    random_ids = jax.random.randint(k_random, ids.shape, 0, vocab_size)
    out = jnp.where(chosen & (r >= 0.8) & (r < 0.9), random_ids, out)
    return out, jnp.where(chosen, ids, -1)


def mask_frames(key, video, valid, prob: float = 0.15):
    chosen = valid & (jax.random.uniform(key, valid.shape) < prob)
    return jnp.where(chosen[..., None], 0.0, video), chosen


def enhance_video(key, ids, valid, prob, *, cls_id: int, sep_id: int):
    """ids / valid [B, C, L] (C clips per video): each video's text dropped with probability ``prob``."""
    drop = jax.random.uniform(key, ids.shape[:1]) < prob
    empty = jnp.zeros(ids.shape[-1], ids.dtype).at[0].set(cls_id).at[1].set(sep_id)
    ids = jnp.where(drop[:, None, None], empty, ids)
    valid = jnp.where(drop[:, None, None], empty != 0, valid)
    return ids, valid


def caption_io(ids, valid, *, sep_id: int, pad_id: int = 0):
    """(decoder input [B, L-1], its valid, target [B, L-1]); a target position counts where the input is valid."""
    caption_in = jnp.where(ids[:, :-1] == sep_id, pad_id, ids[:, :-1])
    in_valid = valid[:, :-1] & (ids[:, :-1] != sep_id)
    return caption_in, in_valid, ids[:, 1:]
