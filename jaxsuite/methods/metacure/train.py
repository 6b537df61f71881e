"""MetaCURE, PEARL and their ablations as pure functions: ``init(setup, rng) -> MetaState``,
``train_step(state, batch) -> (state, metrics)`` (one meta-training iteration), ``evaluate(state, keys) ->
metrics`` (the meta-test on held-out tasks).

An iteration (official ``rl_algorithm.train``): for each training task in ``batch["tasks"]`` (the meta-batch, sharded
over the mesh's ``data`` axis) run the exploration phase and one exploiter episode with the current networks (vmapped
over tasks), add the exploration to the context buffer and the exploiter's episode to the exploiter's buffer, then take
``grad_steps`` gradient steps (``lax.scan``). A gradient step draws ``grad_meta_batch`` tasks that have data (with
replacement, as the official code) and, per task, one exploration context (its beliefs over every prefix),
``batch_size`` explorer transitions from that context (paired with their own prefix beliefs b_t, b_{t+1}) and
``batch_size`` exploiter transitions (half from each buffer) paired with z ~ the belief of a random prefix of the
context (the official pairing: an RL sample's z comes from a random-length prefix of a separate context of the same
task). Losses: ``losses``; the encoder learns from the exploiter's critic and the KL only (the explorer and the
predictors read the belief stop-gradiented, as the official code detaches it). Every network trains with one Adam over
the summed losses (each loss reaches only its own networks); the target V networks are frozen in the optimiser
(``optax.multi_transform``) and follow their online networks by Polyak averaging.
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
from jaxsuite.methods.metacure import buffers, goals, losses, rollout
from jaxsuite.methods.metacure.networks import TARGETS, Agent, beliefs, token


@dataclasses.dataclass(frozen=True)
class Setup:
    """The static description of a run (part of the compiled graph)."""
    env: str
    mode: str  # exploration: "explorer" (MetaCURE), "posterior_sampling" (PEARL) or "random"
    encoder: str  # "snail", "gru" or "product_of_gaussians"
    explore_episodes: int  # K: exploration episodes before the exploiter's
    latent: int
    hidden: tuple[int, ...]
    encoder_hidden: int
    snail: tuple[int, ...]  # the SNAIL encoder's (filters, key size, value size, TC + attention stages)
    intrinsic_weight: float  # lambda
    dynamics: bool  # the next-state term in r_int
    lr: float
    reward_scale: float
    discount: float
    tau: float
    kl_lambda: float
    prediction_scale: float  # weight of the predictors' MSE (official prediction_reward_scale)
    grad_steps: int
    grad_meta_batch: int
    batch_size: int
    context_capacity: int  # exploration contexts kept per task
    exploit_capacity: int  # exploiter episodes kept per task
    val_tasks: int = 10  # official training tasks held out as the validation set (``goals``)
    val_seed: int = 0
    horizon: int = 0  # steps per episode (config env.horizon; 0: the env's own)

    @property
    def spec(self) -> specs.EnvSpec:
        """The env with ``train_tasks`` the training part only (``goals.training_spec``, cached); ``eval_tasks``
        is the test set."""
        return goals.training_spec(self.env, self.val_tasks, self.val_seed, self.horizon)


def make_setup(cfg) -> Setup:
    mode = cfg.explore.mode
    if mode not in rollout.MODES:
        raise ConfigError(f"explore.mode {mode!r}: expected one of {rollout.MODES}")
    setup = Setup(env=cfg.env.name, mode=mode, encoder=cfg.model.encoder, explore_episodes=cfg.explore.episodes,
                  latent=cfg.model.latent, hidden=tuple(cfg.model.hidden), encoder_hidden=cfg.model.encoder_hidden,
                  snail=tuple(cfg.model.snail), intrinsic_weight=float(cfg.intrinsic.weight),
                  dynamics=bool(cfg.intrinsic.dynamics),
                  lr=cfg.train.lr, reward_scale=cfg.train.reward_scale, discount=cfg.train.discount,
                  tau=cfg.train.tau, kl_lambda=cfg.train.kl_lambda,
                  prediction_scale=cfg.train.prediction_scale, grad_steps=cfg.train.grad_steps,
                  grad_meta_batch=cfg.train.grad_meta_batch, batch_size=cfg.train.batch_size,
                  context_capacity=cfg.buffer.contexts, exploit_capacity=cfg.buffer.exploit_episodes,
                  val_tasks=cfg.val.tasks, val_seed=cfg.val.seed,
                  horizon=cfg.env.horizon)
    if cfg.train.meta_batch > setup.spec.num_train:
        raise ConfigError(f"train.meta_batch ({cfg.train.meta_batch}) exceeds the {setup.spec.num_train} "
                          f"training tasks of {setup.env} (val.tasks={setup.val_tasks} are held out)")
    return setup


@struct.dataclass
class MetaState:
    step: jax.Array
    params: dict
    opt_state: object
    rng: jax.Array
    buffers: dict  # {"context": exploration contexts, "exploit": exploiter episodes} (``buffers``)
    graphdef: object = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    setup: Setup = struct.field(pytree_node=False)

    def agent(self, params=None) -> Agent:
        return nnx.merge(self.graphdef, self.params if params is None else params)


def _optimizer(lr: float, params: dict) -> optax.GradientTransformation:
    labels = {name: jax.tree.map(lambda _: "frozen" if name in TARGETS else "adam", sub)  # noqa: B023 -- called within this iteration
              for name, sub in params.items()}
    return optax.multi_transform({"adam": optax.adam(lr), "frozen": optax.set_to_zero()}, labels)


def init(setup: Setup, rng: jax.Array) -> MetaState:
    spec = setup.spec
    k_model, k_run = jax.random.split(rng)
    agent = Agent(obs_dim=spec.obs_dim, act_dim=spec.act_dim, latent=setup.latent,
                  num_train_tasks=spec.num_train, hidden=setup.hidden, encoder=setup.encoder,
                  encoder_hidden=setup.encoder_hidden, context_len=setup.explore_episodes * spec.horizon,
                  dynamics=setup.dynamics, snail=setup.snail, rngs=nnx.Rngs(k_model))
    graphdef, params, rest = split_module(agent)
    if jax.tree.leaves(rest):
        raise ValueError("the agent has non-parameter state; MetaState carries parameters only")
    params = {**params, **{target: params[online] for target, online in TARGETS.items()}}
    tx = _optimizer(setup.lr, params)
    n = spec.num_train
    length = setup.explore_episodes * spec.horizon
    bufs = {"context": buffers.empty(n, setup.context_capacity, length, spec.obs_dim, spec.act_dim),
            "exploit": buffers.empty(n, setup.exploit_capacity, spec.horizon, spec.obs_dim, spec.act_dim)}
    return MetaState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=k_run,
                     buffers=bufs, graphdef=graphdef, tx=tx, setup=setup)


def collect(state: MetaState, tasks: jax.Array, key: jax.Array, task_params):
    """Explore then exploit on each task of ``tasks`` (indices into ``task_params``, an array or a dict of arrays
    with the tasks on axis 0): (exploration fields
    [M, K*T, ...], exploitation fields [M, T, ...])."""
    s = state.setup
    agent = state.agent()
    run = functools.partial(rollout.meta_episode, agent, s.spec, s.mode, episodes=s.explore_episodes)
    return jax.vmap(run)(jax.random.split(key, tasks.shape[0]), jax.tree.map(lambda x: x[tasks], task_params))


def task_losses(setup: Setup, agent: Agent, frozen: Agent, key: jax.Array, context: dict, explore: dict,
                exploit: dict, exploit_prefix: jax.Array, explore_steps: jax.Array, onehot: jax.Array) -> dict:
    """The losses of one task: ``context`` the exploration episode [L, ...] the beliefs are computed over,
    ``explore`` its transitions at ``explore_steps`` [B], ``exploit`` exploiter transitions [B] paired with the
    beliefs of prefixes ``exploit_prefix`` [B]."""
    k_z, k_pi, k_exp = jax.random.split(key, 3)
    mu, var = beliefs(agent.encoder, token(context["obs"], context["action"], context["reward"],
                                           context["next_obs"]))
    out = {"kl": setup.kl_lambda * jnp.mean(losses.gaussian_kl_to_standard(mu, var))}
    z = rollout.sample_z(k_z, mu[exploit_prefix], var[exploit_prefix])
    sac = losses.sac_losses(k_pi, agent.policy, agent.q1, agent.q2, agent.v, frozen.q1, frozen.q2, frozen.v_target,
                            exploit["obs"], exploit["action"], exploit["reward"], exploit["next_obs"], z, z,
                            reward_scale=setup.reward_scale, discount=setup.discount)
    out.update({f"exploiter/{k}": v for k, v in sac.items()})
    # the explorer's networks and the predictors read the belief but do not train the encoder (official
    # _take_step_exp: z_mean.detach(), z_var.detach() in the explorer's Q, V, policy and the belief predictors)
    belief = jax.lax.stop_gradient(jnp.concatenate([mu, var], -1))
    b_t, b_next = belief[explore_steps], belief[explore_steps + 1]
    onehots = jnp.broadcast_to(onehot, (explore_steps.shape[0], onehot.shape[0]))
    args = (explore["obs"], explore["action"], explore["reward"], explore["next_obs"])
    if setup.mode == "explorer":  # the predictors exist for r_int only
        out.update({f"predictor/{k}": setup.prediction_scale * v
                    for k, v in losses.predictor_losses(agent, *args, b_t, onehots).items()})
        r_int = losses.intrinsic_reward(frozen, *args, b_t, onehots)
        reward = explore["reward"] + setup.intrinsic_weight * r_int
        sac = losses.sac_losses(k_exp, agent.exp_policy, agent.exp_q1, agent.exp_q2, agent.exp_v, frozen.exp_q1,
                                frozen.exp_q2, frozen.exp_v_target, explore["obs"], explore["action"], reward,
                                explore["next_obs"], b_t, b_next, reward_scale=setup.reward_scale,
                                discount=setup.discount)
        out.update({f"explorer/{k}": v for k, v in sac.items()})
        out["explorer/r_int"] = jnp.mean(r_int)
    return out


TRAINED = ("kl", "exploiter/q", "exploiter/v", "exploiter/policy", "explorer/q", "explorer/v", "explorer/policy",
           "predictor/reward_belief", "predictor/reward_oracle", "predictor/next_obs_belief",
           "predictor/next_obs_oracle")


def sample_batch(setup: Setup, bufs: dict, key: jax.Array) -> dict:
    """One gradient step's data: ``grad_meta_batch`` tasks with data and their samples (see the module doc)."""
    n = bufs["context"]["count"].shape[0]
    k_task, k_ctx, k_steps, k_a, k_b, k_prefix = jax.random.split(key, 6)
    has_data = (bufs["context"]["count"] > 0).astype(jnp.float32)
    tasks = jax.random.choice(k_task, n, (setup.grad_meta_batch,), p=has_data / has_data.sum())  # official: with
    # replacement (np.random.choice(train_tasks, meta_batch))
    b, m = setup.batch_size, setup.grad_meta_batch
    length = bufs["context"]["obs"].shape[2]
    context = jax.vmap(buffers.episode, (None, 0, 0))(bufs["context"], tasks, jax.random.split(k_ctx, m))
    steps = jax.random.randint(k_steps, (m, b), 0, length)
    explore = jax.tree.map(lambda x: jax.vmap(lambda e, t: e[t])(x, steps), context)
    half = b // 2
    from_exploit = jax.vmap(buffers.transitions, (None, 0, 0, None))(bufs["exploit"], tasks,
                                                                      jax.random.split(k_a, m), half)
    from_context = jax.vmap(buffers.transitions, (None, 0, 0, None))(bufs["context"], tasks,
                                                                     jax.random.split(k_b, m), b - half)
    exploit = jax.tree.map(lambda x, y: jnp.concatenate([x, y], 1), from_exploit, from_context)
    return {"tasks": tasks, "context": context, "explore": explore, "explore_steps": steps, "exploit": exploit,
            "exploit_prefix": jax.random.randint(k_prefix, (m, b), 0, length + 1)}


def batch_losses(state: MetaState, params: dict, data: dict, key: jax.Array) -> dict:
    """Every loss and metric of one gradient step's ``data`` (``sample_batch``) as a function of ``params``, averaged
    over its tasks; ``frozen`` (the stop-gradient agent) carries the networks a loss reads but must not train."""
    s = state.setup
    agent, frozen = state.agent(params), state.agent(jax.lax.stop_gradient(params))
    onehot = jax.nn.one_hot(data["tasks"], s.spec.num_train)
    per_task = jax.vmap(functools.partial(task_losses, s, agent, frozen))(
        jax.random.split(key, s.grad_meta_batch), data["context"], data["explore"], data["exploit"],
        data["exploit_prefix"], data["explore_steps"], onehot)
    return jax.tree.map(jnp.mean, per_task)


def gradient_step(state: MetaState, key: jax.Array) -> tuple[MetaState, dict]:
    s = state.setup
    k_batch, k_loss = jax.random.split(key)
    data = sample_batch(s, state.buffers, k_batch)

    def loss_fn(params):
        metrics = batch_losses(state, params, data, k_loss)
        return sum(v for k, v in metrics.items() if k in TRAINED), metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    params = {**params, **{t: optax.incremental_update(params[o], params[t], s.tau) for t, o in TARGETS.items()}}
    return state.replace(params=params, opt_state=opt_state), metrics


def train_step(state: MetaState, batch: dict) -> tuple[MetaState, dict]:
    """One iteration: collect on ``batch["tasks"]`` [M] (distinct training-task indices), then ``grad_steps``
    gradient steps."""
    s = state.setup
    key = jax.random.fold_in(state.rng, state.step)
    k_collect, k_grad = jax.random.split(key)
    tasks = batch["tasks"]
    explored, exploited = collect(state, tasks, k_collect, jax.tree.map(jnp.asarray, s.spec.train_tasks))
    bufs = {"context": buffers.add(state.buffers["context"], tasks, explored),
            "exploit": buffers.add(state.buffers["exploit"], tasks, exploited)}
    state = state.replace(buffers=bufs)
    state, metrics = jax.lax.scan(gradient_step, state, jax.random.split(k_grad, s.grad_steps))
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["train/exploit_success"] = jnp.mean(jnp.any(exploited["success"], axis=-1))
    metrics["train/exploit_return"] = jnp.mean(jnp.sum(exploited["reward"], axis=-1))
    return state.replace(step=state.step + 1), metrics


def evaluate(state: MetaState, key: jax.Array, *, tasks, rollouts: int) -> dict:
    """Meta-test on ``tasks`` [n, ...] (task parameters, e.g. the held-out goals; an array or a dict of arrays),
    ``rollouts`` times each:
    explore K episodes, then the exploiter acts with z from the final belief, both policies with their mean action
    (official eval_deterministic; z and the env's start stay random). ``eval_success``:
    the fraction of exploiter episodes that enter the goal region; ``eval_return``: their mean return;
    ``explore_success``: the fraction of exploration phases that entered it; ``exploit_success_when_explored``:
    the exploiter's success over the rollouts whose exploration entered the goal region (how well the belief carries
    what exploration found to the exploiter; 0 when no exploration found its goal), which separates an explorer that
    does not find the goal from a belief or exploiter that does not use what it found."""
    s = state.setup
    agent = state.agent()
    run = functools.partial(rollout.meta_episode, agent, s.spec, s.mode, episodes=s.explore_episodes,
                            deterministic=True)
    flat = jax.tree.map(lambda x: jnp.repeat(x, rollouts, axis=0), tasks)
    n = jax.tree.leaves(flat)[0].shape[0]
    explored, exploited = jax.vmap(run)(jax.random.split(key, n), flat)
    found, succeeded = jnp.any(explored["success"], -1), jnp.any(exploited["success"], -1)
    return {"eval_success": jnp.mean(succeeded),
            "eval_return": jnp.mean(jnp.sum(exploited["reward"], -1)),
            "explore_success": jnp.mean(found),
            "exploit_success_when_explored": jnp.sum(found & succeeded) / jnp.maximum(jnp.sum(found), 1)}
