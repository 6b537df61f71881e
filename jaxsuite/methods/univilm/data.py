"""UniVL's data: pre-training videos (clips with transcripts) and fine-tuning clips (with captions) as features.

``youcookii`` / ``msrvtt`` (paper scale, user-supplied): HowTo100M pre-training and the fine-tuning splits in the
official layouts (:mod:`official_data`). ``moving_shapes`` (generated, jaxsuite/data/moving_shapes.py): the frames of every clip go once through the frozen
extractor (:mod:`features`) and the features are cached with the texts under $JAXSUITE_DATA/generated (when
writable). The WordPiece vocabulary is learnt from the pre-training transcripts and the fine-tuning captions.

Arrays (numpy): ``pretrain``: ``video`` [V, C, F, D], ``video_valid`` [V, C, F], ``text_ids`` / ``text_valid``
[V, C, L] -- V videos of C consecutive clips (the MIL-NCE positives, ``n_pair``); ``train`` / ``val`` / ``test``:
``video`` [N, F, D], ``video_valid`` [N, F], ``text_ids`` / ``text_valid`` [N, L] (the captions). ``captions``: the
caption strings of ``train`` / ``val`` / ``test`` (the references of the caption metrics).

Validation (disjoint from test; only validation may steer a choice):

* ``moving_shapes``: ``data.val_clips`` more clips of the test stream -- indices ``test_clips ..
  test_clips + val_clips - 1`` of the generator's ``test`` split, each clip from its own (seed, split, index)
  stream, so the test clips (indices ``0 .. test_clips - 1``) are exactly those of before. Validation clips are
  therefore drawn as the test clips are: every one holds at least one held-out colour-shape pair, unseen in
  pre-training and fine-tuning (a hold-out of the fine-tuning clips would have none, and would measure
  something other than what test measures).
* ``youcookii`` / ``msrvtt``: neither has an official validation split we may use (YouCookII's val is the test
  split here, as in the official code), so ``data.val_fraction`` of the training split's *videos* (a seeded
  permutation of their index, :func:`held_out`) is held out with all of its clips; for MSR-VTT each held-out
  video keeps its first caption only, as the JSFusion test pairs one sentence with each video.
"""
from __future__ import annotations

import functools
import hashlib
import json

import ml_collections
import numpy as np

from jaxsuite.core.errors import ConfigError, UserError
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
    for key in ("pretrain_videos", "train_clips", "test_clips", "val_clips", "frames_per_event", "clips_per_video",
                "max_words", "vocab_size", "max_frames", "feature_dim"):
        if int(d[key]) <= 0:
            raise ConfigError(f"config key 'data.{key}' must be positive, got {d[key]}")
    if not 0.0 < float(d.val_fraction) < 1.0:
        raise ConfigError(f"config key 'data.val_fraction' must be in (0, 1), got {d.val_fraction}")
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
    train = moving_shapes.generate("train", d.train_clips, d.seed, **kw)
    # test and validation: one stream of the generator's test split, the first test_clips are the test set
    held = moving_shapes.generate("test", d.test_clips + d.val_clips, d.seed, **kw)
    parts = {"train": (train["frames"], train["text"]),
             "test": (held["frames"][:d.test_clips], held["text"][:d.test_clips]),
             "val": (held["frames"][d.test_clips:], held["text"][d.test_clips:])}
    for split, (frames, text) in parts.items():
        out[f"{split}/video"], out[f"{split}/video_valid"] = _clips_to_arrays(frames, max_frames)
        out[f"{split}/text"] = np.asarray(text)
    return out


def _generated(d) -> dict[str, np.ndarray]:
    spec = json.dumps([VERSION, d.pretrain_videos, d.train_clips, d.test_clips, d.val_clips, d.frames_per_event,
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
    train, test = reader(d.root, "train", **shape), reader(d.root, "test", **shape)
    train, val = hold_out_videos(train, float(d.val_fraction), int(d.seed), one_per_video=d.name == "msrvtt")
    for split, arrays in (("train", train), ("val", val), ("test", test)):
        for k in ("video", "video_valid", "text"):
            out[f"{split}/{k}"] = arrays[k]
    return out


def held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices of ``range(n)``: a seeded permutation's first ``round(n * fraction)`` (at least
    1, at most n - 1) are held out. It depends on ``n``, ``fraction`` and ``seed`` only, never on the data."""
    if n < 2:
        raise UserError(f"the training split has {n} video(s); a validation hold-out needs at least 2")
    perm = np.random.default_rng([seed, 3]).permutation(n)
    k = min(max(int(round(n * fraction)), 1), n - 1)
    return np.sort(perm[k:]), np.sort(perm[:k])


def hold_out_videos(arrays: dict, fraction: float, seed: int, *, one_per_video: bool = False) -> tuple[dict, dict]:
    """Split per-clip ``arrays`` (with ``video_id`` [N]) into (train, validation) by video: ``fraction`` of the
    distinct videos, in order of first appearance, chosen by :func:`held_out`, go to validation with all of their
    clips (``one_per_video``: their first clip only), so no video is in both."""
    ids = np.asarray(arrays["video_id"])
    _, first = np.unique(ids, return_index=True)
    videos = ids[np.sort(first)]
    _, hold = held_out(len(videos), fraction, seed)
    in_val = np.isin(ids, videos[hold])
    val_rows = in_val
    if one_per_video:
        is_first = np.zeros(len(ids), bool)
        is_first[first] = True
        val_rows = in_val & is_first
    return ({k: v[~in_val] for k, v in arrays.items()}, {k: v[val_rows] for k, v in arrays.items()})


def load(config) -> dict:
    """{"pretrain": arrays, "train": arrays, "val": arrays, "test": arrays, "captions": {"train": [...], "val": [...],
    "test": [...]}, "codec": TextCodec} for ``config.data`` (cached per data section). The vocabulary is learnt
    from the pre-training transcripts and the fine-tuning captions only."""
    return _load(json.dumps(config.data.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=2)
def _load(data_json: str) -> dict:
    d = ml_collections.ConfigDict(json.loads(data_json))
    raw = _generated(d) if d.name == "moving_shapes" else _official(d)
    corpus = [*raw["pretrain/text"].reshape(-1).tolist(), *raw["train/text"].tolist()]
    codec = tokenizer.TextCodec(tokenizer.from_vocab_file(d.vocab_file) if d.vocab_file
                                else tokenizer.train_wordpiece(corpus, d.vocab_size))
    out = {"codec": codec, "captions": {}}
    for split in ("pretrain", "train", "val", "test"):
        texts = raw[f"{split}/text"]
        ids, valid = codec.encode(texts.reshape(-1).tolist(), d.max_words)
        out[split] = {"video": raw[f"{split}/video"], "video_valid": raw[f"{split}/video_valid"],
                      "text_ids": ids.reshape(*texts.shape, -1), "text_valid": valid.reshape(*texts.shape, -1)}
        if split != "pretrain":
            out["captions"][split] = texts.tolist()
    return out
