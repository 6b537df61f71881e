"""Evaluation metrics as the official code reports them.

* :func:`retrieval_metrics` (official metrics.py ``compute_metrics``): rank of the true video for each text query
  in a [texts, videos] similarity matrix (diagonal = match); R@1 / R@5 / R@10 in percent and the median rank.
* :func:`caption_metrics`: BLEU-4, ROUGE-L and CIDEr(-D) of the coco-caption scorers (``pycocoevalcap``'s Bleu,
  Rouge, Cider: pure python; the official code uses nlg-eval, which wraps the same scorers). METEOR needs Java and
  the scorer's jar download: not computed.
"""
from __future__ import annotations

import numpy as np


def retrieval_metrics(sim: np.ndarray) -> dict[str, float]:
    sim = np.asarray(sim, np.float64)
    # rank = number of videos scored strictly higher than the true one (ties resolved in the query's favour, as
    # the official argsort-based search finds the first equal entry)
    ranks = (sim > np.diag(sim)[:, None]).sum(1)
    return {"r1": 100.0 * float(np.mean(ranks < 1)), "r5": 100.0 * float(np.mean(ranks < 5)),
            "r10": 100.0 * float(np.mean(ranks < 10)), "medr": float(np.median(ranks) + 1)}


def caption_metrics(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} reference sets")
    res = {i: [h if h.strip() else "<empty>"] for i, h in enumerate(hypotheses)}
    gts = {i: list(r) for i, r in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": float(bleu[3]), "rouge_l": float(rouge), "cider": float(cider)}
