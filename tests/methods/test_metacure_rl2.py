"""MetaCURE's RL² baseline and its task sets: the GRU's hidden state persists across the episodes of a trial and is
reset at each trial's start, the online pass equals the unroll the gradient reads, GAE and PPO's clipped surrogate
against their definitions, PPO decreasing its loss on a toy batch, the same env-step budget as MetaCURE, the
validation / test goals disjoint and fixed given the config, the test goals read only at the end, the PPO step
sharded over the mesh, and rl2 through run_one."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.runner import run_one
from jaxsuite.envs import specs
from jaxsuite.methods.metacure import experiment, goals, rl2, rl2_train
from tests.helpers import assert_sharded_step_equals_single_device_step

TINY = ["model.hidden=(16,16)", "model.encoder_hidden=8", "model.latent=2", "explore.episodes=2",
        "train.meta_batch=4", "train.grad_meta_batch=4", "train.batch_size=8", "train.grad_steps=2",
        "buffer.contexts=3", "buffer.exploit_episodes=3", "iterations=4", "checkpoint_every=2", "log_every=1",
        "eval.rollouts=1", "rl2.trials=4", "rl2.minibatches=2", "rl2.hidden=8"]


def tiny(*extra):
    return experiment.variant_config(load_config("metacure", "quick", [*TINY, *extra]), "rl2")


@pytest.fixture(scope="module")
def state():
    return jax.jit(rl2_train.init, static_argnums=0)(rl2_train.make_setup(tiny()), jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def trials(state):
    """Two trials (K + 1 = 3 episodes each) on two training tasks, sampled actions."""
    train_tasks = jnp.asarray(state.setup.spec.train_tasks)
    return jax.jit(lambda s: rl2_train.collect(s, jnp.array([0, 5]), jax.random.PRNGKey(1), train_tasks))(state)


def test_hidden_state_persists_across_episodes_and_resets_between_trials(state, trials):
    net, horizon = state.net(), state.setup.spec.horizon
    episodes = state.setup.episodes
    assert trials["carry"].shape == (2, episodes * horizon, 2, state.setup.hidden)
    for i in range(2):
        carry, inputs = trials["carry"][i], trials["input"][i]
        # each trial starts from the zero state: reset between trials (tasks)
        np.testing.assert_array_equal(carry[0], 0.0)
        np.testing.assert_array_equal(inputs[0, -(state.setup.spec.act_dim + 2):], 0.0)  # no previous step
        for e in range(1, episodes):
            t = e * horizon
            # kept across the episode boundary: the state entering episode e is the previous step's output
            assert float(jnp.max(jnp.abs(carry[t]))) > 0
            np.testing.assert_allclose(net.step(carry[t - 1], inputs[t - 1])[0], carry[t], rtol=1e-5, atol=1e-6)
            # x_t = (s_t, a_{t-1}, r_{t-1}, d_{t-1}): the first step of an episode sees the last step's action and
            # reward with d = 1; other steps d = 0
            np.testing.assert_allclose(inputs[t, -1], 1.0)
            np.testing.assert_allclose(inputs[t, -2], trials["reward"][i, t - 1])
            np.testing.assert_allclose(inputs[t, 2:4], trials["action"][i, t - 1])
        np.testing.assert_array_equal(np.asarray(inputs[:, -1]).nonzero()[0], np.arange(1, episodes) * horizon)
    # what an episode's reward said changes the actions and values of the next episode (the state carries it
    # over the boundary), not those before it
    inputs, t = trials["input"][0], horizon - 2
    means, values = net.unroll(inputs)
    changed, changed_values = net.unroll(inputs.at[t, -2].add(1.0))
    np.testing.assert_array_equal(changed[:t], means[:t])
    assert float(jnp.max(jnp.abs(changed[horizon:horizon + 4] - means[horizon:horizon + 4]))) > 1e-6
    assert float(jnp.max(jnp.abs(changed_values[horizon:horizon + 4] - values[horizon:horizon + 4]))) > 1e-4


def test_the_gradient_reads_what_the_policy_acted_with(state, trials):
    """The unroll from the zero state (PPO's recomputation) gives the acting pass's values and log-probs: the ratio
    of the first PPO minibatch is exactly 1."""
    net = state.net()
    means, values = jax.vmap(net.unroll)(trials["input"])
    np.testing.assert_allclose(values, trials["value"], rtol=1e-5, atol=1e-5)
    log_prob = rl2.gaussian_log_prob(trials["raw_action"], means, net.log_std[...])
    np.testing.assert_allclose(log_prob, trials["log_prob"], rtol=1e-5, atol=1e-5)


def test_gae_against_its_definition():
    r, v = jnp.array([0.0, 1.0, 0.5, 2.0]), jnp.array([0.3, -0.2, 0.7, 1.1])
    adv, ret = rl2.gae(r, v, 0.9, 1.0)  # lambda 1: discounted return to the trial's end minus the value
    want = [sum(0.9 ** (k - t) * float(r[k]) for k in range(t, 4)) for t in range(4)]
    np.testing.assert_allclose(ret, want, rtol=1e-5)
    np.testing.assert_allclose(adv, np.asarray(want) - np.asarray(v), rtol=1e-5, atol=1e-6)
    adv0, _ = rl2.gae(r, v, 0.9, 0.0)  # lambda 0: the one-step TD error, no bootstrap after the last step
    np.testing.assert_allclose(adv0, r + 0.9 * jnp.append(v[1:], 0.0) - v, rtol=1e-5, atol=1e-6)


def test_clipped_surrogate_stops_the_gradient_outside_the_trust_region():
    """d loss / d log pi is -rho A / N inside the clip range or where the clip would not bind, and 0 where rho has
    left [1 - eps, 1 + eps] in the direction that improves the objective (Schulman et al. 2017, eq. 7)."""
    eps = 0.2
    ratio = jnp.array([1.0, 1.1, 1.5, 1.5, 0.5, 0.5])
    adv = jnp.array([1.0, -2.0, 1.0, -1.0, -1.0, 1.0])
    old = jnp.zeros(6)
    loss, frac = rl2.clipped_surrogate(jnp.log(ratio), old, adv, eps)
    grad = jax.grad(lambda lp: rl2.clipped_surrogate(lp, old, adv, eps)[0])(jnp.log(ratio))
    clipped = np.array([False, False, True, False, True, False])
    want = np.where(clipped, 0.0, -np.asarray(ratio * adv) / 6)
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(frac, clipped.mean())
    np.testing.assert_allclose(loss, -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv)),
                               rtol=1e-6)


def test_ppo_decreases_its_loss_on_a_toy_batch(state, trials):
    """Adam on PPO's loss over a fixed batch (the first episode of two trials: a trial's prefix, still unrolled
    from the zero state) with fixed advantages: the surrogate falls, the clip starts to bind and the policy moves
    away from the acting one (approx KL > 0)."""
    first_episode = jax.tree.map(lambda x: x[:, :state.setup.spec.horizon], trials)
    adv = jax.random.normal(jax.random.PRNGKey(2), first_episode["reward"].shape)
    batch = {"input": first_episode["input"], "raw_action": first_episode["raw_action"],
             "log_prob": first_episode["log_prob"], "advantages": adv, "returns": first_episode["reward"] + 1.0}
    tx = optax.adam(3e-3)

    def loss(params):
        return rl2.ppo_losses(state.net(params), batch, clip=0.2, value_coef=0.5, entropy_coef=0.0)

    @jax.jit
    def step(params, opt_state):
        (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    params, opt_state = state.params, tx.init(state.params)
    history = []
    for _ in range(30):
        params, opt_state, metrics = step(params, opt_state)
        history.append(jax.tree.map(float, metrics))
    first, last = history[0], history[-1]
    assert abs(first["ppo/approx_kl"]) < 1e-5 and first["ppo/clip_fraction"] == 0.0  # ratio 1 at the start
    assert last["ppo/policy"] < first["ppo/policy"] - 0.02
    assert last["ppo/value"] < first["ppo/value"]
    assert last["ppo/clip_fraction"] > 0.0 and last["ppo/approx_kl"] > 0.0


def test_rl2_gets_metacures_env_step_budget():
    quick = load_config("metacure", "quick")
    cfg = experiment.variant_config(quick, "rl2")
    spec = specs.get(cfg.env.name)
    trial = (cfg.explore.episodes + 1) * spec.horizon  # MetaCURE's explore + exploit steps on a task
    metacure_steps = cfg.iterations * cfg.train.meta_batch * trial
    assert rl2_train.iterations_for(cfg) * cfg.rl2.trials * trial == metacure_steps
    assert rl2_train.make_setup(cfg).episodes * spec.horizon == trial
    with pytest.raises(ConfigError, match="rl2.trials"):
        rl2_train.iterations_for(experiment.variant_config(load_config("metacure", "quick", ["rl2.trials=7"]),
                                                           "rl2"))


def _rows(tasks) -> set:
    return {tuple(np.round(np.ravel(row), 6)) for row in np.asarray(tasks)}


@pytest.mark.parametrize("env", ["sparse_point_robot", "cheetah_vel_sparse"])
def test_validation_and_test_goals_are_disjoint_and_fixed_by_the_config(env):
    spec = specs.get(env)
    train_t = goals.training_spec(env, 10, 0).train_tasks
    val, test = goals.validation_tasks(env, 10, 0), goals.reported_tasks(env)
    assert len(val) == 10 and len(train_t) == spec.num_train - 10
    np.testing.assert_array_equal(test, spec.eval_tasks)  # the reported goals are the official held-out ones
    train_rows, val_rows, test_rows = _rows(train_t), _rows(val), _rows(test)
    assert len(val_rows) == 10 and not (val_rows & test_rows) and not (val_rows & train_rows)
    assert not (train_rows & test_rows)
    assert train_rows | val_rows == _rows(spec.train_tasks)  # a split of the official training list
    # fixed given the config: the same in a fresh computation, and the same for every variant
    t, v = goals.split_indices(spec.num_train, 10, 0)
    np.testing.assert_array_equal(goals.split_indices(spec.num_train, 10, 0)[1], v)
    assert not set(t) & set(v) and len(set(t) | set(v)) == spec.num_train
    assert not np.array_equal(goals.split_indices(spec.num_train, 10, 1)[1], v)  # val.seed changes it
    quick = load_config("metacure", "quick", ["env.name=" + env])
    sets = [experiment.task_sets(experiment.variant_config(quick, name)) for name in experiment.VARIANTS]
    for other in sets[1:]:
        for part in ("val", "test"):
            np.testing.assert_array_equal(other[part], sets[0][part])
    np.testing.assert_array_equal(sets[0]["val"], val)
    np.testing.assert_array_equal(sets[0]["test"], test)


def test_training_never_sees_the_validation_goals():
    from jaxsuite.methods.metacure import train
    cfg = load_config("metacure", "quick")
    for setup in (train.make_setup(cfg), rl2_train.make_setup(experiment.variant_config(cfg, "rl2"))):
        assert not _rows(setup.spec.train_tasks) & _rows(goals.validation_tasks(cfg.env.name, 10, 0))
        assert setup.spec.num_train == 30
    with pytest.raises(ConfigError, match="val.tasks"):
        train.make_setup(load_config("metacure", "quick", ["val.tasks=40"]))


def test_the_step_returns_the_state_it_takes(state):
    """Same shapes, dtypes and weak types out as in: fit's jitted step compiles once (a weakly typed log std from
    init once cost a second compilation)."""
    batch = experiment.task_batches(state.setup.spec.num_train, 4, seed=0)(0)
    out = jax.eval_shape(rl2_train.train_step, state, batch)[0]
    aval = lambda x: (x.shape, x.dtype, getattr(x, "weak_type", False))  # noqa: E731
    assert jax.tree.map(aval, out) == jax.tree.map(lambda x: aval(jax.typeof(x)), state)


@pytest.mark.slow
def test_sharded_rl2_step_equals_single_device(state):
    """(slow: two compilations of the PPO step, about 40 s on a loaded 2-core machine)"""
    batch = experiment.task_batches(state.setup.spec.num_train, 4, seed=1)(0)
    assert_sharded_step_equals_single_device_step(rl2_train.train_step, state, batch, rtol=2e-4, atol=1e-5)


@pytest.mark.slow
def test_rl2_runs_through_run_one_and_reads_the_test_goals_at_the_end_only(tmp_path):
    """rl2 end to end (``reproduce``'s path) with a validation evaluation every 2 of its 4 iterations: the
    evaluation before the end has validation metrics only, the final one both."""
    cfg = load_config("metacure", "quick", [*TINY, "eval_every=2"])
    metrics = run_one("metacure", cfg, "rl2", 0, tmp_path, progress=False)
    for prefix in ("", "val_"):
        assert 0.0 <= metrics[f"{prefix}eval_success"] <= 1.0 and np.isfinite(metrics[f"{prefix}eval_return"])
        assert 0.0 <= metrics[f"{prefix}explore_success"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(k.startswith("val_") for k in evals[0] if k.endswith("success"))
    assert "eval_success" in evals[1] and "val_eval_success" in evals[1]
    train_steps = [r for r in records if r["split"] == "train"]
    assert len(train_steps) == rl2_train.iterations_for(experiment.variant_config(cfg, "rl2")) == 4
    assert all(np.isfinite(r["ppo/policy"]) for r in train_steps)
