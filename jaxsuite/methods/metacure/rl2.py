"""RL² (Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel 2016, "RL²: Fast Reinforcement Learning via Slow
Reinforcement Learning", arXiv 1611.02779): the recurrent baseline of the MetaCURE paper, here its network, its
rollout over a trial and its losses; ``rl2_train`` has ``init`` / ``train_step`` / ``evaluate``.

RL² (Sec. 2 of the paper: 2.2 the formulation, Fig. 1; 2.3 a GRU policy; 2.4 its optimisation) treats a *trial*
-- several episodes of one task -- as one long episode of a recurrent policy: at step t the GRU reads x_t = (s_t,
a_{t-1}, r_{t-1}, d_{t-1}) (the observation, the previous action, the previous reward and the flag that the previous
step ended an episode; zeros at the start of a trial), and its hidden state is **kept across the episodes of the
trial** and **reset between trials** (tasks). The "slow" outer learner is a policy-gradient method on the trial's
return (TRPO with GAE in the paper). As in ProMP's RL² code, which the MetaCURE repository points to for its
baselines, the outer learner here is PPO with GAE (``ppo_losses``): clipped surrogate (Schulman et
al. 2017, eq. 7), value MSE, Gaussian entropy bonus.

A trial here is MetaCURE's meta-test protocol: ``explore.episodes`` (K) episodes then one more, K + 1 episodes of
the env's horizon on one task. By default every episode's reward counts in the return (RL² as published);
``rl2.explore_reward_weight`` < 1 down-weights the first K episodes' rewards in the *training* return (0: E-RL²,
Stadie et al. 2018, whose return is the last episode's only); the policy always sees the true reward.

Networks: separate actor and critic, each Linear -> GRU -> linear head (a diagonal Gaussian with a learned
state-independent log std for the actor). Actions are sampled unsquashed; the env gets the sample clipped to
[-1, 1] (times ``spec.action_scale``, as the other variants' policies), the log-probability is of the unclipped
sample, and the next step's input carries the clipped action.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsuite.envs.specs import EnvSpec


class RecurrentActorCritic(nnx.Module):
    """pi(a_t | x_{<=t}) = N(mean_t, diag std^2) and V(x_{<=t}), each from its own GRU over the trial's inputs."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, *, rngs: nnx.Rngs, init_log_std: float = 0.0):
        in_dim = input_dim(obs_dim, act_dim)
        self.actor_embed = nnx.Linear(in_dim, hidden, rngs=rngs)
        self.actor_cell = nnx.GRUCell(hidden, hidden, rngs=rngs)
        self.actor_head = nnx.Linear(hidden, act_dim, kernel_init=nnx.initializers.orthogonal(0.01), rngs=rngs)
        self.log_std = nnx.Param(jnp.full((act_dim,), init_log_std, jnp.float32))
        self.critic_embed = nnx.Linear(in_dim, hidden, rngs=rngs)
        self.critic_cell = nnx.GRUCell(hidden, hidden, rngs=rngs)
        self.critic_head = nnx.Linear(hidden, 1, rngs=rngs)
        self.hidden = hidden

    def init_carry(self) -> jax.Array:
        """The hidden state at the start of a trial: zeros, [2 (actor, critic), hidden]."""
        return jnp.zeros((2, self.hidden))

    def step(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(next carry, action mean, value) after reading input ``x``."""
        h_a = self.actor_cell(carry[0], jnp.tanh(self.actor_embed(x)))[0]
        h_c = self.critic_cell(carry[1], jnp.tanh(self.critic_embed(x)))[0]
        return jnp.stack([h_a, h_c]), self.actor_head(h_a), self.critic_head(h_c)[..., 0]

    def unroll(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(means [L, A], values [L]) over one whole trial's inputs [L, D], from the zero carry: what ``step``
        gave online, recomputed for the gradient (the hidden state is reset only at the trial's start)."""
        def one(carry, x):
            carry, mean, value = self.step(carry, x)
            return carry, (mean, value)

        _, (means, values) = jax.lax.scan(one, self.init_carry(), inputs)
        return means, values


def input_dim(obs_dim: int, act_dim: int) -> int:
    return obs_dim + act_dim + 2


def features(obs, prev_action, prev_reward, prev_done) -> jax.Array:
    """x_t = (s_t, a_{t-1}, r_{t-1}, d_{t-1})."""
    return jnp.concatenate([obs, prev_action, jnp.reshape(prev_reward, (1,)), jnp.reshape(prev_done, (1,))], -1)


def gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(u; mean, diag exp(log_std)^2), summed over the last axis."""
    z = (u - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    return jnp.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


def trial(net: RecurrentActorCritic, env: EnvSpec, key: jax.Array, task, episodes: int,
          deterministic: bool = False) -> dict:
    """One trial of ``episodes`` episodes on ``task``, the hidden state carried across them (reset only here, at
    the start): fields [episodes * horizon, ...]: ``input`` x_t, ``carry`` (the hidden state before step t),
    ``raw_action`` (the unclipped sample), ``action`` (clipped), ``log_prob``, ``value``, ``reward``,
    ``success``. ``deterministic``: act with the mean."""
    log_std = net.log_std[...]

    def one_episode(c, k):
        carry, prev_a, prev_r, prev_d = c
        k_reset, k_steps = jax.random.split(k)
        state, obs = env.reset(k_reset, task)

        def one(c2, k2):
            state, obs, carry, prev_a, prev_r, prev_d = c2
            x = features(obs, prev_a, prev_r, prev_d)
            new_carry, mean, value = net.step(carry, x)
            u = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(k2, mean.shape)
            action = jnp.clip(u, -1.0, 1.0)
            state, next_obs, reward, _, info = env.step(state, action * env.action_scale)
            out = {"input": x, "carry": carry, "raw_action": u, "action": action,
                   "log_prob": gaussian_log_prob(u, mean, log_std), "value": value, "reward": reward,
                   "success": info["success"]}
            return (state, next_obs, new_carry, action, reward, jnp.zeros(())), out

        (_, _, carry, a, r, _), out = jax.lax.scan(one, (state, obs, carry, prev_a, prev_r, prev_d),
                                                   jax.random.split(k_steps, env.horizon))
        return (carry, a, r, jnp.ones(())), out  # the next episode's first input has d = 1

    start = (net.init_carry(), jnp.zeros((env.act_dim,)), jnp.zeros(()), jnp.zeros(()))
    _, out = jax.lax.scan(one_episode, start, jax.random.split(key, episodes))
    return jax.tree.map(lambda x: x.reshape(episodes * env.horizon, *x.shape[2:]), out)


def gae(rewards: jax.Array, values: jax.Array, discount: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """(advantages, returns) [L] of one trial by GAE(gamma, lambda); the trial ends after its last step (no
    bootstrap), and episode boundaries inside it do not cut the return (RL²'s trial is one episode)."""
    next_values = jnp.concatenate([values[1:], jnp.zeros((1,))])
    deltas = rewards + discount * next_values - values

    def back(a, d):
        a = d + discount * lam * a
        return a, a

    _, adv = jax.lax.scan(back, jnp.zeros(()), deltas, reverse=True)
    return adv, adv + values


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip: float):
    """PPO's loss -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)], rho = pi / pi_old (Schulman et al. 2017, eq. 7),
    and the fraction of samples where the clip is active."""
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped, clipped = ratio * advantages, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped)), jnp.mean((clipped < unclipped).astype(jnp.float32))


def ppo_losses(net: RecurrentActorCritic, batch: dict, *, clip: float, value_coef: float,
               entropy_coef: float) -> tuple[jax.Array, dict]:
    """(total loss, metrics) of PPO on whole trials ``batch`` [B, L, ...] (``input``, ``raw_action``,
    ``log_prob`` of the acting policy, ``advantages``, ``returns``): the GRUs are unrolled from the zero carry
    over each trial."""
    means, values = jax.vmap(net.unroll)(batch["input"])
    log_std = net.log_std[...]
    log_prob = gaussian_log_prob(batch["raw_action"], means, log_std)
    policy_loss, clip_frac = clipped_surrogate(log_prob, batch["log_prob"], batch["advantages"], clip)
    value_loss = 0.5 * jnp.mean(jnp.square(values - batch["returns"]))
    entropy = gaussian_entropy(log_std)
    total = policy_loss + value_coef * value_loss - entropy_coef * entropy
    approx_kl = jnp.mean(batch["log_prob"] - log_prob)
    return total, {"ppo/policy": policy_loss, "ppo/value": value_loss, "ppo/entropy": entropy,
                   "ppo/clip_fraction": clip_frac, "ppo/approx_kl": approx_kl}
