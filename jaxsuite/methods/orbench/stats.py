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
