"""The RL² baseline (``rl2``, Duan et al. 2016) as pure functions: ``init(setup, rng) -> RL2State``,
``train_step(state, batch) -> (state, metrics)`` (one PPO iteration), ``evaluate(state, key, *, tasks,
rollouts) -> metrics`` (the meta-test protocol and metrics of ``train.evaluate``). The network and losses are in
``rl2``.

An iteration: on each training task of ``batch["tasks"]`` (``rl2.trials`` tasks, drawn as the other variants
draw theirs) run one trial of K + 1 episodes with the current policy (vmapped over tasks, the GRU's state reset at
each trial's start), compute GAE advantages over the trial, normalise them over the iteration's trials, then
``rl2.epochs`` epochs of PPO over ``rl2.minibatches`` minibatches of whole trials (Adam after global-norm
clipping, optax). On-policy: nothing is kept between iterations but the parameters and the optimiser.

Budget: an iteration takes ``rl2.trials * (K + 1) * horizon`` env steps; ``iterations_for`` gives the number of
iterations that matches MetaCURE's env steps (``iterations * train.meta_batch`` trials of the same K + 1 episodes).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.train_state import split_module
from jaxsuite.envs import specs
from jaxsuite.methods.metacure import goals, rl2


@dataclasses.dataclass(frozen=True)
class RL2Setup:
    """The static description of an RL² run (part of the compiled graph)."""
    env: str
    explore_episodes: int  # K: a trial is K + 1 episodes, as MetaCURE's explore-then-exploit
    hidden: int
    lr: float
    discount: float
    gae_lambda: float
    clip: float
    epochs: int
    minibatches: int
    value_coef: float
    entropy_coef: float
    max_grad_norm: float
    init_log_std: float
    explore_reward_weight: float  # weight of the first K episodes' rewards in the training return (1: RL²)
    deterministic_eval: bool
    val_tasks: int = 10
    val_seed: int = 0
    horizon: int = 0  # steps per episode (config env.horizon; 0: the env's own)

    @property
    def spec(self) -> specs.EnvSpec:
        """The env with ``train_tasks`` the training part (``goals``); ``eval_tasks`` the test set."""
        return goals.training_spec(self.env, self.val_tasks, self.val_seed, self.horizon)

    @property
    def episodes(self) -> int:
        return self.explore_episodes + 1


def make_setup(cfg) -> RL2Setup:
    r = cfg.rl2
    setup = RL2Setup(env=cfg.env.name, explore_episodes=cfg.explore.episodes, hidden=r.hidden, lr=r.lr,
                     discount=r.discount, gae_lambda=r.gae_lambda, clip=r.clip, epochs=r.epochs,
                     minibatches=r.minibatches, value_coef=r.value_coef, entropy_coef=r.entropy_coef,
                     max_grad_norm=r.max_grad_norm, init_log_std=r.init_log_std,
                     explore_reward_weight=float(r.explore_reward_weight),
                     deterministic_eval=bool(r.deterministic_eval), val_tasks=cfg.val.tasks, val_seed=cfg.val.seed,
                     horizon=cfg.env.horizon)
    if r.trials > setup.spec.num_train:
        raise ConfigError(f"rl2.trials ({r.trials}) exceeds the {setup.spec.num_train} training tasks of "
                          f"{setup.env} (val.tasks={setup.val_tasks} are held out)")
    if r.trials % r.minibatches:
        raise ConfigError(f"rl2.trials ({r.trials}) must be a multiple of rl2.minibatches ({r.minibatches})")
    iterations_for(cfg)
    return setup


def iterations_for(cfg) -> int:
    """PPO iterations with MetaCURE's env-step budget: MetaCURE collects ``train.meta_batch`` trials of K + 1
    episodes per iteration for ``iterations`` iterations; RL² collects ``rl2.trials`` of the same trials."""
    trials = cfg.iterations * cfg.train.meta_batch
    if trials % cfg.rl2.trials:
        raise ConfigError(f"rl2.trials ({cfg.rl2.trials}) must divide iterations x train.meta_batch ({trials}), "
                          "so that rl2 takes as many env steps as MetaCURE")
    return trials // cfg.rl2.trials


@struct.dataclass
class RL2State:
    step: jax.Array
    params: dict
    opt_state: object
    rng: jax.Array
    graphdef: object = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    setup: RL2Setup = struct.field(pytree_node=False)

    def net(self, params=None) -> rl2.RecurrentActorCritic:
        return nnx.merge(self.graphdef, self.params if params is None else params)


def init(setup: RL2Setup, rng: jax.Array) -> RL2State:
    spec = setup.spec
    k_model, k_run = jax.random.split(rng)
    net = rl2.RecurrentActorCritic(spec.obs_dim, spec.act_dim, setup.hidden, init_log_std=setup.init_log_std,
                                   rngs=nnx.Rngs(k_model))
    graphdef, params, rest = split_module(net)
    if jax.tree.leaves(rest):
        raise ValueError("the RL² network has non-parameter state; RL2State carries parameters only")
    tx = optax.chain(optax.clip_by_global_norm(setup.max_grad_norm), optax.adam(setup.lr))
    return RL2State(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=k_run,
                    graphdef=graphdef, tx=tx, setup=setup)


def collect(state: RL2State, tasks: jax.Array, key: jax.Array, task_params, deterministic: bool = False) -> dict:
    """One trial per task of ``tasks`` (indices into ``task_params``): fields [M, (K+1) * T, ...]."""
    s = state.setup
    run = functools.partial(rl2.trial, state.net(), s.spec, episodes=s.episodes, deterministic=deterministic)
    return jax.vmap(run)(jax.random.split(key, tasks.shape[0]), jax.tree.map(lambda x: x[tasks], task_params))


def training_rewards(setup: RL2Setup, reward: jax.Array) -> jax.Array:
    """The rewards [..., (K+1) T] the return is made of: the first K episodes' times ``explore_reward_weight``."""
    horizon = reward.shape[-1] // setup.episodes
    weight = jnp.where(jnp.arange(reward.shape[-1]) < setup.explore_episodes * horizon,
                       setup.explore_reward_weight, 1.0)
    return reward * weight


def train_step(state: RL2State, batch: dict) -> tuple[RL2State, dict]:
    """One PPO iteration on the trials of ``batch["tasks"]`` [rl2.trials] (see the module doc)."""
    s = state.setup
    key = jax.random.fold_in(state.rng, state.step)
    k_collect, k_epochs = jax.random.split(key)
    tasks = batch["tasks"]
    traj = collect(state, tasks, k_collect, jax.tree.map(jnp.asarray, s.spec.train_tasks))
    adv, returns = jax.vmap(functools.partial(rl2.gae, discount=s.discount, lam=s.gae_lambda))(
        training_rewards(s, traj["reward"]), traj["value"])
    adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    data = {"input": traj["input"], "raw_action": traj["raw_action"], "log_prob": traj["log_prob"],
            "advantages": jax.lax.stop_gradient(adv), "returns": jax.lax.stop_gradient(returns)}
    n = tasks.shape[0]
    loss = functools.partial(rl2.ppo_losses, clip=s.clip, value_coef=s.value_coef, entropy_coef=s.entropy_coef)

    def minibatch(carry, idx):
        params, opt_state = carry
        grads, metrics = jax.grad(lambda p: loss(state.net(p), jax.tree.map(lambda x: x[idx], data)),
                                  has_aux=True)(params)
        updates, opt_state = state.tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, k):
        order = jax.random.permutation(k, n).reshape(s.minibatches, n // s.minibatches)
        return jax.lax.scan(minibatch, carry, order)

    (params, opt_state), metrics = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                jax.random.split(k_epochs, s.epochs))
    metrics = jax.tree.map(jnp.mean, metrics)
    horizon = s.spec.horizon
    last = traj["success"][:, -horizon:]
    metrics["train/exploit_success"] = jnp.mean(jnp.any(last, axis=-1))
    metrics["train/exploit_return"] = jnp.mean(jnp.sum(traj["reward"][:, -horizon:], axis=-1))
    metrics["train/trial_return"] = jnp.mean(jnp.sum(traj["reward"], axis=-1))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def evaluate(state: RL2State, key: jax.Array, *, tasks, rollouts: int) -> dict:
    """Meta-test on ``tasks`` [n, ...], ``rollouts`` trials each, as ``train.evaluate`` for the other variants:
    the first K episodes are the exploration, the last the exploitation episode. ``eval_success``: the fraction
    of last episodes that enter the goal region; ``eval_return``: their mean return; ``explore_success``: the
    fraction of trials whose first K episodes entered it; ``exploit_success_when_explored``: the last episode's
    success over those trials. Actions are sampled (RL²'s policy explores through them) unless
    ``rl2.deterministic_eval``."""
    s = state.setup
    flat = jax.tree.map(lambda x: jnp.repeat(x, rollouts, axis=0), tasks)
    n = jax.tree.leaves(flat)[0].shape[0]
    traj = collect(state, jnp.arange(n), key, flat, deterministic=s.deterministic_eval)
    horizon = s.spec.horizon
    found = jnp.any(traj["success"][:, :-horizon], -1)
    succeeded = jnp.any(traj["success"][:, -horizon:], -1)
    return {"eval_success": jnp.mean(succeeded),
            "eval_return": jnp.mean(jnp.sum(traj["reward"][:, -horizon:], -1)),
            "explore_success": jnp.mean(found),
            "exploit_success_when_explored": jnp.sum(found & succeeded) / jnp.maximum(jnp.sum(found), 1)}
