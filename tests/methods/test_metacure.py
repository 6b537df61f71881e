"""MetaCURE: the encoders' online beliefs equal their whole-context beliefs, the intrinsic reward and the
KL against their definitions, the buffers' ring, the collection and sampling invariants, the Polyak-averaged
targets, which losses train the encoder (the exploiter's critic and the KL only), the train step sharded over the
mesh, exact resume, and every variant end to end through run_one at toy size."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.runner import run_one
from jaxsuite.methods.metacure import buffers, experiment, losses, networks, train
from tests.helpers import assert_sharded_step_equals_single_device_step

TINY = ["model.hidden=(16,16)", "model.encoder_hidden=8", "model.latent=2", "explore.episodes=2",
        "train.meta_batch=4", "train.grad_meta_batch=4", "train.batch_size=8", "train.grad_steps=2",
        "buffer.contexts=3", "buffer.exploit_episodes=3", "iterations=4", "checkpoint_every=2", "log_every=1",
        "eval.rollouts=1", "rl2.trials=4", "rl2.minibatches=2", "rl2.hidden=8"]


def tiny(*extra):
    return load_config("metacure", "quick", [*TINY, *extra])


@pytest.mark.parametrize("kind", ["snail", "min_gru", "gru", "product_of_gaussians"])
def test_online_belief_updates_equal_the_prefix_beliefs(kind):
    """A rollout updates the belief one transition at a time; training encodes a stored context at once: both
    must give the same belief after every prefix (and the prior first)."""
    enc = networks.Agent(obs_dim=2, act_dim=2, latent=3, num_train_tasks=4, hidden=(8,), encoder=kind,
                         encoder_hidden=8, context_len=12, dynamics=False, rngs=nnx.Rngs(0)).encoder
    tokens = jax.random.normal(jax.random.PRNGKey(1), (12, 7))
    mu, var = networks.beliefs(enc, tokens)
    assert mu.shape == var.shape == (13, 3) and bool(jnp.all(var > 0))
    carry = enc.init_carry()
    for t in range(13):
        m, v = enc.belief(carry)
        np.testing.assert_allclose(m, mu[t], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(v, var[t], rtol=1e-4, atol=1e-5)
        if t < 12:
            carry = enc.update(carry, tokens[t])
    # causal: changing the last token changes only the last belief
    mu2, _ = networks.beliefs(enc, tokens.at[-1].add(1.0))
    np.testing.assert_allclose(mu2[:-1], mu[:-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(mu2[-1], mu[-1])


def test_product_of_gaussians_is_the_precision_weighted_product():
    enc = networks.ProductOfGaussians(5, (8,), 2, rngs=nnx.Rngs(0))
    tokens = jax.random.normal(jax.random.PRNGKey(2), (4, 5))
    f_mu, f_var = networks._split_belief(enc.factor(tokens))
    precision = 1.0 + jnp.sum(1.0 / f_var, 0)
    mu, var = networks.beliefs(enc, tokens)
    np.testing.assert_allclose(var[-1], 1.0 / precision, rtol=1e-5)
    np.testing.assert_allclose(mu[-1], jnp.sum(f_mu / f_var, 0) / precision, rtol=1e-5)
    np.testing.assert_allclose(mu[0], 0.0)  # the prior before any transition
    np.testing.assert_allclose(var[0], 1.0)


def test_kl_to_standard_normal():
    assert float(losses.gaussian_kl_to_standard(jnp.zeros(3), jnp.ones(3))) == 0.0
    mu, var = jnp.array([1.0, -2.0]), jnp.array([0.5, 2.0])
    want = sum(0.5 * (v + m * m - 1 - np.log(v)) for m, v in zip(mu.tolist(), var.tolist()))
    np.testing.assert_allclose(losses.gaussian_kl_to_standard(mu, var), want, rtol=1e-6)


def _agent(dynamics=False):
    return networks.Agent(obs_dim=2, act_dim=2, latent=2, num_train_tasks=3, hidden=(8,), encoder="gru",
                          encoder_hidden=8, context_len=4, dynamics=dynamics, rngs=nnx.Rngs(0))


def test_intrinsic_reward_is_the_gap_between_belief_and_oracle_errors():
    agent = _agent(dynamics=True)
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    obs, act, nxt = (jax.random.normal(k[0], (5, 2)), jax.random.normal(k[1], (5, 2)),
                     jax.random.normal(k[2], (5, 2)))
    rew, belief, onehot = jax.random.uniform(k[3], (5,)), jnp.ones((5, 4)), jax.nn.one_hot(jnp.full(5, 1), 3)
    r_int = losses.intrinsic_reward(agent, obs, act, rew, nxt, belief, onehot)
    rb, ro = agent.reward_belief(obs, act, belief)[:, 0], agent.reward_oracle(obs, act, onehot)[:, 0]
    fb, fo = agent.next_obs_belief(obs, act, belief), agent.next_obs_oracle(obs, act, onehot)
    want = ((rew - rb) ** 2 - (rew - ro) ** 2 + jnp.mean((nxt - fb) ** 2, -1) - jnp.mean((nxt - fo) ** 2, -1))
    np.testing.assert_allclose(r_int, want, rtol=1e-5, atol=1e-6)
    # a belief predictor that equals the oracle's earns nothing
    agent.reward_belief = agent.reward_oracle
    agent.next_obs_belief = agent.next_obs_oracle
    np.testing.assert_allclose(losses.intrinsic_reward(agent, obs, act, rew, nxt, onehot, onehot), 0.0, atol=1e-6)


def test_buffer_is_a_ring_per_task():
    buf = buffers.empty(3, 2, 4, 1, 1)
    for i in range(3):  # task 1 three times, task 2 once: task 1's first episode is overwritten
        ep = {k: jnp.full((1, 4) + ((1,) if k != "reward" else ()), float(i)) for k in buffers.FIELDS}
        buf = buffers.add(buf, jnp.array([1]), ep)
    buf = buffers.add(buf, jnp.array([2]), {k: v + 10.0 for k, v in ep.items()})
    assert buf["count"].tolist() == [0, 3, 1]
    assert buf["reward"][1, :, 0].tolist() == [2.0, 1.0] and buf["reward"][2, 0, 0] == 12.0
    assert buffers.filled(buf, jnp.arange(3)).tolist() == [0, 2, 1]
    draws = buffers.transitions(buf, jnp.array(1), jax.random.PRNGKey(0), 64)["reward"]
    assert set(np.asarray(draws).tolist()) == {1.0, 2.0}  # only the filled episodes


def test_bad_config_is_refused_with_the_key():
    with pytest.raises(ConfigError, match="explore.mode"):
        train.make_setup(tiny("explore.mode=greedy"))
    with pytest.raises(ConfigError, match="meta_batch"):
        train.make_setup(tiny("train.meta_batch=41"))
    with pytest.raises(ConfigError, match="env.name"):
        train.make_setup(tiny("env.name=hopper"))


@pytest.fixture(scope="module")
def state():
    return jax.jit(train.init, static_argnums=0)(train.make_setup(tiny()), jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def stepped(state):
    """(batch, state, metrics) after one train step from ``state``: data in the buffers of 4 tasks, and the online
    networks moved away from their targets."""
    batch = experiment.task_batches(state.setup.spec.num_train, 4, seed=0)(0)
    new, metrics = jax.jit(train.train_step)(jax.tree.map(jnp.copy, state), batch)
    return batch, new, metrics


def test_collection_fills_the_buffers_and_the_step_trains(state, stepped):
    batch, new, metrics = stepped
    assert len(set(batch["tasks"].tolist())) == 4
    counts = np.asarray(new.buffers["context"]["count"])
    assert counts[batch["tasks"]].tolist() == [1] * 4 and counts.sum() == 4
    ctx = new.buffers["context"]
    # stored contexts are real point-robot episodes: positions move by the clipped action and restart at 0
    t = int(batch["tasks"][0])
    obs, act, nxt = ctx["obs"][t, 0], ctx["action"][t, 0], ctx["next_obs"][t, 0]
    np.testing.assert_allclose(nxt, obs + 0.1 * np.clip(act, -1, 1), atol=1e-5)
    np.testing.assert_allclose(np.asarray(obs)[[0, state.setup.spec.horizon]], 0.0)
    for k in ("exploiter/q", "explorer/q", "explorer/r_int", "kl", "predictor/reward_belief"):
        assert np.isfinite(float(metrics[k])), k
    moved = [float(jnp.max(jnp.abs(new.params[n]["layers"][0]["kernel"] - state.params[n]["layers"][0]["kernel"])))
             for n in ("q1", "exp_q1", "reward_oracle")]
    assert min(moved) > 0
    for target, online in networks.TARGETS.items():  # initialised as copies
        for t0, o0 in zip(jax.tree.leaves(state.params[target]), jax.tree.leaves(state.params[online]), strict=True):
            np.testing.assert_array_equal(t0, o0)


def test_targets_follow_their_online_networks_by_polyak_averaging(stepped):
    """After a train step every target parameter is tau * (its online parameter after the step) + (1 - tau) * (its
    value before): the optimiser leaves the targets alone. One gradient step per train step so that the formula holds
    for the whole step, and a large tau so that the move is far above float32 rounding; tau is the config's."""
    _, old, _ = stepped  # the online networks have moved, the targets trail them
    setup = train.make_setup(tiny("train.grad_steps=1", "train.tau=0.5"))
    assert setup == dataclasses.replace(old.setup, grad_steps=1, tau=0.5)
    tau = setup.tau
    new, _ = jax.jit(train.train_step)(old.replace(setup=setup),
                                       experiment.task_batches(setup.spec.num_train, 4, seed=2)(0))
    for target, online in networks.TARGETS.items():
        leaves = [jax.tree.leaves(p) for p in (old.params[target], new.params[online], new.params[target])]
        assert len({len(x) for x in leaves}) == 1 and leaves[0], target
        for t_old, o_new, t_new in zip(*leaves, strict=True):
            t_old, o_new, t_new = (np.asarray(x, np.float64) for x in (t_old, o_new, t_new))
            np.testing.assert_allclose(t_new, tau * o_new + (1 - tau) * t_old, rtol=1e-5, atol=1e-6)
        # not vacuous: the target moved, and it is neither its old value nor its online network
        t_old, o_new, t_new = (np.concatenate([np.ravel(x) for x in leaf]) for leaf in leaves)
        assert np.max(np.abs(t_new - t_old)) > 1e-4 and np.max(np.abs(t_new - o_new)) > 1e-4, target


def test_only_the_exploiter_critic_and_the_kl_train_the_encoder(stepped):
    """The encoder learns from the exploiter's Q loss and the KL only, as in the official ``_take_step_exp`` (the
    explorer's Q, V and policy and the belief predictors read ``z_mean.detach(), z_var.detach()``): the gradient of
    the explorer's critic loss, and of every other trained loss, with respect to the encoder is exactly zero."""
    _, state, _ = stepped
    assert state.setup.mode == "explorer" and state.setup.intrinsic_weight > 0
    data = train.sample_batch(state.setup, state.buffers, jax.random.PRNGKey(5))
    key = jax.random.PRNGKey(6)
    present = jax.eval_shape(lambda p: train.batch_losses(state, p, data, key), state.params)
    names = [k for k in train.TRAINED if k in present]
    assert {"explorer/q", "explorer/v", "explorer/policy", "predictor/reward_belief"} <= set(names)

    @jax.jit
    def encoder_grads(state, data):
        def stacked(params):
            metrics = train.batch_losses(state, params, data, key)
            return jnp.stack([metrics[k] for k in names])
        return jax.jacrev(stacked)(state.params)["encoder"]  # leaves [len(names), *shape]

    leaves = jax.tree.leaves(encoder_grads(state, data))
    assert leaves
    for i, name in enumerate(names):
        largest = max(float(jnp.max(jnp.abs(g[i]))) for g in leaves)
        if name in ("kl", "exploiter/q"):
            assert largest > 0, name
        else:
            assert largest == 0.0, (name, largest)


def test_sharded_train_step_equals_single_device(state):
    batch = experiment.task_batches(state.setup.spec.num_train, 4, seed=1)(0)
    assert_sharded_step_equals_single_device_step(train.train_step, state, batch, rtol=2e-4, atol=1e-5)


def test_evaluate_reports_success_and_return(state):
    tasks = jnp.asarray(state.setup.spec.eval_tasks)[:3]
    out = jax.jit(lambda s: train.evaluate(s, jax.random.PRNGKey(0), tasks=tasks, rollouts=2))(state)
    assert set(out) == {"eval_success", "eval_return", "explore_success", "exploit_success_when_explored"}
    assert 0.0 <= float(out["eval_success"]) <= 1.0 and float(out["eval_return"]) >= 0.0
    assert 0.0 <= float(out["exploit_success_when_explored"]) <= 1.0


def _records(workdir):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_resume_continues_exactly(tmp_path):
    """Stopped after 2 of 4 iterations and resumed: the same losses at every step and the same meta-test."""
    straight = experiment.run(tiny(), "metacure", 0, tmp_path / "a", progress=False)
    experiment.run(tiny("iterations=2"), "metacure", 0, tmp_path / "b", progress=False)
    resumed = experiment.run(tiny(), "metacure", 0, tmp_path / "b", progress=False)
    assert straight == {**resumed, "train_seconds": straight["train_seconds"]}
    a = [r for r in _records(tmp_path / "a") if r["split"] == "train"]
    b = [r for r in _records(tmp_path / "b") if r["split"] == "train"]
    assert [r["step"] for r in b] == [1, 2, 3, 4] and a == b


@pytest.mark.parametrize("variant", [v if v != "rl2" else pytest.param(v, marks=pytest.mark.slow)
                                     for v in experiment.VARIANTS])
def test_every_variant_runs_end_to_end(variant, tmp_path):
    """Every variant through run_one, validation and test metrics reported (rl2: slow, its PPO step compiles for
    about half a minute on a loaded 2-core machine; tests/methods/test_metacure_rl2.py runs it with its checks)."""
    metrics = run_one("metacure", tiny(), variant, 0, tmp_path, progress=False)
    for prefix in ("", "val_"):
        assert 0.0 <= metrics[f"{prefix}eval_success"] <= 1.0 and np.isfinite(metrics[f"{prefix}eval_return"])


@pytest.mark.slow
def test_runs_on_an_mjx_task_whose_tasks_are_model_parameters(tmp_path):
    """walker_rand_params: tasks are dicts of model parameters, the dynamics term of r_int is on (slow: MJX
    compiles for minutes on CPU)."""
    cfg = tiny("env.name=walker_rand_params", "intrinsic.dynamics=True", "iterations=1", "explore.episodes=1")
    metrics = run_one("metacure", cfg, "metacure", 0, tmp_path, progress=False)
    assert 0.0 <= metrics["eval_success"] <= 1.0 and np.isfinite(metrics["eval_return"])
