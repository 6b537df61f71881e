"""The test and validation prompt subsets of OR-Bench (issue 35's selection protocol).

OR-Bench has no validation split: every prompt of Hard-1K and Toxic is a test prompt. Here the **test** subset of
a set is the fixed stratified subset the quick preset has always read (``or_bench.stratified_subset(ds, n,
seed=0)``), and the **validation** subset is a second stratified subset (``VAL_SEED``) drawn from the prompts the
test subset does not hold: disjoint by row, every category in proportion. Every choice of the quick preset is made
on validation; the test subset is read once per run, at its end. With ``n_test`` <= 0 (all prompts are test,
the paper preset) no prompt is left for validation, and asking for one is an error.
"""
from __future__ import annotations

from jaxsuite.core.errors import ConfigError
from jaxsuite.data import or_bench

VAL_SEED = 1
ROW = "row"  # the column added here: a prompt's row in the full set (what paired statistics pair by)


def with_rows(ds):
    return ds.add_column(ROW, list(range(len(ds))))


def split(ds, n_test: int, n_val: int):
    """(test, validation) subsets of a prompt set, each with a ``row`` column (the prompt's row in ``ds``);
    validation is None when ``n_val`` <= 0."""
    full = with_rows(ds)
    test = or_bench.stratified_subset(full, int(n_test), seed=0)
    if n_val <= 0:
        return test, None
    taken = set(test[ROW])
    rest = full.select([i for i in range(len(full)) if i not in taken])
    if len(rest) == 0:
        raise ConfigError("a validation subset needs prompts outside the test subset: with all prompts as test "
                          "(eval.hard_prompts / toxic_prompts 0), set eval.val_hard_prompts and val_toxic_prompts 0")
    if n_val >= len(rest):
        raise ConfigError(f"{n_val} validation prompts asked for, {len(rest)} left outside the test subset")
    return test, or_bench.stratified_subset(rest, int(n_val), seed=VAL_SEED)


def load_split(split_name: str, n_test: int, n_val: int):
    return split(or_bench.load(split_name), n_test, n_val)
