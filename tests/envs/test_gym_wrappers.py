"""The gymnasium Envs pass gymnasium's env checker, follow the JAX task where that is cheap to run (the point
robot), give the tasks' rewards, and take their task from reset options."""
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from jaxsuite.envs import gym_wrappers, point_robot


@pytest.mark.parametrize("env_id", ["jaxsuite/SparsePointRobot-v0", "jaxsuite/CheetahVelSparse-v0",
                                    "jaxsuite/AntGoalSparse-v0", "jaxsuite/WalkerRandParams-v0"])
def test_envs_pass_gymnasiums_checker_and_run_an_episode(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    again, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, again)  # deterministic given the seed
    steps, truncated = 0, False
    while not truncated:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert np.isfinite(reward) and obs.shape == env.observation_space.shape and not terminated
        steps += 1
    assert steps == env.spec.max_episode_steps


def test_point_robot_env_follows_the_jax_task():
    goal = point_robot.goals()[5]
    actions = 0.1 * np.tanh(np.random.default_rng(0).normal(size=(32, 2))).astype(np.float32) + goal * 0.05
    env = gym_wrappers.SparsePointRobotEnv()
    env.reset(options={"task": goal})
    state, _ = point_robot.reset(jax.random.key(0), jnp.asarray(goal))
    for a in actions:
        obs, reward, *_ = env.step(a)
        state, obs_j, reward_j, _, _ = point_robot.step(state, jnp.asarray(a))
        np.testing.assert_allclose(obs, obs_j, atol=1e-6)
        assert reward == pytest.approx(float(reward_j), abs=1e-5)
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": [1.0, 2.0, 3.0]})


def test_cheetah_reward_is_the_sparse_target_velocity_reward():
    env = gym_wrappers.CheetahVelSparseEnv(task=0.0)
    env.reset(seed=1)
    _, reward, _, _, info = env.step(np.zeros(6, np.float32))
    gap = abs(info["velocity"])
    assert reward == pytest.approx(2.0 - gap if gap <= 0.5 else 0.0, abs=1e-5)
