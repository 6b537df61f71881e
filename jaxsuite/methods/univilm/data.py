"""UniVL's data: pre-training videos (clips with transcripts) and fine-tuning clips (with captions) as features.

``youcookii`` / ``msrvtt`` (paper scale, user-supplied): HowTo100M pre-training and the fine-tuning splits in the
official layouts (:mod:`official_data`). ``moving_shapes`` (generated, jaxsuite/data/moving_shapes.py): the frames of every clip go once through the frozen
extractor (:mod:`features`) and the features are cached with the texts under $JAXSUITE_DATA/generated (when
writable). The WordPiece vocabulary is learnt from the pre-training transcripts and the fine-tuning captions.

Arrays (numpy): ``pretrain``: ``video`` [V, C, F, D], ``video_valid`` [V, C, F], ``text_ids`` / ``text_valid``
[V, C, L] -- V videos of C consecutive clips (the MIL-NCE positives, ``n_pair``); ``train`` / ``test``: ``video``
[N, F, D], ``video_valid`` [N, F], ``text_ids`` / ``text_valid`` [N, L] (the captions). ``captions``: the caption
strings of ``train`` / ``test`` (the references of the caption metrics).
"""
from __future__ import annotations

import functools
import hashlib
import json

import ml_collections
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import moving_shapes
from jaxsuite.data.cache import generated_dir
from jaxsuite.methods.univilm import features, official_data, tokenizer

DATASETS = ("moving_shapes", "youcookii", "msrvtt")
VERSION = 2  # bump when the generator or the extractor changes: the cache key includes it


def data_status(name: str) -> str:
    return "generated" if name == "moving_shapes" else "user-supplied (data.root, data.howto_*)"


def check(config) -> None:
    d = config.data
    if d.name not in DATASETS:
        raise ConfigError(f"config key 'data.name' must be one of {DATASETS}, got {d.name!r}")
    for key in ("pretrain_videos", "train_clips", "test_clips", "frames_per_event", "clips_per_video",
                "max_words", "vocab_size", "max_frames", "feature_dim"):
        if int(d[key]) <= 0:
            raise ConfigError(f"config key 'data.{key}' must be positive, got {d[key]}")
    if not 0.0 <= float(d.misalign) < 1.0:
        raise ConfigError(f"config key 'data.misalign' must be in [0, 1), got {d.misalign}")


def _clips_to_arrays(clips: list[np.ndarray], max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of each clip -> features [N, max_frames, D] (zero-padded) and valid [N, max_frames]."""
    lengths = [len(c) for c in clips]
    feats = features.extract(np.concatenate(clips)) if clips else np.zeros((0, features.FEATURE_DIM), np.float32)
    video = np.zeros((len(clips), max_frames, features.FEATURE_DIM), np.float32)
    valid = np.zeros((len(clips), max_frames), bool)
    offset = 0
    for i, n in enumerate(lengths):
        video[i, :n], valid[i, :n] = feats[offset:offset + n], True
        offset += n
    return video, valid


def _generate(d) -> dict[str, np.ndarray]:
    max_frames = 3 * d.frames_per_event
    kw = {"frames_per_event": d.frames_per_event, "clips_per_video": d.clips_per_video, "misalign": d.misalign}
    out = {}
    pre = moving_shapes.generate("pretrain", d.pretrain_videos, d.seed, **kw)
    flat = [clip for video in pre["frames"] for clip in video]
    video, valid = _clips_to_arrays(flat, max_frames)
    shape = (d.pretrain_videos, d.clips_per_video)
    out["pretrain/video"] = video.reshape(*shape, *video.shape[1:])
    out["pretrain/video_valid"] = valid.reshape(*shape, max_frames)
    out["pretrain/text"] = np.asarray(pre["text"])
    for split, count in (("train", d.train_clips), ("test", d.test_clips)):
        gen = moving_shapes.generate(split, count, d.seed, **kw)
        out[f"{split}/video"], out[f"{split}/video_valid"] = _clips_to_arrays(gen["frames"], max_frames)
        out[f"{split}/text"] = np.asarray(gen["text"])
    return out


def _generated(d) -> dict[str, np.ndarray]:
    spec = json.dumps([VERSION, d.pretrain_videos, d.train_clips, d.test_clips, d.frames_per_event,
                       d.clips_per_video, d.misalign, d.seed])
    folder = generated_dir()
    path = folder / f"moving_shapes_{hashlib.sha256(spec.encode()).hexdigest()[:16]}.npz" if folder else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return dict(z)
    out = _generate(d)
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **out)
        tmp.replace(path)
    return out


def _official(d) -> dict[str, np.ndarray]:
    """HowTo100M pre-training videos + the YouCookII / MSR-VTT splits, as :func:`_generate`'s arrays."""
    shape = {"max_frames": d.max_frames, "feature_dim": d.feature_dim}
    pre = official_data.howto100m(d.howto_csv, d.howto_captions, d.howto_features, count=d.pretrain_videos,
                                  clips_per_video=d.clips_per_video, **shape)
    out = {f"pretrain/{k}": v for k, v in pre.items()}
    reader = official_data.youcookii if d.name == "youcookii" else official_data.msrvtt
    for split in ("train", "test"):
        for k, v in reader(d.root, split, **shape).items():
            out[f"{split}/{k}"] = v
    return out


def load(config) -> dict:
    """{"pretrain": arrays, "train": arrays, "test": arrays, "captions": {"train": [...], "test": [...]},
    "codec": TextCodec} for ``config.data`` (cached per data section)."""
    return _load(json.dumps(config.data.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=2)
def _load(data_json: str) -> dict:
    d = ml_collections.ConfigDict(json.loads(data_json))
    raw = _generated(d) if d.name == "moving_shapes" else _official(d)
    corpus = [*raw["pretrain/text"].reshape(-1).tolist(), *raw["train/text"].tolist()]
    codec = tokenizer.TextCodec(tokenizer.from_vocab_file(d.vocab_file) if d.vocab_file
                                else tokenizer.train_wordpiece(corpus, d.vocab_size))
    out = {"codec": codec, "captions": {}}
    for split in ("pretrain", "train", "test"):
        texts = raw[f"{split}/text"]
        ids, valid = codec.encode(texts.reshape(-1).tolist(), d.max_words)
        out[split] = {"video": raw[f"{split}/video"], "video_valid": raw[f"{split}/video_valid"],
                      "text_ids": ids.reshape(*texts.shape, -1), "text_valid": valid.reshape(*texts.shape, -1)}
        if split != "pretrain":
            out["captions"][split] = texts.tolist()
    return out
