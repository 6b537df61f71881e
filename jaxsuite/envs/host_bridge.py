"""Host simulators (CPU MuJoCo behind a gymnasium Env, e.g. Meta-World) as an :class:`EnvSpec` whose ``reset`` /
``step`` trace into jitted, vmapped, scanned rollouts like the pure-JAX envs'.

The simulator's state cannot live in JAX arrays, so it lives in a :class:`HostPool` on the host and the traced
state is a handle: ``HostState(slot, t)``. ``reset`` and ``step`` are ``jax.experimental.io_callback`` calls
(impure: XLA neither merges nor drops them; under ``vmap`` they run lane by lane). A slot holds one Env of one
task; it is taken at ``reset`` and given back after the episode's ``horizon``-th step, so every episode must run
exactly ``horizon`` steps, which the agents' ``lax.scan`` rollouts do. Slots are reused across episodes (an Env is
built once per task and concurrent episode); ``reset`` seeds the Env from the JAX key, so a rollout is a function
of its key and task, and a resumed run collects the same episodes. The pool belongs to the spec (``specs.get``
caches one per env name and horizon): there is no module-level state.

The pool serves one process; under a multi-device mesh every callback runs on the host that owns the device.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback


@struct.dataclass
class HostState:
    slot: jax.Array  # int32 handle into the pool
    t: jax.Array  # steps taken in this episode


class HostPool:
    """Envs of ``make_env(task_index, horizon)`` (a gymnasium Env with a ``{"success": ...}`` info) kept by slot."""

    def __init__(self, make_env: Callable[[int, int], object], horizon: int, obs_dim: int):
        self.make_env, self.horizon, self.obs_dim = make_env, horizon, obs_dim
        self.envs: list[tuple[int, object]] = []  # slot -> (task, env)
        self.free: dict[int, list[int]] = defaultdict(list)  # task -> free slots
        self.lock = threading.Lock()

    def reset(self, key_data: np.ndarray, task: np.ndarray):
        task = int(task)
        with self.lock:
            if self.free[task]:
                slot = self.free[task].pop()
            else:
                slot = len(self.envs)
                self.envs.append((task, self.make_env(task, self.horizon)))
        seed = int(np.asarray(key_data, np.uint64).ravel()[-1] % np.uint64(2**31 - 1))
        obs, _ = self.envs[slot][1].reset(seed=seed)
        return np.int32(slot), self._obs(obs)

    def step(self, slot: np.ndarray, t: np.ndarray, action: np.ndarray):
        slot, t = int(slot), int(t)
        task, env = self.envs[slot]
        obs, reward, _terminated, _truncated, info = env.step(np.asarray(action, np.float32))
        if t + 1 >= self.horizon:  # the episode is over: the slot's Env can serve the next reset of its task
            with self.lock:
                self.free[task].append(slot)
        return self._obs(obs), np.float32(reward), np.bool_(info["success"])

    def _obs(self, obs) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"the host env returned an observation of shape {obs.shape}; its spec says "
                             f"({self.obs_dim},)")
        return obs


def make_reset_step(pool: HostPool):
    """(reset(key, task) -> (HostState, obs), step(state, action) -> (state, obs, reward, done, info)), traceable."""
    obs_shape = jax.ShapeDtypeStruct((pool.obs_dim,), jnp.float32)

    def reset(key: jax.Array, task: jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        slot, obs = io_callback(pool.reset, (jax.ShapeDtypeStruct((), jnp.int32), obs_shape), key,
                                jnp.asarray(task, jnp.int32))
        return HostState(slot=slot, t=jnp.zeros((), jnp.int32)), obs

    def step(state: HostState, action: jax.Array):
        obs, reward, success = io_callback(
            pool.step, (obs_shape, jax.ShapeDtypeStruct((), jnp.float32), jax.ShapeDtypeStruct((), jnp.bool_)),
            state.slot, state.t, jnp.asarray(action, jnp.float32))
        state = HostState(slot=state.slot, t=state.t + 1)
        return state, obs, reward, state.t >= pool.horizon, {"success": success}

    return reset, step
