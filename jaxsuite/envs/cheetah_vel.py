"""``cheetah_vel_sparse``: MetaCURE's sparse target-velocity HalfCheetah (official code: rlkit/envs/
half_cheetah_vel.py, ``HalfCheetahVelEnv_sparse``) on MuJoCo MJX.

Dynamics: gymnasium's half_cheetah.xml (the model of gym's HalfCheetah that rlkit subclasses), 5 MuJoCo steps
per action (dt 0.05), actions clipped to the actuators' [-1, 1]. Start: qpos + U(-0.1, 0.1), qvel + 0.1 N(0, 1)
(gym's reset noise). Observation (rlkit's ``_get_obs``): qpos[1:], qvel, the torso's position: 20 numbers.
Tasks: target velocities ``np.random.seed(1337); np.random.uniform(0, 3, n_tasks)``; 100 training and 30
evaluation tasks (PEARL's first / last split). Reward: with v = (x_after - x_before) / dt,
(2 - |v - v_goal|) if |v - v_goal| <= 0.5 else 0, minus the control cost 0.05 ||a||^2 (the official
``sparsify_rewards``: -|v - v_goal| below -0.5 becomes -2, then +2). Episodes last 64 steps.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.envs import mjx_model
from jaxsuite.envs.mjx_model import State

GOAL_RADIUS = 0.5
CTRL_COST = 0.05
FRAME_SKIP = 5
HORIZON = 64
NUM_TRAIN, NUM_EVAL = 100, 30



def tasks(num_tasks: int = NUM_TRAIN + NUM_EVAL, seed: int = 1337) -> np.ndarray:
    """[num_tasks] target velocities, drawn as the official code draws them (NumPy's legacy RNG)."""
    return np.random.RandomState(seed).uniform(0.0, 3.0, size=(num_tasks,)).astype(np.float32)


def model():
    """(mujoco.MjModel, mjx.Model, torso body id)."""
    m, mx = mjx_model.load("half_cheetah.xml")
    return m, mx, mjx_model.body_id(m, "torso")


def _obs(data, torso: int) -> jax.Array:
    return jnp.concatenate([data.qpos[1:], data.qvel, data.xpos[torso]])


def reset(key: jax.Array, task: jax.Array) -> tuple[State, jax.Array]:
    m, mx, torso = model()
    data = mjx_model.noisy_start(m, mx, key)
    state = State(data=data, goal=jnp.asarray(task, jnp.float32), t=jnp.zeros((), jnp.int32))
    return state, _obs(data, torso)


def sparse_reward(velocity: jax.Array, goal: jax.Array, action: jax.Array, xp=jnp) -> jax.Array:
    """``xp=numpy`` for host arrays (the gymnasium Env)."""
    gap = xp.abs(velocity - goal)
    return xp.where(gap <= GOAL_RADIUS, 2.0 - gap, 0.0) - CTRL_COST * xp.sum(xp.square(action), -1)


def step(state: State, action: jax.Array):
    """(state, obs, reward, done, info): ``FRAME_SKIP`` MJX steps with the clipped action as control."""
    m, mx, torso = model()
    action = jnp.clip(action, -1.0, 1.0)
    x_before = state.data.qpos[0]
    data = mjx_model.simulate(mx, state.data, action, FRAME_SKIP)
    velocity = (data.qpos[0] - x_before) / (m.opt.timestep * FRAME_SKIP)
    reward = sparse_reward(velocity, state.goal, action)
    state = State(data=data, goal=state.goal, t=state.t + 1)
    info = {"velocity": velocity, "success": jnp.abs(velocity - state.goal) <= GOAL_RADIUS}
    return state, _obs(data, torso), reward, state.t >= HORIZON, info
