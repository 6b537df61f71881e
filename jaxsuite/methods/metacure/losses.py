"""MetaCURE's losses for one task's sampled data (official ``_take_step_exp`` in rlkit/torch/sac/sac.py); vmap
over the tasks of a meta-batch and average.

Every loss is a function of one parameter tree; ``frozen`` is the same agent with stop-gradient parameters, so a
loss only trains the networks named for it (the official code steps one optimiser per network):

- exploiter SAC with a fixed entropy weight (PEARL / rlkit: rewards times ``reward_scale`` instead of a
  temperature), z ~ q(z | c) by the reparameterisation trick (paper eq. 2-3):
  L_Q  = sum_i E[(Q_i(s,a,z) - (scale r + gamma V_target(s',z)))^2]  (trains Q and the encoder),
  L_KL = kl_lambda E_t[KL(q(z | c_{<t}) || N(0, I))]                  (trains the encoder),
  L_V  = E[(V(s,z) - (min_i Q_i(s,a~pi,z) - log pi(a|s,z)))^2],
  L_pi = E[log pi(a|s,z) - min_i Q_i(s,a,z)] + 1e-3 (E[mean^2] + E[log std^2])  (z not differentiated);
- explorer SAC on r + lambda r_int with the belief b_t = (mu_t, var_t) of its own context prefix as input and the
  next belief b_{t+1} in the target (paper eq. 6-8), the belief not differentiated: ``train.task_losses`` passes
  it stop-gradiented (official ``z_mean.detach(), z_var.detach()``), so none of the explorer's losses, its critic's
  included, trains the encoder;
- the intrinsic reward (paper eq. 5; our README derives its link to the information gain):
  r_int = (r - r_psi(s,a; b_t))^2 - (r - r_oracle(s,a; task))^2
          [+ ||s' - f_psi(s,a; b_t)||^2 / d - ||s' - f_oracle(s,a; task)||^2 / d  when ``dynamics``];
- the predictors by MSE: r_psi(s,a; b_t), r_oracle(s,a; one-hot task) (and f_psi, f_oracle), belief not
  differentiated.

So the encoder learns from L_Q of the exploiter and L_KL only (as in PEARL and the official code); a test checks
that every other loss has exactly zero gradient with respect to the encoder.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsuite.methods.metacure.networks import Agent

POLICY_REG = 1e-3


def gaussian_kl_to_standard(mu: jax.Array, var: jax.Array) -> jax.Array:
    """KL(N(mu, diag var) || N(0, I)), summed over the last axis."""
    return 0.5 * jnp.sum(var + jnp.square(mu) - 1.0 - jnp.log(var), axis=-1)


def _min_q(q1, q2, *inputs) -> jax.Array:
    return jnp.minimum(q1(*inputs), q2(*inputs))[..., 0]


def sac_losses(key, policy, q1, q2, v, frozen_q1, frozen_q2, frozen_v_target, obs, action, reward, next_obs,
               cond, next_cond, *, reward_scale: float, discount: float) -> dict:
    """SAC's Q, V and policy losses (rlkit's, as the official code uses them) for inputs conditioned on ``cond``
    (z for the exploiter, the belief for the explorer; ``next_cond`` in the target). Episodes end only by the time
    limit, so every transition bootstraps. The Q loss differentiates ``cond`` (the exploiter's critic trains the
    encoder through z); a caller whose critic must not train the encoder passes ``cond`` stop-gradiented. The V and
    policy losses never differentiate it."""
    target = jax.lax.stop_gradient(reward_scale * reward + discount * frozen_v_target(next_obs, next_cond)[..., 0])
    q_loss = (jnp.mean(jnp.square(q1(obs, action, cond)[..., 0] - target))
              + jnp.mean(jnp.square(q2(obs, action, cond)[..., 0] - target)))
    cond = jax.lax.stop_gradient(cond)
    new_action, log_pi, mean, log_std = policy(key, obs, cond)
    min_q = _min_q(frozen_q1, frozen_q2, obs, new_action, cond)
    v_loss = jnp.mean(jnp.square(v(obs, cond)[..., 0] - jax.lax.stop_gradient(min_q - log_pi)))
    policy_loss = (jnp.mean(log_pi - min_q)
                   + POLICY_REG * (jnp.mean(jnp.square(mean)) + jnp.mean(jnp.square(log_std))))
    return {"q": q_loss, "v": v_loss, "policy": policy_loss, "q_mean": jnp.mean(min_q), "log_pi": jnp.mean(log_pi)}


def intrinsic_reward(frozen: Agent, obs, action, reward, next_obs, belief, task_onehot) -> jax.Array:
    """r_int of MetaCURE (paper eq. 5, official ``_take_step_exp``): how much worse the belief-conditioned
    prediction of this transition is than the task-aware (oracle) one."""
    r_int = (jnp.square(reward - frozen.reward_belief(obs, action, belief)[..., 0])
             - jnp.square(reward - frozen.reward_oracle(obs, action, task_onehot)[..., 0]))
    if frozen.dynamics:
        r_int += (jnp.mean(jnp.square(next_obs - frozen.next_obs_belief(obs, action, belief)), -1)
                  - jnp.mean(jnp.square(next_obs - frozen.next_obs_oracle(obs, action, task_onehot)), -1))
    return jax.lax.stop_gradient(r_int)


def predictor_losses(agent: Agent, obs, action, reward, next_obs, belief, task_onehot) -> dict:
    """MSE of the belief-conditioned and oracle predictors (belief not differentiated)."""
    belief = jax.lax.stop_gradient(belief)
    out = {"reward_belief": jnp.mean(jnp.square(agent.reward_belief(obs, action, belief)[..., 0] - reward)),
           "reward_oracle": jnp.mean(jnp.square(agent.reward_oracle(obs, action, task_onehot)[..., 0] - reward))}
    if agent.dynamics:
        out["next_obs_belief"] = jnp.mean(jnp.square(agent.next_obs_belief(obs, action, belief) - next_obs))
        out["next_obs_oracle"] = jnp.mean(jnp.square(agent.next_obs_oracle(obs, action, task_onehot) - next_obs))
    return out
