"""What the MJX tasks share: a gymnasium MJCF asset put on the device once, and gym's noisy start."""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class State:
    """An MJX task's state: the simulation, the task (goal velocity or position) and the steps taken."""
    data: object  # mjx.Data
    goal: jax.Array
    t: jax.Array


def asset_path(name: str) -> str:
    """The path of gymnasium's MJCF asset ``name`` (e.g. "half_cheetah.xml")."""
    import gymnasium.envs.mujoco as gym_mujoco

    return os.path.join(os.path.dirname(gym_mujoco.__file__), "assets", name)


@functools.lru_cache(maxsize=None)
def load(name: str):
    """(mujoco.MjModel, mjx.Model) of gymnasium's asset ``name``."""
    import mujoco
    from mujoco import mjx

    m = mujoco.MjModel.from_xml_path(asset_path(name))
    with jax.ensure_compile_time_eval():  # concrete arrays even when first called inside a jit trace
        mx = mjx.put_model(m)
    return m, mx


def body_id(m, name: str) -> int:
    import mujoco

    return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)


def noisy_start(m, mx, key: jax.Array, scale: float = 0.1, uniform_velocity: bool = False):
    """gym's ``reset_model``: qpos0 + U(-scale, scale), qvel scale N(0, 1) (HalfCheetah, Ant) or U(-scale, scale)
    (``uniform_velocity``: Walker2d, scale 0.005); positions derived (``mjx.forward``)."""
    from mujoco import mjx

    k_pos, k_vel = jax.random.split(key)
    qpos = jnp.asarray(m.qpos0) + jax.random.uniform(k_pos, (m.nq,), minval=-scale, maxval=scale)
    qvel = (jax.random.uniform(k_vel, (m.nv,), minval=-scale, maxval=scale) if uniform_velocity
            else scale * jax.random.normal(k_vel, (m.nv,)))
    return mjx.forward(mx, mjx.make_data(mx).replace(qpos=qpos, qvel=qvel))


def simulate(mx, data, action: jax.Array, frame_skip: int):
    """``frame_skip`` MJX steps with ``action`` as the control."""
    from mujoco import mjx

    return jax.lax.fori_loop(0, frame_skip, lambda _, d: mjx.step(mx, d), data.replace(ctrl=action))
