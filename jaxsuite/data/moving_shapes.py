"""``moving_shapes``: procedurally generated video clips of coloured shapes in motion, each with a clean template
caption and a noisy "transcript" -- a stand-in for HowTo100M (narrated, misaligned ASR) and YouCook2 (clean
captions) at a size two CPU cores can train on.

* A clip is 2 or 3 events; an event is one shape of one colour making one motion over ``frames_per_event`` frames
  (32x32 RGB, black background). Colours x shapes x motions: 6 x 4 x 6.
* Caption: ``"a red circle moves left then a blue square grows"`` (events joined by "then").
* Pre-training videos: ``clips_per_video`` consecutive clips whose events all use the video's "cast" of 3
  (colour, shape) objects, as neighbouring clips of a HowTo100M video show the same things (what makes their
  transcripts useful positives for MIL-NCE).
* Transcript (pre-training text): the caption of the clip -- or, with probability ``misalign`` (0.2), of the
  neighbouring clip of the same video, as narration drifts from what is shown -- with words dropped (0.15 each),
  adjacent words swapped (0.1), and 1-3 filler words inserted ("um", "so", "okay", ...).
* Compositional split: the :data:`HELDOUT` (colour, shape) pairs never appear in ``pretrain`` or ``train``; every
  ``test`` clip contains at least one of them.

Splits: ``pretrain`` (videos of ``clips_per_video`` consecutive clips, transcripts only), ``train`` and ``test``
(single clips with captions). Deterministic given (split, seed, index).
"""
from __future__ import annotations

import numpy as np

COLOURS = {"red": (1.0, 0.15, 0.1), "green": (0.1, 0.9, 0.2), "blue": (0.15, 0.3, 1.0), "yellow": (1.0, 0.9, 0.1),
           "purple": (0.65, 0.2, 0.9), "white": (0.95, 0.95, 0.95)}
SHAPES = ("circle", "square", "triangle", "cross")
MOTIONS = {"left": "moves left", "right": "moves right", "up": "moves up", "down": "moves down",
           "grow": "grows", "shrink": "shrinks"}
HELDOUT = (("red", "triangle"), ("green", "cross"), ("blue", "circle"), ("yellow", "square"))
FILLERS = ("um", "so", "now", "okay", "and", "we", "see", "here", "you", "know", "just", "like", "right", "then")
SIZE = 32
SPLITS = ("pretrain", "train", "test")
_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}


def _mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= r ** 2
    if shape == "square":
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if shape == "triangle":  # apex up: the half-width grows from 0 at the top to r at the bottom
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "cross":
        return ((np.abs(dx) <= r / 3) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r / 3) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def render_event(colour: str, shape: str, motion: str, start: tuple[float, float], frames: int) -> np.ndarray:
    """[frames, 32, 32, 3] float32 in [0, 1]: the shape moving 12 pixels (or its radius going 3 <-> 7)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    out = np.zeros((frames, SIZE, SIZE, 3), np.float32)
    t = np.linspace(0.0, 1.0, frames)
    for f in range(frames):
        cx, cy, r = start[0], start[1], 5.0
        step = 12.0 * t[f]
        if motion == "left":
            cx -= step
        elif motion == "right":
            cx += step
        elif motion == "up":
            cy -= step
        elif motion == "down":
            cy += step
        elif motion == "grow":
            r = 3.0 + 4.0 * t[f]
        elif motion == "shrink":
            r = 7.0 - 4.0 * t[f]
        out[f][_mask(shape, xx - cx, yy - cy, r)] = COLOURS[colour]
    return out


def _start(motion: str, rng: np.random.Generator) -> tuple[float, float]:
    """A start point that keeps the whole motion inside the frame."""
    lo, hi = 8.0, SIZE - 8.0
    x, y = rng.uniform(lo, hi, 2)
    if motion == "left":
        x = rng.uniform(lo + 12, hi)
    elif motion == "right":
        x = rng.uniform(lo, hi - 12)
    elif motion == "up":
        y = rng.uniform(lo + 12, hi)
    elif motion == "down":
        y = rng.uniform(lo, hi - 12)
    return float(x), float(y)


def seen_pairs() -> list[tuple[str, str]]:
    return [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELDOUT]


def sample_events(rng: np.random.Generator, *, need_heldout: bool, cast=None) -> list[tuple[str, str, str]]:
    """2-3 (colour, shape, motion) events of (colour, shape) pairs drawn from ``cast`` (default: every pair not held
    out); or (``need_heldout``) with at least one held-out pair."""
    count = int(rng.integers(2, 4))
    pool = cast or seen_pairs()
    chosen = [pool[rng.integers(len(pool))] for _ in range(count)]
    if need_heldout:
        chosen[rng.integers(count)] = HELDOUT[rng.integers(len(HELDOUT))]
    motions = list(MOTIONS)
    return [(c, s, motions[rng.integers(len(motions))]) for c, s in chosen]


def caption(events: list[tuple[str, str, str]]) -> str:
    return " then ".join(f"a {c} {s} {MOTIONS[m]}" for c, s, m in events)


def noisy_transcript(text: str, rng: np.random.Generator, *, drop: float = 0.15, swap: float = 0.1) -> str:
    words = [w for w in text.split() if rng.random() >= drop] or text.split()[:1]
    for i in range(len(words) - 1):
        if rng.random() < swap:
            words[i], words[i + 1] = words[i + 1], words[i]
    for _ in range(int(rng.integers(1, 4))):
        words.insert(int(rng.integers(len(words) + 1)), FILLERS[rng.integers(len(FILLERS))])
    return " ".join(words)


def render_clip(events, rng: np.random.Generator, frames_per_event: int) -> np.ndarray:
    return np.concatenate([render_event(c, s, m, _start(m, rng), frames_per_event) for c, s, m in events])


def generate(split: str, count: int, seed: int, *, frames_per_event: int = 4, clips_per_video: int = 3,
             misalign: float = 0.2) -> dict:
    """``count`` clips (``train`` / ``test``) or videos (``pretrain``) as python lists:
    {"frames": [[F, 32, 32, 3] per clip], "text": [str per clip]} with, for ``pretrain``, clips grouped by video
    (``frames[v][c]``, ``text[v][c]``); for ``train`` / ``test`` the text is the clean caption."""
    if split not in _SPLIT_IDS:
        raise ValueError(f"moving_shapes split must be one of {SPLITS}, got {split!r}")
    frames, texts = [], []
    for k in range(count):
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], k])
        if split != "pretrain":
            events = sample_events(rng, need_heldout=split == "test")
            frames.append(render_clip(events, rng, frames_per_event))
            texts.append(caption(events))
            continue
        pool = seen_pairs()
        cast = [pool[i] for i in rng.choice(len(pool), 3, replace=False)]  # the video's objects
        events = [sample_events(rng, need_heldout=False, cast=cast) for _ in range(clips_per_video)]
        captions = [caption(e) for e in events]
        said = []
        for c in range(clips_per_video):
            source = c
            if rng.random() < misalign:  # the narration is about a neighbouring clip
                source = c + 1 if c == 0 else c - 1 if c == clips_per_video - 1 else c + int(rng.choice([-1, 1]))
            said.append(noisy_transcript(captions[source], rng))
        frames.append([render_clip(e, rng, frames_per_event) for e in events])
        texts.append(said)
    return {"frames": frames, "text": texts}


def corpus_words() -> list[str]:
    """Every word the generator can emit (captions and fillers)."""
    words = {"a", "then", *COLOURS, *SHAPES, *FILLERS}
    for phrase in MOTIONS.values():
        words.update(phrase.split())
    return sorted(words)
