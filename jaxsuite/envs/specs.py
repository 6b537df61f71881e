"""One description per task family, so an agent needs only a name: ``get("sparse_point_robot")``.

An :class:`EnvSpec` holds the pure ``reset(key, task) -> (state, obs)`` and ``step(state, action) -> (state, obs,
reward, done, info)`` (``info["success"]``: the step is inside the goal region), the sizes, the factor that maps a
policy's [-1, 1] action to the env's action box (rlkit's NormalizedBoxEnv), the horizon and the official
training / evaluation task lists.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax

from jaxsuite.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    name: str
    reset: Callable
    step: Callable
    obs_dim: int
    act_dim: int
    action_scale: float
    horizon: int
    train_tasks: Any  # [num_train, ...]: an array, or a dict of arrays (walker_rand_params' model parameters)
    eval_tasks: Any  # [num_eval, ...], the same structure

    @property
    def num_train(self) -> int:
        return len(jax.tree.leaves(self.train_tasks)[0])


def _point_robot() -> EnvSpec:
    from jaxsuite.envs import point_robot as e

    train, evals = e.split(e.goals())
    return EnvSpec("sparse_point_robot", e.reset, e.step, 2, 2, e.MAX_ACTION, e.HORIZON, train, evals)


def _cheetah_vel() -> EnvSpec:
    from jaxsuite.envs import cheetah_vel as e

    t = e.tasks()
    return EnvSpec("cheetah_vel_sparse", e.reset, e.step, 20, 6, 1.0, e.HORIZON, t[:e.NUM_TRAIN],
                   t[len(t) - e.NUM_EVAL:])


def _ant_goal() -> EnvSpec:
    from jaxsuite.envs import ant_goal as e

    t = e.tasks()
    return EnvSpec("ant_goal_sparse", e.reset, e.step, 113, 8, 1.0, e.HORIZON, t[:e.NUM_TRAIN],
                   t[len(t) - e.NUM_EVAL:])


def _walker_params() -> EnvSpec:
    from jaxsuite.envs import walker_params as e

    t = e.tasks()
    pick = lambda sl: {k: v[sl] for k, v in t.items()}  # noqa: E731
    return EnvSpec("walker_rand_params", e.reset, e.step, 17, 6, 1.0, e.HORIZON, pick(slice(0, e.NUM_TRAIN)),
                   pick(slice(e.NUM_TRAIN, e.NUM_TRAIN + e.NUM_EVAL)))


ENVS: dict[str, Callable[[], EnvSpec]] = {
    "sparse_point_robot": _point_robot,
    "cheetah_vel_sparse": _cheetah_vel,
    "ant_goal_sparse": _ant_goal,
    "walker_rand_params": _walker_params,
}


def get(name: str) -> EnvSpec:
    if name not in ENVS:
        raise ConfigError(f"env.name {name!r} is not a task here (expected one of {', '.join(ENVS)})")
    return _get(name)


@functools.lru_cache(maxsize=None)
def _get(name: str) -> EnvSpec:
    return ENVS[name]()
