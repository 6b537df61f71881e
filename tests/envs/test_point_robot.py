"""sparse_point_robot: the official task list and split, the sparse reward on hand-made states, action clipping,
determinism given the key, and vmapped episodes equal to sequential ones."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.envs import point_robot as pr


def test_tasks_are_the_official_shuffled_semicircle_and_split():
    tasks = pr.goals()
    assert tasks.shape == (60, 2)
    np.testing.assert_allclose(np.linalg.norm(tasks, axis=1), 1.0, rtol=1e-6)
    assert (tasks[:, 1] >= -1e-7).all()  # upper half
    angles = np.sort(np.arctan2(tasks[:, 1], tasks[:, 0]))
    np.testing.assert_allclose(angles, np.linspace(0, np.pi, 60), atol=1e-5)  # a permutation of the grid
    legacy = np.stack([np.cos(np.linspace(0, np.pi, 60)), np.sin(np.linspace(0, np.pi, 60))], 1)
    np.random.seed(1337)  # the official construction, with the global RNG
    np.random.shuffle(legacy)
    np.testing.assert_array_equal(tasks, legacy.astype(np.float32))
    train, test = pr.split(tasks)
    assert len(train) == 40 and len(test) == 20 and not set(map(tuple, train)) & set(map(tuple, test))
    with pytest.raises(ValueError, match="exceed"):
        pr.split(tasks, 50, 20)


def test_sparse_reward_is_one_minus_distance_inside_the_goal_radius():
    goal = jnp.array([0.0, 1.0])
    for pos, want in (([0.0, 1.0], 1.0), ([0.0, 0.8], 0.8), ([0.3, 1.0], 0.7), ([0.0, 0.69], 0.0),
                      ([0.0, 0.0], 0.0)):
        reward, dense = pr.sparse_reward(jnp.array(pos), goal)
        assert float(reward) == pytest.approx(want, abs=1e-6), pos
        assert float(dense) == pytest.approx(-np.linalg.norm(np.array(pos) - np.array([0.0, 1.0])), abs=1e-6)


def test_actions_are_clipped_and_an_episode_lasts_32_steps():
    state, obs = pr.reset(jax.random.key(0), jnp.array([1.0, 0.0]))
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    state, obs, reward, done, _ = pr.step(state, jnp.array([5.0, -0.05]))
    np.testing.assert_allclose(obs, [0.1, -0.05])
    assert not bool(done) and float(reward) == 0.0
    for _ in range(31):
        state, obs, reward, done, _ = pr.step(state, jnp.array([0.1, 0.0]))
    assert bool(done) and int(state.t) == 32


def _noisy_policy(key, obs):
    return 0.1 * jnp.tanh(jax.random.normal(key, (2,)) - obs)


def test_episodes_are_deterministic_given_the_key_and_vmapped_equal_sequential():
    tasks = jnp.asarray(pr.goals()[:4])
    keys = jax.random.split(jax.random.key(3), 4)
    run = jax.jit(lambda k, t: pr.rollout(_noisy_policy, k, t))
    batched = jax.jit(jax.vmap(lambda k, t: pr.rollout(_noisy_policy, k, t)))(keys, tasks)
    for i in range(4):
        one = run(keys[i], tasks[i])
        again = run(keys[i], tasks[i])
        jax.tree.map(np.testing.assert_array_equal, one, again)
        jax.tree.map(lambda b, s: np.testing.assert_allclose(b[i], s, rtol=1e-6, atol=1e-7), batched, one)  # noqa: B023 -- called within this iteration
    obs, actions, rewards, next_obs = batched
    assert obs.shape == (4, 32, 2) and rewards.shape == (4, 32)
    np.testing.assert_array_equal(obs[:, 1:], next_obs[:, :-1])  # each step starts where the last ended
