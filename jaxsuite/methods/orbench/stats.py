"""Rates with Wilson score intervals, per category, and the agreement of two refusal detectors."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927) of a binomial proportion; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(flags) -> dict:
    """{"rate", "low", "high", "n"} of a list of booleans (None entries are left out)."""
    kept = [bool(f) for f in flags if f is not None]
    k, n = sum(kept), len(kept)
    low, high = wilson_interval(k, n)
    return {"rate": k / n if n else float("nan"), "low": low, "high": high, "n": n}


def per_category(flags, categories) -> dict[str, dict]:
    out: dict[str, list] = {}
    for f, c in zip(flags, categories):
        out.setdefault(c, []).append(f)
    return {c: rate(v) for c, v in sorted(out.items())}


def agreement(a, b) -> dict:
    """Fraction of items where two detectors agree, and Cohen's kappa, over items both decided."""
    pairs = [(bool(x), bool(y)) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return {"agreement": float("nan"), "kappa": float("nan"), "n": 0}
    x, y = np.array(pairs).T
    po = float(np.mean(x == y))
    pe = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    kappa = (po - pe) / (1 - pe) if pe < 1 else float("nan")
    return {"agreement": po, "kappa": kappa, "n": len(pairs)}


PAIRED_TEST = "Student t over prompts (paired by prompt)"


def paired_by_prompt(reference: dict, other: dict, *, higher_is_better: bool = False, level: float = 0.95) -> dict:
    """The reference variant against another on the same prompts, from their per-prompt 0/1 decisions.

    ``reference`` and ``other`` map a prompt's row -> refused (bool; None: undecided, left out). The differences
    are ``d_i = r_ref,i - r_V,i`` in {-1, 0, 1} over the prompts both decided; their mean is the difference of the
    two rates, with a 95% interval from Student's t over prompts (``mean +- t_{0.975, n-1} sd / sqrt(n)``) and the
    exact McNemar p-value (a two-sided binomial test on the discordant prompts) beside it. The verdict is the
    reference's, as ``jaxsuite.core.stats.paired`` gives it (ahead / behind / not separated, respecting
    ``higher_is_better``). The keys are those of ``jaxsuite.core.stats.paired`` (``seeds`` and ``diffs`` empty:
    the unit is a prompt, not a seed) plus ``units``, ``rows``, ``prompt_diffs``, ``discordant`` and
    ``mcnemar_p``."""
    from scipy import stats as sps

    from jaxsuite.core.stats import AHEAD, BEHIND, NO_PAIRS, NOT_SEPARATED

    rows = sorted(r for r in reference if r in other and reference[r] is not None and other[r] is not None)
    d = np.asarray([int(bool(reference[r])) - int(bool(other[r])) for r in rows], np.int64)
    out = {"difference": "reference - variant", "units": "prompts", "seeds": [], "diffs": [], "n": len(rows),
           "rows": rows, "prompt_diffs": d.tolist(), "mean_diff": None, "ci": None, "level": level,
           "test": PAIRED_TEST, "verdict": NO_PAIRS, "discordant": {"reference_only": int((d == 1).sum()),
                                                                     "variant_only": int((d == -1).sum())},
           "mcnemar_p": None}
    if not rows:
        return out
    b, c = out["discordant"]["reference_only"], out["discordant"]["variant_only"]
    out["mcnemar_p"] = float(sps.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    out["mean_diff"] = float(d.mean())
    if len(rows) < 2:
        return out
    half = float(sps.t.ppf(0.5 + level / 2, len(rows) - 1) * d.std(ddof=1) / math.sqrt(len(rows)))
    lo, hi = out["mean_diff"] - half, out["mean_diff"] + half
    out["ci"] = [lo, hi]
    if lo > 0 or hi < 0:
        out["verdict"] = AHEAD if (lo > 0) == bool(higher_is_better) else BEHIND
    else:
        out["verdict"] = NOT_SEPARATED
    return out
