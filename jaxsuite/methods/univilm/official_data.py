"""The paper-scale data in the official code's layouts (microsoft/UniVL dataloaders/), pre-extracted S3D features.

* HowTo100M pre-training (``dataloader_howto100m.py``): a csv with ``video_id`` and ``feature_file``; a caption
  pickle ``{video_id: {"start": [...], "end": [...], "text": [...]}}``; one ``.npy`` of [T, D] features (1 per
  second) per video under the features folder. Each video gives its first ``clips_per_video`` consecutive
  transcript segments (the official MIL grouping of neighbouring segments), each with the features of its
  [start, end] seconds.
* YouCookII (``dataloader_youcook_*.py``): ``youcookii_data.transcript.pickle`` ``{video_id: {"start", "end",
  "text", ...}}``, ``youcookii_videos_features.pickle`` ``{video_id: [T, D]}``, ``youcookii_{train,val}.csv``
  (column ``video_id``): one clip per annotated segment, its caption the segment's text.
* MSR-VTT (``dataloader_msrvtt_*.py``): ``MSRVTT_data.json`` (``sentences``: video_id, caption),
  ``msrvtt_videos_features.pickle``, ``MSRVTT_train.9k.csv`` (training: every caption of each video) and
  ``MSRVTT_JSFUSION_test.csv`` (columns ``video_id``, ``sentence``: one caption per test video).

Pickles are read by ``jaxsuite.data.restricted_pickle`` (numpy arrays and python containers only). Clips longer than
``max_frames`` keep ``max_frames`` frames sampled uniformly (as the official MSR-VTT loader; the YouCook and
HowTo100M loaders truncate: a config choice we do not expose).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from jaxsuite.core.errors import UserError
from jaxsuite.data import restricted_pickle
from jaxsuite.methods.univilm.features import load_feature_file


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    return path


def load_pickle(path: Path, what: str):
    return restricted_pickle.load(path, what)


def _csv_rows(path: Path, what: str, columns: tuple[str, ...]) -> list[dict]:
    with open(_file(path, what), newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing or not rows:
        raise UserError(f"{path} must be a csv with columns {columns} and at least one row (missing: {missing})")
    return rows


def _fit(feats: np.ndarray, max_frames: int, feature_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """[T, D] -> ([max_frames, D] zero-padded, valid); longer clips sampled uniformly."""
    feats = np.asarray(feats, np.float32).reshape(-1, feature_dim)
    if len(feats) > max_frames:
        feats = feats[np.linspace(0, len(feats) - 1, max_frames).round().astype(int)]
    out = np.zeros((max_frames, feature_dim), np.float32)
    out[:len(feats)] = feats
    return out, np.arange(max_frames) < max(len(feats), 1)


def _segment(feats: np.ndarray, start: float, end: float, fps: float = 1.0) -> np.ndarray:
    s, e = int(start * fps), int(end * fps) + 1
    return feats[min(s, len(feats) - 1):max(e, s + 1)]


def _stack(clips: list[tuple[np.ndarray, np.ndarray]]):
    return np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips])


def howto100m(csv_path, caption_pickle, features_dir, *, count: int, clips_per_video: int, max_frames: int,
              feature_dim: int) -> dict:
    """{"video" [V, C, F, D], "video_valid" [V, C, F], "text" [V, C] str} from the first ``count`` videos with at
    least ``clips_per_video`` segments."""
    captions = load_pickle(caption_pickle, "HowTo100M caption pickle")
    videos, valids, texts = [], [], []
    for row in _csv_rows(Path(csv_path), "HowTo100M csv", ("video_id", "feature_file")):
        entry = captions.get(row["video_id"])
        if entry is None or len(entry["text"]) < clips_per_video:
            continue
        feats = load_feature_file(Path(features_dir) / row["feature_file"], feature_dim)
        clips = [_fit(_segment(feats, entry["start"][i], entry["end"][i]), max_frames, feature_dim)
                 for i in range(clips_per_video)]
        v, m = _stack(clips)
        videos.append(v), valids.append(m), texts.append([str(t) for t in entry["text"][:clips_per_video]])
        if len(videos) == count:
            break
    if not videos:
        raise UserError(f"no HowTo100M video of {csv_path} has {clips_per_video} captioned segments")
    return {"video": np.stack(videos), "video_valid": np.stack(valids), "text": np.asarray(texts)}


def youcookii(root, split: str, *, max_frames: int, feature_dim: int) -> dict:
    """{"video" [N, F, D], "video_valid", "text" [N], "video_id" [N]}: every annotated segment of the split's
    videos (``video_id``: the segment's video, so a validation hold-out can keep a video's segments together)."""
    root = Path(root)
    data = load_pickle(root / "youcookii_data.transcript.pickle", "YouCookII data pickle")
    feats = load_pickle(root / "youcookii_videos_features.pickle", "YouCookII features pickle")
    name = {"train": "youcookii_train.csv", "test": "youcookii_val.csv"}[split]
    clips, texts, ids = [], [], []
    for row in _csv_rows(root / name, "YouCookII csv", ("video_id",)):
        vid = row["video_id"]
        if vid not in data or vid not in feats:
            raise UserError(f"YouCookII video {vid} of {name} is missing from the data or features pickle")
        for start, end, text in zip(data[vid]["start"], data[vid]["end"], data[vid]["text"]):
            clips.append(_fit(_segment(np.asarray(feats[vid]), start, end), max_frames, feature_dim))
            texts.append(str(text))
            ids.append(vid)
    video, valid = _stack(clips)
    return {"video": video, "video_valid": valid, "text": np.asarray(texts), "video_id": np.asarray(ids)}


def msrvtt(root, split: str, *, max_frames: int, feature_dim: int) -> dict:
    """Training: every caption of the 9k videos; test: the JSFusion 1k (video, sentence) pairs. With ``video_id``
    [N], each pair's video."""
    root = Path(root)
    feats = load_pickle(root / "msrvtt_videos_features.pickle", "MSR-VTT features pickle")
    if split == "train":
        ids = {r["video_id"] for r in _csv_rows(root / "MSRVTT_train.9k.csv", "MSR-VTT csv", ("video_id",))}
        with open(_file(root / "MSRVTT_data.json", "MSR-VTT json")) as f:
            pairs = [(s["video_id"], s["caption"]) for s in json.load(f)["sentences"] if s["video_id"] in ids]
    else:
        pairs = [(r["video_id"], r["sentence"]) for r in
                 _csv_rows(root / "MSRVTT_JSFUSION_test.csv", "MSR-VTT csv", ("video_id", "sentence"))]
    missing = sorted({v for v, _ in pairs if v not in feats})
    if missing:
        raise UserError(f"MSR-VTT videos {missing[:5]} are missing from msrvtt_videos_features.pickle")
    video, valid = _stack([_fit(np.asarray(feats[v]), max_frames, feature_dim) for v, _ in pairs])
    return {"video": video, "video_valid": valid, "text": np.asarray([str(c) for _, c in pairs]),
            "video_id": np.asarray([str(v) for v, _ in pairs])}
