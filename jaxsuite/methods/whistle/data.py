"""Whistle's data: the speech sets of a config, their unit sets and the label arrays of each training stage."""
from __future__ import annotations

import functools
import json

import ml_collections
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import commonvoice, synth_lang10
from jaxsuite.data.speech import Utterance, pad_labels, to_arrays
from jaxsuite.methods.whistle import lm as lm_lib
from jaxsuite.methods.whistle.units import PhoneSet, Subwords
from jaxsuite.nn.conformer import subsampled_lengths

DATASETS = ("synth_lang10", "commonvoice")


def check(cfg) -> None:
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"config key 'dataset' must be one of {DATASETS}, got {cfg.dataset!r}")
    known = ({**synth_lang10.SEEN, **synth_lang10.UNSEEN} if cfg.dataset == "synth_lang10"
             else commonvoice.LANGUAGES)
    for key in ("seen_languages", "unseen_languages"):
        bad = [lang for lang in cfg[key] if lang not in known]
        if bad:
            raise ConfigError(f"config key {key!r} has languages {bad} that {cfg.dataset} does not have "
                              f"(it has {sorted(known)})")


def fits(utt: Utterance, max_frames: int) -> bool:
    """Whether an utterance fits the padded batch and its phones fit CTC's alignment: after 4x subsampling it
    needs one frame per phone plus one blank between repeated phones (rare: very fast speech, long words)."""
    phones = utt.phone_sequence
    needed = len(phones) + sum(a == b for a, b in zip(phones, phones[1:]))
    return bool(phones) and len(utt.feats) <= max_frames and needed <= subsampled_lengths(len(utt.feats))


@functools.lru_cache(maxsize=2)
def _load(key: str) -> dict:
    cfg = ml_collections.ConfigDict(json.loads(key))
    d = cfg.data
    synth = cfg.dataset == "synth_lang10"
    limit = (lambda n: n) if synth else (lambda n: n or None)  # commonvoice: 0 = the whole split
    langs = {lang: {"train": limit(d.seen_train), "test": limit(d.seen_test)} for lang in cfg.seen_languages}
    langs.update({lang: {"train": limit(d.unseen_train), "test": limit(d.unseen_test)}
                  for lang in cfg.unseen_languages})
    speech = synth_lang10.load(d.synth, langs, d.seed) if synth else commonvoice.load(langs, d.root or None)
    speech = {lang: {split: [u for u in utts if fits(u, d.max_frames)] for split, utts in splits.items()}
              for lang, splits in speech.items()}
    seen_train = [u for lang in cfg.seen_languages for u in speech[lang]["train"]]
    phones = PhoneSet.from_utterances(seen_train)
    unseen = {}
    for lang in cfg.unseen_languages:
        train_utts = speech[lang]["train"]
        if synth:  # the word list the sentences come from; LM text: more sentences of the same source
            vocab, _ = synth_lang10.vocabulary(lang, d.synth.vocab_size)
            lm_text = synth_lang10.sentences(lang, d.lm_sentences, vocab_size=d.synth.vocab_size,
                                             min_words=d.synth.min_words, max_words=d.synth.max_words,
                                             rng=np.random.default_rng([d.seed, 99]))
        else:  # the words of the language's transcripts; LM text: the training transcripts
            vocab = sorted({w for split in speech[lang].values() for u in split for w in u.words})
            lm_text = []
        lexicon = lm_lib.build_lexicon(vocab, lang, voice_of(cfg, lang))
        units = PhoneSet(tuple(sorted({p for u in train_utts for p in u.phone_sequence}
                                      | {p for ph in lexicon.values() for p in ph})))
        unseen[lang] = {"train": train_utts, "test": speech[lang]["test"], "units": units, "lexicon": lexicon,
                        "lm": lm_lib.BigramLM(lm_text + [u.words for u in train_utts], vocab)}
    return {"speech": speech, "seen_train": seen_train, "phones": phones, "unseen": unseen,
            "subwords": Subwords([u.text for u in seen_train], d.bpe_vocab)}


def load(cfg) -> dict:
    check(cfg)
    keys = ("dataset", "data", "seen_languages", "unseen_languages")
    return _load(json.dumps({k: (cfg[k].to_dict() if hasattr(cfg[k], "to_dict") else list(cfg[k])
                                 if isinstance(cfg[k], tuple) else cfg[k]) for k in keys}, sort_keys=True))


def voice_of(cfg, lang: str) -> str:
    """The eSpeak voice (G2P language) of ``lang`` in the config's data set."""
    return synth_lang10.voice_of(lang) if cfg.dataset == "synth_lang10" else commonvoice.LANGUAGES[lang][1]


def phone_arrays(utts: list[Utterance], units: PhoneSet, cfg, *, max_frames: int | None = None,
                 max_label_len: int | None = None) -> dict[str, np.ndarray]:
    labels, lengths = pad_labels([units.encode(u.phone_sequence) for u in utts],
                                 max_label_len or cfg.data.max_label_len)
    return {**to_arrays(utts, max_frames or cfg.data.max_frames), "labels": labels, "label_len": lengths}


def subword_arrays(utts: list[Utterance], subwords: Subwords, cfg) -> dict[str, np.ndarray]:
    labels, lengths = pad_labels([subwords.encode(u.text) for u in utts], cfg.data.max_label_len)
    return {**to_arrays(utts, cfg.data.max_frames), "labels": labels, "label_len": lengths}
