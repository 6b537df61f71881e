"""PATE's aggregation (Papernot et al., ICLR 2018): teachers vote, the noisy argmax answers.

Teachers are a leading (vmapped) axis of one parameter pytree: ``teacher_votes`` runs all of them with
``jax.vmap`` (shardable over the mesh's devices), and the vote histogram is the only thing the aggregator
sees. GNMax: argmax(votes + N(0, sigma^2)). Confident-GNMax: answer only if max(votes) + N(0, sigma_1^2)
>= threshold, then GNMax with sigma_2."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def teacher_votes(apply_fn: Callable[[Any, jax.Array], jax.Array], teacher_params: Any, x: jax.Array,
                  num_classes: int) -> jax.Array:
    """Vote histogram [Q, K]: every teacher (leading axis of ``teacher_params``) labels every query."""
    logits = jax.vmap(apply_fn, in_axes=(0, None))(teacher_params, x)  # [T, Q, K]
    return jnp.sum(jax.nn.one_hot(jnp.argmax(logits, -1), num_classes), axis=0)


def gnmax(key: jax.Array, votes: jax.Array, sigma: float) -> jax.Array:
    """Noisy argmax labels [Q]."""
    return jnp.argmax(votes + sigma * jax.random.normal(key, votes.shape), axis=-1)


def confident_gnmax(key: jax.Array, votes: jax.Array, sigma1: float, sigma2: float,
                    threshold: float) -> tuple[jax.Array, jax.Array]:
    """(labels [Q], answered [Q] bool): queries whose noisy top vote clears ``threshold`` get a GNMax label."""
    k1, k2 = jax.random.split(key)
    answered = jnp.max(votes, -1) + sigma1 * jax.random.normal(k1, votes.shape[:-1]) >= threshold
    return gnmax(k2, votes, sigma2), answered
