"""ant_goal_sparse: goals, the official reward (costs counted twice inside the goal region) and its fixed form on
hand-made states, and (slow: MJX with contacts compiles for about a minute on CPU) determinism and vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.envs import ant_goal as ag


def test_goals_lie_on_the_upper_unit_semicircle():
    goals = ag.tasks()
    assert goals.shape == (100, 2) and (goals[:, 1] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("xy,act,want_official,want_fixed", [
    ((1.0, 0.0), 0.0, 2.0, 2.0),        # on the goal, no cost
    ((0.5, 0.0), 0.0, 1.5, 1.5),        # d = 0.5
    ((0.5, 0.0), 0.5, 1.5 - 2 * 0.2, 1.5 - 0.2),   # ctrl 0.1 * 8 * 0.25 = 0.2, twice inside officially
    ((0.5, 0.3), 0.5, 0.0 - 0.2, 1.2 - 0.2),       # d = 0.8: inside the fixed region, outside the official one
    ((0.0, 0.5), 0.0, 0.0, 0.0),        # d = 1.5
])
def test_official_reward_counts_costs_twice_and_the_fixed_one_once(xy, act, want_official, want_fixed):
    goal, action, contact = jnp.array([1.0, 0.0]), jnp.full(8, act), jnp.zeros((14, 6))
    got = [float(ag.sparse_reward(jnp.array(xy), goal, action, contact, official)) for official in (True, False)]
    assert got == pytest.approx([want_official, want_fixed], abs=1e-6)
    contact = jnp.ones((14, 6))  # contact cost 5e-4 * 84 = 0.042
    assert float(ag.sparse_reward(jnp.array(xy), goal, action, contact, False)) == pytest.approx(want_fixed - 0.042)


@pytest.mark.slow
def test_ant_is_deterministic_and_vmapped_steps_equal_sequential():
    reset, step = jax.jit(ag.reset), jax.jit(ag.step)
    keys, goals = jax.random.split(jax.random.key(0), 2), jnp.asarray(ag.tasks()[:2])
    actions = jax.random.uniform(jax.random.key(1), (2, 8), minval=-1, maxval=1)
    batched, _ = jax.vmap(ag.reset)(keys, goals)
    batched, obs_b, reward_b, _, _ = jax.vmap(ag.step)(batched, actions)
    for i in range(2):
        runs = []
        for _ in range(2):
            state, obs = reset(keys[i], goals[i])
            runs.append(step(state, actions[i]))
        np.testing.assert_array_equal(runs[0][1], runs[1][1])  # deterministic given the key
        assert runs[0][1].shape == (113,)
        np.testing.assert_allclose(obs_b[i], runs[0][1], rtol=1e-5, atol=1e-5)
        assert float(reward_b[i]) == pytest.approx(float(runs[0][2]), abs=1e-5)
