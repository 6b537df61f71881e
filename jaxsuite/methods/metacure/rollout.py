"""Episodes, as ``lax.scan`` over steps (vmap these over tasks): the exploration phase, then the exploitation
episode (the official ``collect_paths`` / ``_do_eval`` protocol: explore ``K`` episodes building the context, then
the exploiter acts once with z from the final belief; the exploiter's episode is what is reported).

Exploration modes:
- ``explorer`` (MetaCURE): pi_e(a | s, mu_t, var_t) with the belief updated after every step;
- ``posterior_sampling`` (PEARL): the exploiter pi(a | s, z) with z ~ q(z | context so far) drawn at the start of
  each episode (PEARL's meta-test: the posterior is updated between episodes);
- ``random``: uniform actions in the policy's [-1, 1].
Policies output [-1, 1]; the env gets ``action * spec.action_scale`` (rlkit's NormalizedBoxEnv); buffers and
contexts keep the policy's action.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsuite.envs.specs import EnvSpec
from jaxsuite.methods.metacure.networks import Agent, token

MODES = ("explorer", "posterior_sampling", "random")


def sample_z(key: jax.Array, mu: jax.Array, var: jax.Array) -> jax.Array:
    return mu + jnp.sqrt(var) * jax.random.normal(key, mu.shape)


def _episode(env: EnvSpec, key: jax.Array, task: jax.Array, carry, act):
    """One episode; ``act(key, obs, carry) -> action``; the encoder carry is updated after every step by
    ``act``'s owner through the returned tokens. Returns (carry, fields [T, ...])."""
    k_reset, k_steps = jax.random.split(key)
    state, obs = env.reset(k_reset, task)

    def one(c, k):
        state, obs, carry = c
        action, carry_update = act(k, obs, carry)
        state, next_obs, reward, _, info = env.step(state, action * env.action_scale)
        carry = carry_update(carry, token(obs, action, reward, next_obs))
        return (state, next_obs, carry), {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                                          "success": info["success"]}

    (_, _, carry), out = jax.lax.scan(one, (state, obs, carry), jax.random.split(k_steps, env.horizon))
    return carry, out


def explore(agent: Agent, env: EnvSpec, mode: str, key: jax.Array, task: jax.Array, episodes: int,
            deterministic: bool = False):
    """The exploration phase: (final encoder carry, fields [episodes * horizon, ...])."""
    if mode not in MODES:
        raise ValueError(f"exploration mode {mode!r}: expected one of {MODES}")
    enc = agent.encoder

    def one_episode(carry, k):
        k_z, k_ep = jax.random.split(k)
        if mode == "posterior_sampling":  # one z per episode, from the context so far
            z = sample_z(k_z, *enc.belief(carry))

        def act(k_a, obs, c):
            if mode == "explorer":
                a = agent.exp_policy(k_a, obs, *enc.belief(c), deterministic=deterministic)[0]
            elif mode == "posterior_sampling":
                a = agent.policy(k_a, obs, z, deterministic=deterministic)[0]
            else:
                a = jax.random.uniform(k_a, (env.act_dim,), minval=-1.0, maxval=1.0)
            return a, enc.update

        return _episode(env, k_ep, task, carry, act)

    carry, out = jax.lax.scan(one_episode, enc.init_carry(), jax.random.split(key, episodes))
    return carry, jax.tree.map(lambda x: x.reshape(episodes * env.horizon, *x.shape[2:]), out)


def exploit(agent: Agent, env: EnvSpec, key: jax.Array, task: jax.Array, carry, deterministic: bool = False):
    """The exploiter's episode with z ~ q(z | context) of the exploration's final carry: fields [horizon, ...]."""
    k_z, k_ep = jax.random.split(key)
    z = sample_z(k_z, *agent.encoder.belief(carry))
    keep = lambda c, _tok: c  # noqa: E731  (the exploiter's z is fixed for its episode)
    _, out = _episode(env, k_ep, task, carry,
                      lambda k, obs, c: (agent.policy(k, obs, z, deterministic=deterministic)[0], keep))
    return out


def meta_episode(agent: Agent, env: EnvSpec, mode: str, key: jax.Array, task: jax.Array, episodes: int,
                 deterministic: bool = False):
    """Explore then exploit on one task: (exploration fields [K*T, ...], exploitation fields [T, ...]);
    ``deterministic``: both policies act with their mean action (the official meta-test, eval_deterministic)."""
    k_explore, k_exploit = jax.random.split(key)
    carry, explored = explore(agent, env, mode, k_explore, task, episodes, deterministic=deterministic)
    return explored, exploit(agent, env, k_exploit, task, carry, deterministic=deterministic)
