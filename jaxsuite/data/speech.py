"""Utterance sets for CTC training: features, phone and word transcripts, padded into arrays.

Every speech source (synth_lang10, CommonVoice, FLEURS) yields :class:`Utterance` records; :func:`to_arrays`
pads a list of them into the fixed-shape arrays a jitted step takes (feats [N, T, 80], feat_len [N]); labels
are made per model by the method (phones or subwords).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import numpy as np

from jaxsuite.audio import espeak, features, ipa
from jaxsuite.data import cache


@dataclasses.dataclass
class Utterance:
    lang: str
    text: str
    words: list[str]  # the normalised words of ``text``
    phones: list[list[str]]  # cleaned IPA per word
    feats: np.ndarray  # [frames, 80] float32

    @property
    def phone_sequence(self) -> list[str]:
        """The phones of all words in order (the CTC target of a phone model)."""
        return ipa.flatten(self.phones)


def featurize(wav: np.ndarray, rate: int) -> np.ndarray:
    return features.fbank(features.resample(wav, rate))


def transcribe(texts: list[str], lang: str, voice: str) -> list[list[list[str]]]:
    """Cleaned IPA per word of each text (eSpeak G2P with ``voice``'s language)."""
    return [ipa.clean_words(words) for words in espeak.g2p(texts, voice)]


def to_arrays(utts: list[Utterance], max_frames: int) -> dict[str, np.ndarray]:
    """{feats [N, max_frames, 80] float32 (zero-padded), feat_len [N]}; longer utterances are truncated."""
    n, dim = len(utts), (utts[0].feats.shape[1] if utts else 80)
    feats = np.zeros((n, max_frames, dim), np.float32)
    lengths = np.zeros(n, np.int32)
    for i, u in enumerate(utts):
        t = min(len(u.feats), max_frames)
        feats[i, :t] = u.feats[:t]
        lengths[i] = t
    return {"feats": feats, "feat_len": lengths}


def pad_labels(sequences: list[list[int]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, max_len] int32 labels (0-padded) and their lengths; a longer sequence is an error (it cannot fit)."""
    out = np.zeros((len(sequences), max_len), np.int32)
    lengths = np.zeros(len(sequences), np.int32)
    for i, seq in enumerate(sequences):
        if len(seq) > max_len:
            raise ValueError(f"label sequence of length {len(seq)} exceeds max_label_len {max_len}")
        out[i, :len(seq)] = seq
        lengths[i] = len(seq)
    return out, lengths


Sets = dict[str, dict[str, list[Utterance]]]  # {lang: {split: utterances}}


def cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached(name: str, key: str, build: Callable[[], Sets]) -> Sets:
    """``build()`` once, saved with ``datasets`` under ``$JAXSUITE_DATA/generated/<name>/<key>`` (features as
    float16) and loaded from there afterwards; without a writable generated folder, built every time."""
    import datasets

    folder = cache.generated_dir()
    path = folder / name / key if folder else None
    if path is not None and (path / "dataset_info.json").exists():
        cols = datasets.load_from_disk(str(path)).with_format("numpy")[:]
        out: Sets = {}
        for lang, split, text, phones, feats in zip(cols["lang"], cols["split"], cols["text"], cols["phones"],
                                                    cols["feats"]):
            words = [w.split() for w in str(phones).split(" | ")] if phones else []
            out.setdefault(str(lang), {}).setdefault(str(split), []).append(
                Utterance(str(lang), str(text), str(text).split(), words, np.asarray(feats, np.float32)))
        return out
    built = build()
    if path is not None:
        rows = [(lang, split, u) for lang, splits in built.items() for split, utts in splits.items() for u in utts]
        features_ = datasets.Features({"lang": datasets.Value("string"), "split": datasets.Value("string"),
                                       "text": datasets.Value("string"), "phones": datasets.Value("string"),
                                       "feats": datasets.Array2D((None, 80), "float16")})
        datasets.Dataset.from_dict({
            "lang": [r[0] for r in rows], "split": [r[1] for r in rows], "text": [r[2].text for r in rows],
            "phones": [" | ".join(" ".join(w) for w in r[2].phones) for r in rows],
            "feats": [r[2].feats.astype(np.float16) for r in rows]}, features=features_).save_to_disk(str(path))
    return built
