"""One description per task family, so an agent needs only a name: ``get("sparse_point_robot")``.

An :class:`EnvSpec` holds the pure ``reset(key, task) -> (state, obs)`` and ``step(state, action) -> (state, obs,
reward, done, info)`` (``info["success"]``: the step is inside the goal region), the sizes, the factor that maps a
policy's [-1, 1] action to the env's action box (rlkit's NormalizedBoxEnv), the horizon and the official
training / evaluation task lists. ``get(name, horizon)`` shortens (or, up to a host env's limit, sets) the
episode length; 0 keeps the env's own.

The MJX and point-robot envs are pure JAX. ``metaworld_reach`` / ``metaworld_reach_wall`` are Meta-World ML1
(CPU MuJoCo, the ``metaworld`` package) through ``host_bridge``: the same ``reset`` / ``step`` contract, run by
host callbacks; their tasks are indices (the benchmark's 50 training tasks, then the first 10 of its 50 test
tasks: MetaCURE's official 50 / 10), and their episodes last 150 steps (MetaCURE's Meta-World configs).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np

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


def _metaworld(ml1_name: str) -> Callable[[int], EnvSpec]:
    """Meta-World ML1 ``ml1_name`` at ``horizon`` steps per episode (0: MetaCURE's 150)."""
    def build(horizon: int) -> EnvSpec:
        from jaxsuite.envs import host_bridge
        from jaxsuite.envs import metaworld_ml1 as mw

        horizon = horizon or mw.OFFICIAL_EPISODE_STEPS
        tasks = mw.ML1Tasks(ml1_name, seed=0)
        num_train = len(tasks.tasks["train"])

        def make_env(index: int, h: int):
            return tasks.make("train", index, h) if index < num_train else tasks.make("test", index - num_train, h)

        pool = host_bridge.HostPool(make_env, horizon, mw.OBS_DIM)
        reset, step = host_bridge.make_reset_step(pool)
        return EnvSpec(f"metaworld_{ml1_name.replace('-', '_')}", reset, step, mw.OBS_DIM, mw.ACT_DIM, 1.0, horizon,
                       np.arange(num_train, dtype=np.int32),
                       np.arange(num_train, num_train + mw.NUM_EVAL_TASKS, dtype=np.int32))

    return build


def _pure(make: Callable[[], EnvSpec]) -> Callable[[int], EnvSpec]:
    """A pure-JAX env at ``horizon`` steps per episode (0: its own; rollouts run exactly ``horizon`` steps)."""
    return lambda horizon: dataclasses.replace(make(), horizon=horizon) if horizon else make()


ENVS: dict[str, Callable[[int], EnvSpec]] = {
    "sparse_point_robot": _pure(_point_robot),
    "cheetah_vel_sparse": _pure(_cheetah_vel),
    "ant_goal_sparse": _pure(_ant_goal),
    "walker_rand_params": _pure(_walker_params),
    "metaworld_reach": _metaworld("reach"),
    "metaworld_reach_wall": _metaworld("reach-wall"),
}
MAX_HOST_HORIZON = 500  # Meta-World's max_path_length


def get(name: str, horizon: int = 0) -> EnvSpec:
    if name not in ENVS:
        raise ConfigError(f"env.name {name!r} is not a task here (expected one of {', '.join(ENVS)})")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 0 <= horizon <= MAX_HOST_HORIZON:
        raise ConfigError(f"env.horizon must be an integer in [0, {MAX_HOST_HORIZON}] (0: the env's own episode "
                          f"length), got {horizon!r}")
    return _get(name, int(horizon))


@functools.lru_cache(maxsize=None)
def _get(name: str, horizon: int) -> EnvSpec:
    return ENVS[name](horizon)
