"""synth_lang10: a CV-Lang10 stand-in synthesised with eSpeak NG, deterministic from a seed.

CV-Lang10 (Whistle) has ten seen languages (en es fr it ky nl ru sv tr tt) and the unseen pl and id. eSpeak NG
has a voice for all twelve, but ``wordfreq`` has no word list for Kyrgyz or Tatar (it falls back to Russian),
so those two are left out: the seen set is the eight languages in :data:`SEEN`. Sentences are 2-4 words drawn
from each language's ``vocab_size`` most frequent alphabetic words, weighted by frequency (so a word n-gram LM
has something to learn); each utterance gets a random voice variant, speaking rate, pitch and additive noise at
a random SNR. Audio is synthesised at 22.05 kHz and resampled to 16 kHz before the features.

Built once per configuration and cached with ``datasets`` under ``$JAXSUITE_DATA/generated/synth_lang10``.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing

import ml_collections
import numpy as np

from jaxsuite.audio import espeak
from jaxsuite.data.speech import Sets, Utterance, cache_key, cached, featurize, transcribe

SEEN = {"en": "en-us", "es": "es", "fr": "fr-fr", "it": "it", "nl": "nl", "ru": "ru", "sv": "sv", "tr": "tr"}
UNSEEN = {"pl": "pl", "id": "id"}
LEFT_OUT = {"ky": "no wordfreq word list", "tt": "no wordfreq word list"}
VOICES = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m7", "+f1", "+f2", "+f3", "+f4")
SPLIT_IDS = {"train": 0, "test": 1}


def voice_of(lang: str) -> str:
    return {**SEEN, **UNSEEN}[lang]


def vocabulary(lang: str, size: int) -> tuple[list[str], np.ndarray]:
    """The ``size`` most frequent alphabetic words of ``lang`` (wordfreq) and their normalised frequencies."""
    import wordfreq

    words = []
    for w in wordfreq.iter_wordlist(lang):
        if w.isalpha() and len(w) > 1 and w == w.lower():
            words.append(w)
            if len(words) == size:
                break
    freqs = np.array([wordfreq.word_frequency(w, lang) for w in words])
    return words, freqs / freqs.sum()


def sentences(lang: str, count: int, *, vocab_size: int, min_words: int, max_words: int,
              rng: np.random.Generator) -> list[list[str]]:
    words, probs = vocabulary(lang, vocab_size)
    lengths = rng.integers(min_words, max_words + 1, count)
    return [[words[i] for i in rng.choice(len(words), n, p=probs)] for n in lengths]


def synthesize_split(lang: str, split: str, count: int, cfg, seed: int) -> list[Utterance]:
    """``count`` utterances of ``lang`` for ``split``: text, cleaned IPA, features (noisy synthetic speech)."""
    rng = np.random.default_rng([seed, sorted({**SEEN, **UNSEEN}).index(lang), SPLIT_IDS[split]])
    texts = sentences(lang, count, vocab_size=cfg.vocab_size, min_words=cfg.min_words, max_words=cfg.max_words,
                      rng=rng)
    phones = transcribe([" ".join(t) for t in texts], lang, voice_of(lang))
    synth = espeak.synthesizer()
    out = []
    for words, word_phones in zip(texts, phones):
        voice = voice_of(lang) + VOICES[rng.integers(len(VOICES))]
        wav = synth.synthesize(" ".join(words), voice, rate=int(rng.integers(*cfg.rate_range)),
                               pitch=int(rng.integers(*cfg.pitch_range)), seed=int(rng.integers(2 ** 31)))
        snr = rng.uniform(*cfg.snr_db_range)
        noise = rng.standard_normal(len(wav)).astype(np.float32)
        wav = wav + noise * np.sqrt(np.mean(wav ** 2) / 10 ** (snr / 10))
        out.append(Utterance(lang, " ".join(words), list(words), word_phones, featurize(wav, synth.sample_rate)))
    return out


def _split_in_fresh_process(args) -> list[Utterance]:
    lang, split, count, cfg_dict, seed = args
    return synthesize_split(lang, split, count, ml_collections.ConfigDict(cfg_dict), seed)


def build(cfg, langs: dict[str, dict[str, int]], seed: int, workers: int = 2) -> Sets:
    """Synthesise every (language, split), each in a fresh worker process: eSpeak's wave generator keeps state
    across calls, so only a fresh process makes the same samples from the same seed."""
    jobs = [(lang, split, n, cfg.to_dict(), seed) for lang, splits in langs.items() for split, n in splits.items()]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        results = list(pool.map(_split_in_fresh_process, jobs))
    out: Sets = {}
    for (lang, split, *_), utts in zip(jobs, results):
        out.setdefault(lang, {})[split] = utts
    return out


def load(cfg, langs: dict[str, dict[str, int]], seed: int) -> Sets:
    """{lang: {split: [Utterance]}} for ``langs`` = {lang: {split: count}}, cached with ``datasets``."""
    key = cache_key({"cfg": cfg.to_dict(), "langs": langs, "seed": seed, "version": 2})
    return cached("synth_lang10", key, lambda: build(cfg, langs, seed))
