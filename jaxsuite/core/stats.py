"""Paired statistics of a reproduce: each variant against the reference variant, seed by seed.

For a variant V and the reference R of a results payload, the paired differences are ``d_s = R_s - V_s`` (the
reference's margin) over the seeds s that both ran with a finite primary metric (paired by seed id, not by
position). Their mean and a
95% confidence interval from Student's t over seeds (``mean ± t_{0.975, n-1} * sd / sqrt(n)``) give a verdict
for the reference: "ahead" when the interval lies entirely on the reference's better side (respecting
``higher_is_better``), "behind" when it lies entirely on its worse side, "not separated" when it contains 0.
With one paired seed there is no interval ("one seed: no interval"); with none, nothing to compare.
"""
from __future__ import annotations

import math

import numpy as np

AHEAD, BEHIND, NOT_SEPARATED, NO_INTERVAL, NO_PAIRS = (
    "ahead", "behind", "not separated", "one seed: no interval", "no paired seeds")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def paired(reference: dict[int, float], other: dict[int, float], *, higher_is_better: bool = True,
           level: float = 0.95) -> dict:
    """Paired comparison of the reference against one other variant.

    ``reference`` and ``other`` map seed -> primary metric. Returns ``seeds`` (the paired ones), ``diffs``
    (reference - other, per seed), ``mean_diff``, ``ci`` ([lo, hi] of reference - other, None with fewer than 2
    seeds), ``n`` and ``verdict`` (of the reference against the other: ahead / behind / not separated).
    """
    from scipy import stats as sps

    seeds = sorted(s for s in reference if s in other and _finite(reference[s]) and _finite(other[s]))
    diffs = [float(reference[s]) - float(other[s]) for s in seeds]
    out = {"difference": "reference - variant", "seeds": seeds, "diffs": diffs, "n": len(seeds),
           "mean_diff": None, "ci": None, "level": level, "test": "Student t over seeds", "verdict": NO_PAIRS}
    if not seeds:
        return out
    d = np.asarray(diffs, np.float64)
    out["mean_diff"] = float(d.mean())
    if len(seeds) < 2:
        out["verdict"] = NO_INTERVAL
        return out
    half = float(sps.t.ppf(0.5 + level / 2, len(seeds) - 1) * d.std(ddof=1) / math.sqrt(len(seeds)))
    lo, hi = out["mean_diff"] - half, out["mean_diff"] + half
    out["ci"] = [lo, hi]
    if lo > 0 or hi < 0:  # the interval excludes 0: the reference is above (lo > 0) or below the other variant
        reference_better = (lo > 0) == bool(higher_is_better)
        out["verdict"] = AHEAD if reference_better else BEHIND
    else:
        out["verdict"] = NOT_SEPARATED
    return out


def by_seed(values, seeds) -> dict[int, float]:
    """seed -> value, from a results.json list (one value per seed, in the order of ``seeds``)."""
    return {int(s): v for s, v in zip(seeds, values or [])}


def paired_all(payload: dict) -> dict[str, dict]:
    """``paired`` for every variant of a results payload against its reference, on the primary metric (empty when
    the reference did not run). Values are paired by seed id: a variant's list follows ``payload["seeds"]``
    unless ``payload["variant_seeds"][variant]`` says which seeds it holds."""
    ref = payload.get("reference")
    variants = payload.get("variants") or {}
    primary = payload["primary_metric"]
    if ref not in variants:
        return {}
    seed_lists = payload.get("variant_seeds") or {}

    def values(v):
        return by_seed(variants[v].get(primary), seed_lists.get(v, payload.get("seeds") or []))

    hib = bool(payload.get("higher_is_better", True))
    return {v: paired(values(ref), values(v), higher_is_better=hib) for v in variants if v != ref}


def ensure_paired(payload: dict) -> dict:
    """The payload's ``paired`` section, computed from its per-seed values when absent (results written before
    paired statistics existed): re-derived, never re-run. The payload is not modified."""
    return payload.get("paired") or paired_all(payload)


def format_interval(p: dict, digits: int = 4) -> str:
    """"+0.0123 [+0.0050, +0.0196]" (reference - variant: mean and 95% interval), or what stands in for it."""
    if p.get("mean_diff") is None:
        return "—"
    mean = f"{p['mean_diff']:+.{digits}f}"
    if p.get("ci") is None:
        return f"{mean} (one seed: no interval)"
    lo, hi = p["ci"]
    return f"{mean} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
