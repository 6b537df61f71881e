"""The three disjoint task sets of a run: training, validation and test (issue 35's protocol, issue 42).

The env's official lists are a training list and a held-out evaluation list (``specs.EnvSpec``: 40 / 20 goals on
the point robot, PEARL's split). The held-out list is the **test** set: the reported metric reads it once, at the
end of a run. The paper has no validation set, so ``val.tasks`` tasks of the official training list are held out
of training (drawn by ``val.seed``, a permutation of the training indices): every choice made on a run (tuning,
selection, the periodic evaluations every ``eval_every`` iterations) reads them, and the agent never trains on
them. Training uses the rest. The sets depend on (env, val.tasks, val.seed) only: fixed given the config, the
same for every variant and seed.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.envs import specs


def split_indices(num_train: int, num_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) into the official training list, both sorted and disjoint."""
    if not 0 < num_val < num_train:
        raise ConfigError(f"val.tasks must be in [1, {num_train - 1}] (the official training list has "
                          f"{num_train} tasks and training keeps at least one), got {num_val}")
    perm = np.random.default_rng(seed).permutation(num_train)
    return np.sort(perm[num_val:]), np.sort(perm[:num_val])


@functools.lru_cache(maxsize=None)
def _split(env: str, num_val: int, seed: int, horizon: int = 0):
    spec = specs.get(env, horizon)
    train_idx, val_idx = split_indices(spec.num_train, num_val, seed)
    pick = lambda idx: jax.tree.map(lambda x: np.asarray(x)[idx], spec.train_tasks)  # noqa: E731
    return dataclasses.replace(spec, train_tasks=pick(train_idx)), pick(val_idx)


def training_spec(env: str, num_val: int, seed: int, horizon: int = 0) -> specs.EnvSpec:
    """The env's spec (episodes of ``horizon`` steps; 0: the env's own) with ``train_tasks`` the training part
    (``eval_tasks``: the official held-out list, the test set)."""
    return _split(env, num_val, seed, horizon)[0]


def validation_tasks(env: str, num_val: int, seed: int):
    """[num_val, ...] the validation tasks (an array, or a dict of arrays as the env's tasks are)."""
    return _split(env, num_val, seed)[1]


def reported_tasks(env: str):
    """The official held-out evaluation list: the reported (test) tasks."""
    return specs.get(env).eval_tasks
