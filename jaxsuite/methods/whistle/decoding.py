"""CTC decoding (greedy, prefix beam search, lexicon + word LM beam search) and error rates.

Numpy/Python on the host, on one utterance's [T, units] log-probabilities. The lexicon search is the CTC
prefix beam search (Hannun et al. 2014) over phones, constrained to paths through a pronunciation trie: a
hypothesis is (words so far, trie node, last unit); reaching a word's end may close the word, which adds
``lm_weight`` * log p_LM(word | previous word) + ``word_bonus``. Whistle decodes with per-language 4-gram
WFSTs (CAT); this is the same search written as a beam search, with a bigram LM (:mod:`.lm`).
"""
from __future__ import annotations

import collections
import math

import numpy as np

from jaxsuite.methods.whistle.units import BLANK

NEG_INF = -math.inf


def greedy(log_probs: np.ndarray) -> list[int]:
    """Best unit per frame, repeats merged, blanks removed."""
    best = np.argmax(log_probs, axis=-1)
    out, prev = [], BLANK
    for u in best:
        if u != prev and u != BLANK:
            out.append(int(u))
        prev = u
    return out


def _lse(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam_search(log_probs: np.ndarray, beam: int = 8, prune: float = -12.0) -> list[int]:
    """Most probable label sequence under the CTC prefix beam search (no LM)."""
    beams = {(): (0.0, NEG_INF)}  # prefix -> (log p ending in blank, log p ending in non-blank)
    for frame in log_probs:
        candidates = [u for u in range(len(frame)) if frame[u] > prune] or [int(np.argmax(frame))]
        nxt = collections.defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            for u in candidates:
                p = float(frame[u])
                if u == BLANK:
                    nxt[prefix][0] = _lse(nxt[prefix][0], total + p)
                    continue
                ext = prefix + (u,)
                if prefix and prefix[-1] == u:
                    nxt[ext][1] = _lse(nxt[ext][1], pb + p)
                    nxt[prefix][1] = _lse(nxt[prefix][1], pnb + p)
                else:
                    nxt[ext][1] = _lse(nxt[ext][1], total + p)
        beams = dict(sorted(nxt.items(), key=lambda kv: -_lse(*kv[1]))[:beam])
    return list(max(beams.items(), key=lambda kv: _lse(*kv[1]))[0])


class Trie:
    """Pronunciation trie over unit ids; ``words[node]`` lists the words that end at a node."""

    def __init__(self, lexicon: dict[str, list[int]]):
        self.children: list[dict[int, int]] = [{}]
        self.words: list[list[str]] = [[]]
        for word, units in lexicon.items():
            node = 0
            for u in units:
                if u not in self.children[node]:
                    self.children[node][u] = len(self.children)
                    self.children.append({})
                    self.words.append([])
                node = self.children[node][u]
            if units:
                self.words[node].append(word)


def lexicon_beam_search(log_probs: np.ndarray, trie: Trie, lm, *, beam: int = 16, lm_weight: float = 1.0,
                        word_bonus: float = 0.0, prune: float = -12.0) -> list[str]:
    """Word sequence from the CTC prefix beam search constrained to the lexicon, scored with the word LM."""
    # hypothesis key: (words tuple, trie node, last unit emitted in the current word or None) ->
    # [log p_ctc ending in blank, log p_ctc ending in non-blank, lm score]
    start = ((), 0, None)
    beams = {start: [0.0, NEG_INF, 0.0]}

    def close(words, node, scores, out):
        """Add the hypotheses that close the current word at ``node`` (continuing at the root)."""
        for word in trie.words[node]:
            prev = words[-1] if words else None
            lm_score = scores[2] + lm_weight * lm.log_prob(word, prev) + word_bonus
            key = (words + (word,), 0, None)
            cur = out.get(key)
            if cur is None or _lse(cur[0], cur[1]) + cur[2] < _lse(scores[0], scores[1]) + lm_score:
                out[key] = [scores[0], scores[1], lm_score]

    for frame in log_probs:
        candidates = [u for u in range(len(frame)) if frame[u] > prune] or [int(np.argmax(frame))]
        nxt: dict = {}

        def add(key, pb, pnb, lm_score):
            cur = nxt.setdefault(key, [NEG_INF, NEG_INF, lm_score])  # noqa: B023 -- called within this iteration
            cur[0], cur[1] = _lse(cur[0], pb), _lse(cur[1], pnb)

        for (words, node, last), (pb, pnb, lm_score) in beams.items():
            total = _lse(pb, pnb)
            for u in candidates:
                p = float(frame[u])
                if u == BLANK:
                    add((words, node, last), total + p, NEG_INF, lm_score)
                    continue
                if u == last:  # repeat without a blank between: the same unit continues
                    add((words, node, last), NEG_INF, pnb + p, lm_score)
                    from_prev = pb  # a new emission of u needs a blank in between
                else:
                    from_prev = total
                if from_prev == NEG_INF:
                    continue
                child = trie.children[node].get(u)
                if child is not None:  # the unit continues the current word
                    add((words, child, u), NEG_INF, from_prev + p, lm_score)
                first = trie.children[0].get(u)
                if node != 0 and trie.words[node] and first is not None:  # or closes it and starts the next
                    closed: dict = {}
                    close(words, node, [0.0, 0.0, lm_score], closed)
                    for (w2, _, _), (_, _, s2) in closed.items():
                        add((w2, first, u), NEG_INF, from_prev + p, s2)
        ranked = sorted(nxt.items(), key=lambda kv: -(_lse(kv[1][0], kv[1][1]) + kv[1][2]))
        beams = dict(ranked[:beam])
    finals: dict = {}
    for (words, node, _), scores in beams.items():
        if node == 0:
            finals[(words, 0, None)] = scores
        else:
            close(words, node, scores, finals)
    if not finals:
        return []
    best = max(finals.items(), key=lambda kv: _lse(kv[1][0], kv[1][1]) + kv[1][2]
               + lm_weight * lm.log_prob("</s>", kv[0][0][-1] if kv[0][0] else None))
    return list(best[0][0])


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (substitution, insertion, deletion cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rate(refs, hyps) -> float:
    """Total edits / total reference tokens (PER over phones, WER over words)."""
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    return edits / max(sum(len(r) for r in refs), 1)
