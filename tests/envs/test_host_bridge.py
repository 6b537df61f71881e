"""Meta-World ML1 through ``host_bridge`` (issue 42: usable by the trainer): a jitted, vmapped, scanned rollout of
the bridged spec equals the same episode stepped directly in gymnasium; slots are reused after an episode and
concurrent episodes of one task get their own Envs; bad horizons are named; MetaCURE and RL² train on it through
``run_one``."""
import numpy as np
import pytest

pytest.importorskip("metaworld", reason="optional: pip install --no-deps metaworld==3.1.1 (make test installs it)")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxsuite.core.config import load_config  # noqa: E402
from jaxsuite.core.errors import ConfigError  # noqa: E402
from jaxsuite.core.runner import run_one  # noqa: E402
from jaxsuite.envs import specs  # noqa: E402
from jaxsuite.envs.metaworld_ml1 import ML1Tasks  # noqa: E402

HORIZON = 6


@pytest.fixture(scope="module")
def spec():
    return specs.get("metaworld_reach", HORIZON)


def _rollouts(spec, keys, tasks, actions):
    """[lanes, T] observations, rewards and successes of fixed actions [lanes, T, 4], jitted and vmapped."""
    def one(key, task, acts):
        state, obs = spec.reset(key, task)

        def step(state, a):
            state, obs, reward, _, info = spec.step(state, a)
            return state, (obs, reward, info["success"])

        return obs, jax.lax.scan(step, state, acts)[1]

    return jax.jit(jax.vmap(one))(keys, tasks, actions)


def test_bridged_rollout_equals_direct_gymnasium_steps(spec):
    assert (spec.obs_dim, spec.act_dim, spec.horizon, spec.num_train, len(spec.eval_tasks)) == (39, 4, HORIZON, 50, 10)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    tasks = jnp.asarray([4, 4, 52], jnp.int32)  # two concurrent episodes of one task, one test task
    actions = jax.random.uniform(jax.random.PRNGKey(1), (3, HORIZON, 4), minval=-1, maxval=1)
    first, (obs, rewards, success) = _rollouts(spec, keys, tasks, actions)
    ml1 = ML1Tasks("reach", seed=0)
    for lane, (key, task) in enumerate(zip(keys, np.asarray(tasks))):
        env = ml1.make("train", task, HORIZON) if task < 50 else ml1.make("test", task - 50, HORIZON)
        o, _ = env.reset(seed=int(np.asarray(key, np.uint64)[-1] % np.uint64(2**31 - 1)))
        np.testing.assert_allclose(first[lane], o, rtol=1e-6)
        for t in range(HORIZON):
            o, r, _, _, info = env.step(np.asarray(actions[lane, t]))
            np.testing.assert_allclose(obs[lane, t], o, rtol=1e-6, atol=1e-6)
            assert rewards[lane, t] == r and bool(success[lane, t]) == bool(info["success"])
    again = _rollouts(spec, keys, tasks, actions)  # the slots were given back and are reused: same episodes
    np.testing.assert_array_equal(again[1][0], obs)


def test_horizon_is_checked_and_kept_per_spec():
    with pytest.raises(ConfigError, match="env.horizon"):
        specs.get("metaworld_reach", 501)
    with pytest.raises(ConfigError, match="env.horizon"):
        specs.get("sparse_point_robot", -1)
    assert specs.get("sparse_point_robot", 8).horizon == 8 and specs.get("sparse_point_robot").horizon == 32


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["metacure", "rl2"])
def test_metacure_and_rl2_train_on_metaworld_through_run_one(tmp_path, variant):
    cfg = load_config("metacure", "quick", [
        "env.name=metaworld_reach", f"env.horizon={HORIZON}", "model.hidden=(16,16)", "model.encoder_hidden=8",
        "model.latent=2", "explore.episodes=1", "train.meta_batch=4", "train.grad_meta_batch=2",
        "train.batch_size=8", "train.grad_steps=2", "buffer.contexts=2", "buffer.exploit_episodes=2",
        "iterations=2", "checkpoint_every=1", "log_every=1", "eval.rollouts=1", "rl2.trials=4",
        "rl2.minibatches=1", "rl2.hidden=8"])
    metrics = run_one("metacure", cfg, variant, 0, tmp_path, progress=False)
    for prefix in ("", "val_"):
        assert 0.0 <= metrics[f"{prefix}eval_success"] <= 1.0 and np.isfinite(metrics[f"{prefix}eval_return"])
