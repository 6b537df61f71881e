"""``ant_goal_sparse``: MetaCURE's sparse goal-reaching Ant (official code: rlkit/envs/ant_goal.py,
``AntGoalEnvSparse``, on rlkit's AntEnv) on MuJoCo MJX.

Dynamics: gymnasium's ant.xml (rlkit ships its own copy of gym's ant.xml; we take gymnasium's), 5 MuJoCo steps
per action, actions clipped to the actuators' [-1, 1], gym's reset noise. Observation (``_get_obs`` of the
sparse env): qpos (15), qvel (14), clip(cfrc_ext, -1, 1) (14 bodies x 6): 113 numbers. The external contact
forces come from ``mjx.rne_postconstraint``; gym's Ant under mujoco-py 2.0 is known to have read zeros there,
and whether the official runs did is not stated.
Tasks: goals on the upper unit semicircle, angle U(0, pi); 80 training and 20 evaluation tasks. The official
``sample_tasks`` draws from NumPy's global RNG without seeding it (its state depends on what ran before); we
draw from ``RandomState(1337)``, the seed of the other tasks.
Reward, with d the L1 distance of the torso's (x, y) to the goal, ctrl = 0.1 ||a||^2 and contact = 5e-4
||clip(cfrc_ext, -1, 1)||^2: the official code computes r = -d - ctrl - contact, makes it r + 2 if r >= -0.8
and 0 otherwise, then subtracts ctrl and contact again: **the costs count twice inside the goal region, once
outside, and the region shrinks with the costs**. ``official=True`` (default, to reproduce the paper's curves)
keeps that; ``official=False`` is the evident intent, (2 - d if d <= 0.8 else 0) - ctrl - contact.
Episodes last 32 steps (gym's Ant termination on the torso's height is not used by the sparse env).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.envs import mjx_model
from jaxsuite.envs.mjx_model import State

GOAL_RADIUS = 0.8
FRAME_SKIP = 5
HORIZON = 32
NUM_TRAIN, NUM_EVAL = 80, 20



def tasks(num_tasks: int = NUM_TRAIN + NUM_EVAL, seed: int = 1337) -> np.ndarray:
    """[num_tasks, 2] goals at angle U(0, pi) on the unit circle."""
    a = np.random.RandomState(seed).random_sample(num_tasks) * np.pi
    return np.stack([np.cos(a), np.sin(a)], axis=-1).astype(np.float32)


def model():
    """(mujoco.MjModel, mjx.Model, torso body id)."""
    m, mx = mjx_model.load("ant.xml")
    return m, mx, mjx_model.body_id(m, "torso")


def _contact(data) -> jax.Array:
    impl = getattr(data, "_impl", data)  # MJX >= 3.3 keeps cfrc_ext in the backend's fields
    return jnp.clip(impl.cfrc_ext, -1.0, 1.0)


def _obs(data) -> jax.Array:
    return jnp.concatenate([data.qpos, data.qvel, _contact(data).ravel()])


def reset(key: jax.Array, task: jax.Array) -> tuple[State, jax.Array]:
    from mujoco import mjx

    m, mx, _ = model()
    data = mjx.rne_postconstraint(mx, mjx_model.noisy_start(m, mx, key))
    state = State(data=data, goal=jnp.asarray(task, jnp.float32), t=jnp.zeros((), jnp.int32))
    return state, _obs(data)


def sparse_reward(torso_xy: jax.Array, goal: jax.Array, action: jax.Array, contact: jax.Array,
                  official: bool = True, xp=jnp) -> jax.Array:
    """The sparse reward (see the module docstring); ``contact`` is clip(cfrc_ext, -1, 1); ``xp=numpy`` for host
    arrays (the gymnasium Env)."""
    d = xp.sum(xp.abs(torso_xy - goal), -1)
    costs = 0.1 * xp.sum(xp.square(action), -1) + 0.5e-3 * xp.sum(xp.square(contact), (-2, -1))
    if official:
        dense = -d - costs
        return xp.where(dense >= -GOAL_RADIUS, dense + 2.0, 0.0) - costs
    return xp.where(d <= GOAL_RADIUS, 2.0 - d, 0.0) - costs


def step(state: State, action: jax.Array, official: bool = True):
    """(state, obs, reward, done, info)."""
    from mujoco import mjx

    m, mx, torso = model()
    action = jnp.clip(action, -1.0, 1.0)
    data = mjx.rne_postconstraint(mx, mjx_model.simulate(mx, state.data, action, FRAME_SKIP))
    xy = data.xpos[torso, :2]
    reward = sparse_reward(xy, state.goal, action, _contact(data), official)
    state = State(data=data, goal=state.goal, t=state.t + 1)
    info = {"torso_xy": xy, "success": jnp.sum(jnp.abs(xy - state.goal)) <= GOAL_RADIUS}
    return state, _obs(data), reward, state.t >= HORIZON, info
