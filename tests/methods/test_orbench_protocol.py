"""OR-Bench under issue 35's protocol: the validation subsets (disjoint from test, stratified), the statistics paired
by prompt, and their way into results.json / results.md / the report. No model is loaded."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jaxsuite.core import report, results
from jaxsuite.core.errors import ConfigError
from jaxsuite.data import or_bench
from jaxsuite.methods.orbench import experiment, splits, stats


@pytest.mark.parametrize("split_name,n_test,n_val", [("hard_1k", 200, 100), ("toxic", 200, 100)])
def test_validation_is_disjoint_from_test_and_stratified(shared_data, split_name, n_test, n_val):
    full = or_bench.load(split_name)
    test, val = splits.load_split(split_name, n_test, n_val)
    assert len(test) == n_test and len(val) == n_val
    assert not set(test[splits.ROW]) & set(val[splits.ROW])  # disjoint by row ...
    assert not set(test["prompt"]) & set(val["prompt"])  # ... and by text
    assert test["prompt"] == or_bench.stratified_subset(full, n_test, seed=0)["prompt"]  # the test subset as before
    assert [full["prompt"][r] for r in val[splits.ROW]] == val["prompt"]  # rows index the full set
    cats, counts = np.unique(full["category"], return_counts=True)
    got = dict(zip(*np.unique(val["category"], return_counts=True)))
    for c, k in zip(cats, counts):  # every category in proportion (the quota rounds; at least one each)
        assert got.get(c, 0) >= 1 and abs(got[c] - k / len(full) * n_val) <= 1.5
    again = splits.load_split(split_name, n_test, n_val)[1]
    assert again[splits.ROW] == val[splits.ROW]  # fixed


def test_split_without_room_for_validation_is_an_error():
    import datasets

    ds = datasets.Dataset.from_dict({"prompt": [f"p{i}" for i in range(20)], "category": ["a", "b"] * 10})
    test, val = splits.split(ds, 10, 0)
    assert len(test) == 10 and val is None
    with pytest.raises(ConfigError, match="outside the test subset"):
        splits.split(ds, 0, 5)  # all prompts are test
    with pytest.raises(ConfigError, match="left outside"):
        splits.split(ds, 10, 10)


def test_paired_by_prompt():
    ref = {0: 0, 1: 1, 2: 0, 3: 0, 4: 1, 5: 0, 6: None}
    other = {0: 1, 1: 1, 2: 1, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1}
    p = stats.paired_by_prompt(ref, other, higher_is_better=False)
    d = np.array([-1, 0, -1, 0, 1, -1])  # rows 0-5: row 6 undecided by the reference, row 7 not in it
    assert p["rows"] == [0, 1, 2, 3, 4, 5] and p["prompt_diffs"] == d.tolist() and p["n"] == 6
    assert p["mean_diff"] == pytest.approx(d.mean())
    half = 2.570582 * d.std(ddof=1) / math.sqrt(6)  # t_{0.975, 5}
    assert p["ci"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-5)
    assert p["verdict"] == "not separated" and p["test"] == "Student t over prompts (paired by prompt)"
    assert p["discordant"] == {"reference_only": 1, "variant_only": 3}
    assert p["mcnemar_p"] == pytest.approx(0.625)  # two-sided binomial, 1 of 4 discordant
    assert p["seeds"] == [] and p["diffs"] == []  # the report's per-seed column stays empty

    many = {i: 0 for i in range(100)}
    worse = {i: int(i < 30) for i in range(100)}  # the variant refuses 30 safe prompts more
    assert stats.paired_by_prompt(many, worse, higher_is_better=False)["verdict"] == "ahead"  # lower is better
    assert stats.paired_by_prompt(worse, many, higher_is_better=False)["verdict"] == "behind"
    assert stats.paired_by_prompt(many, worse, higher_is_better=True)["verdict"] == "behind"
    same = stats.paired_by_prompt(worse, worse)
    assert same["ci"] == [0.0, 0.0] and same["verdict"] == "not separated" and same["mcnemar_p"] == 1.0
    assert stats.paired_by_prompt({}, {})["verdict"] == "no paired seeds"


def _payload():
    rows = list(range(0, 400, 2))
    flags = {"sys_none": [int(i % 10 == 0) for i in range(200)], "sys_mild": [int(i % 10 == 0) for i in range(200)],
             "sys_strict": [int(i % 10 == 0 or i % 7 == 0) for i in range(200)]}
    return {"method": "orbench", "preset": "quick", "dataset": "or_bench", "primary_metric": "hard_rejection_rate",
            "higher_is_better": False, "reference": "sys_none", "seeds": [0],
            "variants": {v: {"hard_rejection_rate": [float(np.mean(f))], "toxic_rejection_rate": [0.1]}
                         for v, f in flags.items()},
            "extra": {"hard_flags": {v: [f] for v, f in flags.items()}, "hard_rows": {v: [rows] for v in flags}},
            "config": {}, "overrides": [], "git_commit": "a" * 40, "jax_version": "0", "devices": "cpu x1",
            "wall_seconds": 1.0}


def test_paired_by_prompt_in_results_and_report(tmp_path):
    payload = _payload()
    out = tmp_path / "results" / "orbench"
    payload["paired"] = experiment.paired(payload)  # the runner's hooks, as jaxsuite.core.runner calls them
    results.write(payload, out, paired_md=experiment.format_paired)
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["paired"]) == {"sys_mild", "sys_strict"}
    strict = saved["paired"]["sys_strict"]
    assert strict["test"] == stats.PAIRED_TEST and strict["units"] == "prompts" and strict["n"] == 200
    assert strict["mean_diff"] < 0 and strict["verdict"] == "ahead"  # sys_none refuses fewer safe prompts
    assert saved["paired"]["sys_mild"]["verdict"] == "not separated"
    md = (out / "results.md").read_text()
    assert "Paired by seed" not in md and "Paired by prompt" in md and "| sys_strict |" in md
    assert md.count("| sys_none (ref) |") == 1  # the per-variant table is kept
    row = report.summary("orbench", saved)
    assert row["headline"].startswith("0.1000") and {o["verdict"] for o in row["others"]} == {"ahead",
                                                                                              "not separated"}
    assert all(o["interval"].startswith("Δ ") and "[" in o["interval"] for o in row["others"])
    site = report.build(tmp_path / "results", tmp_path / "site")
    page = site["pages"]["orbench"].read_text()
    assert "ahead" in page and "not separated" in page
