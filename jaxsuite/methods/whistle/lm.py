"""Pronunciation lexicon and word bigram LM for decoding phone CTC models into words.

The lexicon maps each word of a language's word list to its cleaned IPA (the same eSpeak G2P as the training
transcripts, one word at a time). The LM is a word bigram with interpolated absolute discounting (Ney et al.
1994: discount d = n1 / (n1 + 2 n2)), backing off to a unigram that is itself interpolated with a uniform
distribution over the vocabulary. Whistle uses 4-gram WFSTs (CAT, built with SRILM/KenLM); no pip package here
trains an n-gram LM (kenlm's wheel only queries ARPA files), so this one is written by hand.
"""
from __future__ import annotations

import collections
import math

from jaxsuite.audio import ipa
from jaxsuite.data.speech import transcribe


def build_lexicon(words: list[str], lang: str, voice: str) -> dict[str, list[str]]:
    """word -> cleaned IPA phones (words whose G2P yields nothing are left out)."""
    out = {}
    for word, phones in zip(words, transcribe(words, lang, voice)):
        flat = ipa.flatten(phones)
        if flat:
            out[word] = flat
    return out


class BigramLM:
    def __init__(self, sentences: list[list[str]], vocabulary: list[str]):
        self.vocab = set(vocabulary) | {"</s>"}
        self.unigrams: collections.Counter = collections.Counter()
        self.bigrams: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for sent in sentences:
            tokens = ["<s>"] + list(sent) + ["</s>"]
            self.unigrams.update(tokens[1:])
            for a, b in zip(tokens, tokens[1:]):
                self.bigrams[a][b] += 1
        counts = collections.Counter(c for ctr in self.bigrams.values() for c in ctr.values())
        n1, n2 = counts.get(1, 0), counts.get(2, 0)
        self.discount = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
        self.total = sum(self.unigrams.values())

    def _unigram(self, word: str) -> float:
        uniform = 1.0 / len(self.vocab)
        if not self.total:
            return uniform
        return 0.9 * self.unigrams.get(word, 0) / self.total + 0.1 * uniform

    def log_prob(self, word: str, prev: str | None) -> float:
        """log p(word | prev) (prev None = sentence start)."""
        history = self.bigrams.get("<s>" if prev is None else prev)
        p_uni = self._unigram(word)
        if not history:
            return math.log(p_uni)
        total = sum(history.values())
        backoff = self.discount * len(history) / total
        return math.log(max(history.get(word, 0) - self.discount, 0) / total + backoff * p_uni)
