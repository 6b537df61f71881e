"""Per-task replay buffers as fixed-size device arrays (functional: every write returns a new buffer).

A buffer keeps, for each training task, the last ``capacity`` episodes of ``length`` steps (an explorer
meta-episode of K episodes is one entry of K * horizon steps, so a belief can be recomputed over its prefix):
``obs``/``next_obs`` [tasks, capacity, length, obs_dim], ``action`` [..., act_dim], ``reward`` [..., length] and
``count`` [tasks], the episodes written so far (the ring position is count mod capacity).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

FIELDS = ("obs", "action", "reward", "next_obs")


def empty(num_tasks: int, capacity: int, length: int, obs_dim: int, act_dim: int) -> dict:
    z = lambda *d: jnp.zeros((num_tasks, capacity, length, *d))  # noqa: E731
    return {"obs": z(obs_dim), "action": z(act_dim), "reward": z(), "next_obs": z(obs_dim),
            "count": jnp.zeros((num_tasks,), jnp.int32)}


def add(buffer: dict, tasks: jax.Array, episodes: dict) -> dict:
    """Write one episode per task: ``episodes`` fields [len(tasks), length, ...] (others are ignored); ``tasks``
    must be distinct."""
    capacity = buffer["obs"].shape[1]
    slot = buffer["count"][tasks] % capacity
    out = {k: buffer[k].at[tasks, slot].set(episodes[k].astype(buffer[k].dtype)) for k in FIELDS}
    return {**out, "count": buffer["count"].at[tasks].add(1)}


def filled(buffer: dict, tasks: jax.Array) -> jax.Array:
    return jnp.minimum(buffer["count"][tasks], buffer["obs"].shape[1])


def episode(buffer: dict, task: jax.Array, key: jax.Array) -> dict:
    """One stored episode of ``task``, uniformly among its filled slots: fields [length, ...]."""
    slot = jax.random.randint(key, (), 0, jnp.maximum(filled(buffer, task), 1))
    return {k: buffer[k][task, slot] for k in FIELDS}


def transitions(buffer: dict, task: jax.Array, key: jax.Array, n: int) -> dict:
    """``n`` transitions of ``task`` drawn uniformly (with replacement) from its filled episodes and steps."""
    k_slot, k_t = jax.random.split(key)
    slots = jax.random.randint(k_slot, (n,), 0, jnp.maximum(filled(buffer, task), 1))
    steps = jax.random.randint(k_t, (n,), 0, buffer["obs"].shape[2])
    return {k: buffer[k][task, slots, steps] for k in FIELDS}
