"""``sparse_point_robot``: MetaCURE's sparse 2-D navigation task (official code: rlkit/envs/point_robot.py,
``SparsePointEnv``, from PEARL), in pure JAX.

A point starts at the origin and moves by its action, clipped to [-0.1, 0.1]^2 (rlkit's NormalizedBoxEnv maps
the policy's [-1, 1] to the action box); the observation is its position. A task is a goal on the upper unit
semicircle: the official code takes ``n_tasks`` angles ``linspace(0, pi)`` and shuffles them with NumPy's
global RNG seeded 1337, and the first 40 are the training tasks, the last 20 the evaluation tasks (PEARL's
split of 60). The sparse reward is 1 - d when the distance d to the goal is at most the goal radius 0.3, else 0
(the official ``sparsify_rewards`` keeps -d inside the radius and adds 1); the dense reward -d and ``success``
(d <= 0.3) are in ``info``.
Episodes last 32 steps (the config's ``max_path_length``); nothing ends an episode earlier.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

GOAL_RADIUS = 0.3
MAX_ACTION = 0.1
HORIZON = 32
NUM_TRAIN, NUM_EVAL = 40, 20


@struct.dataclass
class State:
    pos: jax.Array  # [2]
    goal: jax.Array  # [2], the task
    t: jax.Array  # steps taken


def goals(num_tasks: int = NUM_TRAIN + NUM_EVAL, seed: int = 1337) -> np.ndarray:
    """[num_tasks, 2]: the official task list (angles linspace(0, pi, num_tasks) on the unit circle, rows
    shuffled by NumPy's legacy RNG with ``seed``, as ``np.random.seed(1337); np.random.shuffle(goals)``)."""
    angles = np.linspace(0, np.pi, num=num_tasks)
    out = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    np.random.RandomState(seed).shuffle(out)
    return out.astype(np.float32)


def split(tasks: np.ndarray, num_train: int = NUM_TRAIN, num_eval: int = NUM_EVAL) -> tuple[np.ndarray, np.ndarray]:
    """(training tasks, evaluation tasks): the first ``num_train`` and the last ``num_eval`` (PEARL's split)."""
    if num_train + num_eval > len(tasks):
        raise ValueError(f"{num_train} training + {num_eval} evaluation tasks exceed the {len(tasks)} tasks")
    return tasks[:num_train], tasks[len(tasks) - num_eval:]


def reset(key: jax.Array, task: jax.Array) -> tuple[State, jax.Array]:
    """The start (the origin; ``key`` is unused: the official start is deterministic) for goal ``task``."""
    del key
    state = State(pos=jnp.zeros(2), goal=jnp.asarray(task, jnp.float32), t=jnp.zeros((), jnp.int32))
    return state, state.pos


def sparse_reward(pos: jax.Array, goal: jax.Array, xp=jnp) -> tuple[jax.Array, jax.Array]:
    """(sparse reward, dense reward -d); ``xp=numpy`` for host arrays (the gymnasium Env)."""
    dense = -xp.linalg.norm(pos - goal, axis=-1)
    return xp.where(dense >= -GOAL_RADIUS, 1.0 + dense, 0.0), dense


def step(state: State, action: jax.Array):
    """(state, obs, reward, done, info): one move by the clipped action."""
    pos = state.pos + jnp.clip(action, -MAX_ACTION, MAX_ACTION)
    reward, dense = sparse_reward(pos, state.goal)
    state = State(pos=pos, goal=state.goal, t=state.t + 1)
    return state, pos, reward, state.t >= HORIZON, {"dense_reward": dense, "success": dense >= -GOAL_RADIUS}


def rollout(policy, key: jax.Array, task: jax.Array, horizon: int = HORIZON):
    """One episode of ``policy(key, obs) -> action`` as a ``lax.scan``: (observations [T, 2], actions [T, 2],
    rewards [T], next observations [T, 2])."""
    k_reset, k_steps = jax.random.split(key)
    state, obs = reset(k_reset, task)

    def one(carry, k):
        state, obs = carry
        action = policy(k, obs)
        state, next_obs, reward, _, _ = step(state, action)
        return (state, next_obs), (obs, action, reward, next_obs)

    _, out = jax.lax.scan(one, (state, obs), jax.random.split(k_steps, horizon))
    return out
