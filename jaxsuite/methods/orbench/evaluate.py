"""Evaluating a model on a prompt set (paper §4.1): every prompt answered at temperature 0, refusals judged by
the keyword rule and, on a fixed subset, by the LLM judge (``templates.JUDGE_TEMPLATE``, temperature 0)."""
from __future__ import annotations

import numpy as np

from jaxsuite.llm.engine import GenerationSettings
from jaxsuite.methods.orbench import refusal
from jaxsuite.methods.orbench.backends import ask, choose
from jaxsuite.methods.orbench.templates import JUDGE_TEMPLATE


def conversation(prompt: str, system: str | None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def answer(backend, prompts: list[str], system: str | None, max_new_tokens: int, cache, progress=None) -> list[str]:
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
    return ask(backend, [conversation(p, system) for p in prompts], settings, cache, progress=progress)


# content-free inputs of contextual calibration (Zhao et al., "Calibrate Before Use", ICML 2021)
CONTENT_FREE = ("N/A", "", "[MASK]")


def judge(backend, prompts: list[str], replies: list[str], max_new_tokens: int, cache, mode: str = "generate",
          progress=None) -> list[str | None]:
    """The judge's class per (prompt, reply).

    ``generate``: the official way: the judge writes an explanation and its choice in [[ ]] (None when it names
    no class). ``choice``: the three labels "[[class]]" scored as the start of the judge's reply, every item
    gets a class (for small judges that rarely follow the format); the scores are calibrated by those of
    content-free question/response pairs (``CONTENT_FREE``), which removes the judge's prior for a label.
    """
    convs = [[{"role": "user", "content": JUDGE_TEMPLATE.format(p, r)}] for p, r in zip(prompts, replies)]
    if mode == "choice":
        labels = [f"[[{c}]]" for c in refusal.JUDGE_CLASSES]
        free = [[{"role": "user", "content": JUDGE_TEMPLATE.format(x, x)}] for x in CONTENT_FREE]
        return [refusal.JUDGE_CLASSES[int(i)] for i in choose(backend, convs, labels, free, cache, progress)]
    if mode != "generate":
        raise ValueError(f"judge.mode {mode!r}: expected 'generate' or 'choice'")
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
    return [refusal.parse_judge(t) for t in ask(backend, convs, settings, cache, progress=progress)]


def judged_subset(n: int, items: int, seed: int = 0) -> np.ndarray:
    """The fixed indices the judge reads (all when ``items`` <= 0 or >= n)."""
    if items <= 0 or items >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:items])


def evaluate_set(backend, judge_backend, prompts, categories, system, *, max_new_tokens: int, keyword_family: str,
                 judge_items: int, judge_max_new_tokens: int, cache, judge_mode: str = "generate",
                 progress=None) -> dict:
    """Replies, keyword refusals and (on ``judged_subset``) judge classes of one prompt set."""
    replies = answer(backend, prompts, system, max_new_tokens, cache, progress)
    keyword = [refusal.keyword_refusal(r, keyword_family) for r in replies]
    judged: list[str | None] = [None] * len(prompts)
    idx = judged_subset(len(prompts), judge_items) if judge_backend is not None else np.arange(0)
    if len(idx):
        classes = judge(judge_backend, [prompts[i] for i in idx], [replies[i] for i in idx], judge_max_new_tokens,
                        cache, judge_mode, progress)
        for i, c in zip(idx, classes):
            judged[i] = c
    return {"replies": replies, "keyword": keyword, "judge_class": judged, "judged_index": idx.tolist(),
            "judge": [refusal.judge_refusal(c) for c in judged]}

