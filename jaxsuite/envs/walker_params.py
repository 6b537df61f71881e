"""``walker_rand_params``: MetaCURE's Walker2d with randomised dynamics (official code: rlkit/envs/
walker_rand_params_wrapper.py over PEARL's rand_param_envs ``Walker2DRandParamsEnv``) on MuJoCo MJX.

Dynamics: gymnasium's walker2d.xml (the classic gym model rand_param_envs ships a copy of), 4 MuJoCo steps per
action (dt 0.008), actions clipped to [-1, 1]. Start: qpos0 and zero velocity plus U(-0.005, 0.005) each (gym's
Walker2d reset). Observation (rand_param_envs' ``_get_obs``): qpos[1:], clip(qvel, -10, 10): 17 numbers.
Tasks (rand_param_envs ``sample_tasks``, log_scale_limit 3): every body's mass and every inertia entry times
1.5^U(-3, 3), every dof's damping times 1.3^U(-3, 3), every geom's friction entry times 1.5^U(-3, 3), each entry
drawn on its own. The official code draws them from NumPy's unseeded global RNG; we draw from RandomState(1337), the
seed of the other tasks. 40 training and 10 evaluation tasks (the first / last of 50). As in mujoco-py's direct
writes to ``model.body_mass``, the derived constants (``mj_setConst``) are not recomputed.
Reward: with v = (x_after - x_before) / dt, (0.8 - |v - 1.5|) if |v - 1.5| <= 0.5 else 0, minus 1e-3 ||a||^2;
no termination; episodes last 64 steps. ``info["success"]``: |v - 1.5| <= 0.5.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.envs import mjx_model
from jaxsuite.envs.mjx_model import State

TARGET_VELOCITY = 1.5
GOAL_RADIUS = 0.5
CTRL_COST = 1e-3
FRAME_SKIP = 4
HORIZON = 64
NUM_TRAIN, NUM_EVAL = 40, 10
LOG_SCALE_LIMIT = 3.0
# model field -> base of the log-uniform multiplier (rand_param_envs)
RAND_PARAMS = {"body_mass": 1.5, "body_inertia": 1.5, "dof_damping": 1.3, "geom_friction": 1.5}


def model():
    """(mujoco.MjModel, mjx.Model)."""
    return mjx_model.load("walker2d.xml")


def tasks(num_tasks: int = NUM_TRAIN + NUM_EVAL, seed: int = 1337) -> dict[str, np.ndarray]:
    """{field: [num_tasks, ...]} randomised model parameters (the official sampling order: per task, the fields
    in RAND_PARAMS' order)."""
    m, _ = model()
    rng = np.random.RandomState(seed)
    out = {k: [] for k in RAND_PARAMS}
    for _ in range(num_tasks):
        for field, base in RAND_PARAMS.items():
            init = getattr(m, field)
            out[field].append(init * base ** rng.uniform(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT, size=init.shape))
    return {k: np.stack(v).astype(np.float32) for k, v in out.items()}


def _task_model(task: dict):
    _, mx = model()
    return mx.replace(**{k: jnp.asarray(v) for k, v in task.items()})


def _obs(data) -> jax.Array:
    return jnp.concatenate([data.qpos[1:], jnp.clip(data.qvel, -10.0, 10.0)])


def reset(key: jax.Array, task: dict) -> tuple[State, jax.Array]:
    m, _ = model()
    data = mjx_model.noisy_start(m, _task_model(task), key, scale=0.005, uniform_velocity=True)
    state = State(data=data, goal=task, t=jnp.zeros((), jnp.int32))
    return state, _obs(data)


def sparse_reward(velocity, action, xp=jnp):
    """``xp=numpy`` for host arrays (the gymnasium Env)."""
    gap = xp.abs(velocity - TARGET_VELOCITY)
    return xp.where(gap <= GOAL_RADIUS, 0.8 - gap, 0.0) - CTRL_COST * xp.sum(xp.square(action), -1)


def step(state: State, action: jax.Array):
    """(state, obs, reward, done, info): ``FRAME_SKIP`` MJX steps of the task's model."""
    m, _ = model()
    action = jnp.clip(action, -1.0, 1.0)
    x_before = state.data.qpos[0]
    data = mjx_model.simulate(_task_model(state.goal), state.data, action, FRAME_SKIP)
    velocity = (data.qpos[0] - x_before) / (m.opt.timestep * FRAME_SKIP)
    reward = sparse_reward(velocity, action)
    state = State(data=data, goal=state.goal, t=state.t + 1)
    info = {"velocity": velocity, "success": jnp.abs(velocity - TARGET_VELOCITY) <= GOAL_RADIUS}
    return state, _obs(data), reward, state.t >= HORIZON, info
