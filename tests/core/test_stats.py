"""Paired statistics (jaxsuite/core/stats.py): Student-t intervals over seeds, verdicts, pairing by seed id."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from jaxsuite.core import stats


def test_interval_matches_the_t_formula():
    p = stats.paired({0: 0.93, 1: 0.92, 2: 0.94}, {0: 0.92, 1: 0.90, 2: 0.91})
    d = np.array([0.01, 0.02, 0.03])
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert p["diffs"] == pytest.approx(d.tolist()) and p["mean_diff"] == pytest.approx(0.02)
    assert p["ci"] == pytest.approx([0.02 - half, 0.02 + half])
    assert p["n"] == 3 and p["seeds"] == [0, 1, 2] and p["verdict"] == stats.NOT_SEPARATED  # half = 0.0248


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=8))
def test_interval_equals_scipys_paired_t_test(pairs):
    ref = {i: a for i, (a, _) in enumerate(pairs)}
    other = {i: b for i, (_, b) in enumerate(pairs)}
    p = stats.paired(ref, other)
    diffs = np.array([a - b for a, b in pairs])
    if diffs.std(ddof=1) > 1e-9:
        ci = sps.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).confidence_interval(0.95)
        assert p["ci"] == pytest.approx([ci.low, ci.high], abs=1e-9)
    lo, hi = p["ci"]
    assert lo <= p["mean_diff"] <= hi
    assert (p["verdict"] == stats.NOT_SEPARATED) == (lo <= 0 <= hi)


def test_verdicts_respect_the_direction_of_the_metric():
    ref, worse_when_higher = {0: 0.9, 1: 0.91, 2: 0.92}, {0: 0.8, 1: 0.82, 2: 0.81}
    assert stats.paired(ref, worse_when_higher)["verdict"] == stats.AHEAD
    assert stats.paired(worse_when_higher, ref)["verdict"] == stats.BEHIND
    # lower is better (PER, FID): the reference with the lower values is ahead
    assert stats.paired(worse_when_higher, ref, higher_is_better=False)["verdict"] == stats.AHEAD
    assert stats.paired(ref, worse_when_higher, higher_is_better=False)["verdict"] == stats.BEHIND


def test_seeds_are_paired_by_id_and_non_finite_values_are_left_out():
    p = stats.paired({0: 1.0, 1: 2.0, 2: 3.0, 5: float("nan")}, {2: 2.5, 1: 1.0, 3: 9.0, 5: 1.0})
    assert p["seeds"] == [1, 2] and p["diffs"] == pytest.approx([1.0, 0.5])


def test_one_seed_has_no_interval_and_none_has_nothing():
    one = stats.paired({0: 0.9}, {0: 0.8})
    assert one["ci"] is None and one["mean_diff"] == pytest.approx(0.1) and one["verdict"] == stats.NO_INTERVAL
    assert "no interval" in stats.format_interval(one)
    none = stats.paired({0: 0.9}, {1: 0.8})
    assert none["mean_diff"] is None and none["verdict"] == stats.NO_PAIRS


def test_paired_all_compares_every_variant_with_the_reference():
    payload = {"primary_metric": "acc", "higher_is_better": True, "reference": "a", "seeds": [3, 4, 5],
               "variants": {"a": {"acc": [0.9, 0.91, 0.92]}, "b": {"acc": [0.5, 0.52, 0.51]},
                            "c": {"acc": [0.9, 0.92, 0.91]}}}
    out = stats.paired_all(payload)
    assert list(out) == ["b", "c"] and out["b"]["seeds"] == [3, 4, 5]
    assert out["b"]["verdict"] == stats.AHEAD and out["c"]["verdict"] == stats.NOT_SEPARATED
    assert stats.ensure_paired(payload) == out and "paired" not in payload  # re-derived, not written
    assert stats.paired_all({**payload, "reference": "zzz"}) == {}
