"""OR-Bench prompt sets (Cui et al. 2024; HuggingFace bench-llm/or-bench): CSVs with columns prompt, category.

``or-bench-hard-1k`` (1,319 seemingly toxic but safe prompts) and ``or-bench-toxic`` (655 toxic prompts, the
control set) are fetched by ``jaxsuite data fetch or_bench``; ``or-bench-80k`` is read the same way when a user
has put it in the folder. The toxic file is harmful text: nothing here prints prompts.
"""
from __future__ import annotations

import csv

import numpy as np

from jaxsuite.core.errors import UserError
from jaxsuite.data.cache import RemoteFile, Source

_HF = "https://huggingface.co/datasets/bench-llm/or-bench/resolve/main/"
_GH = ("https://raw.githubusercontent.com/sebastianvne/supp_exp/4b8a74e37021d7a25cb13529b84d82137c6cb0a7/"
       "datasets/or-bench/")
SPLITS = {"hard_1k": "or-bench-hard-1k.csv", "toxic": "or-bench-toxic.csv", "80k": "or-bench-80k.csv"}

OR_BENCH = Source("or_bench", "OR-Bench Hard-1K and Toxic prompt sets (prompt, category); CC BY 4.0 upstream", tuple(
    RemoteFile(name, sha, (_HF + name, _GH + name)) for name, sha in (
        ("or-bench-hard-1k.csv", "922a2a0be924c595cdcba529cd88d1ffa57e3752c97880f0fefe6c197e62af9c"),
        ("or-bench-toxic.csv", "30da2e73463df8a1d08be95ed84d4d3dc4f3bc07826c83fca97e6785110783ba"),
    )))


def load(split: str):
    """A ``datasets.Dataset`` with columns prompt, category."""
    import datasets

    if split not in SPLITS:
        raise UserError(f"unknown OR-Bench split {split!r} (known: {', '.join(SPLITS)})")
    if split == "80k":
        path = OR_BENCH.folder / SPLITS[split]
        if not path.is_file():
            raise UserError(f"{path} not found: download or-bench-80k.csv from HuggingFace bench-llm/or-bench "
                            "into that folder (it is not fetched automatically)")
    else:
        path = OR_BENCH.path(SPLITS[split])
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    if "prompt" not in header or "category" not in header:
        raise UserError(f"{path}: expected a CSV with columns prompt and category, found {header}")
    datasets.disable_progress_bars()
    ds = datasets.load_dataset("csv", data_files=str(path), split="train", keep_in_memory=True)
    ds = ds.select_columns(["prompt", "category"])
    bad = [i for i, p in enumerate(ds["prompt"]) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise UserError(f"{path}: row(s) {bad[:5]} have an empty prompt")
    return ds


def stratified_subset(ds, n: int, seed: int = 0):
    """A fixed subset of ``n`` rows with every category in proportion (at least one row each), drawn by ``seed``;
    the whole set when ``n`` <= 0 or ``n`` >= its size."""
    if n <= 0 or n >= len(ds):
        return ds
    cats = np.asarray(ds["category"])
    rng = np.random.default_rng(seed)
    names, counts = np.unique(cats, return_counts=True)
    quota = np.maximum(1, np.floor(counts / counts.sum() * n)).astype(int)
    while quota.sum() < n:  # hand the remainder to the largest fractional parts
        quota[np.argmax(counts / counts.sum() * n - quota)] += 1
    while quota.sum() > n:
        quota[np.argmax(quota)] -= 1
    picks = [rng.choice(np.nonzero(cats == c)[0], q, replace=False) for c, q in zip(names, quota)]
    return ds.select(sorted(int(i) for i in np.concatenate(picks)))
