"""cheetah_vel_sparse: the official task draw, the sparse reward on hand-made velocities, and (slow: MJX
compiles for about 30 s on CPU) MJX's steps against CPU MuJoCo's, determinism and vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.envs import cheetah_vel as cv


def test_tasks_are_the_official_draw():
    np.random.seed(1337)
    np.testing.assert_array_equal(cv.tasks(), np.random.uniform(0.0, 3.0, size=(130,)).astype(np.float32))


@pytest.mark.parametrize("velocity,want", [(1.0, 2.0), (1.4, 1.6), (0.5, 1.5), (1.6, 0.0), (0.0, 0.0)])
def test_sparse_reward_inside_half_a_unit_of_the_target(velocity, want):
    zero = jnp.zeros(6)
    assert float(cv.sparse_reward(jnp.asarray(velocity), jnp.asarray(1.0), zero)) == pytest.approx(want, abs=1e-6)
    action = jnp.full(6, 0.5)  # control cost 0.05 * 6 * 0.25
    assert float(cv.sparse_reward(jnp.asarray(velocity), jnp.asarray(1.0), action)) == pytest.approx(want - 0.075)


@pytest.mark.slow
def test_mjx_steps_follow_cpu_mujoco_and_vmap_equals_sequential():
    import mujoco

    reset, step = jax.jit(cv.reset), jax.jit(cv.step)
    key, goal = jax.random.key(0), jnp.asarray(1.0)
    state, obs = reset(key, goal)
    again, _ = reset(key, goal)
    np.testing.assert_array_equal(state.data.qpos, again.data.qpos)  # deterministic given the key
    assert obs.shape == (20,)
    actions = jax.random.uniform(jax.random.key(1), (3, 6), minval=-1, maxval=1)
    m, _, _ = cv.model()
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = np.asarray(state.data.qpos), np.asarray(state.data.qvel)
    for a in actions:
        x_before = d.qpos[0]
        d.ctrl[:] = np.asarray(a)
        for _ in range(cv.FRAME_SKIP):
            mujoco.mj_step(m, d)
        state, obs, reward, _, info = step(state, a)
        np.testing.assert_allclose(state.data.qpos, d.qpos, atol=2e-3)
        velocity = (d.qpos[0] - x_before) / (m.opt.timestep * cv.FRAME_SKIP)
        assert float(info["velocity"]) == pytest.approx(velocity, abs=2e-2)
    keys = jax.random.split(key, 2)
    goals = jnp.asarray([0.5, 2.0])
    batched, _ = jax.vmap(cv.reset)(keys, goals)
    batched, obs_b, reward_b, _, _ = jax.vmap(cv.step)(batched, actions[:2])
    for i in range(2):
        one, _ = reset(keys[i], goals[i])
        one, obs_i, reward_i, _, _ = step(one, actions[i])
        np.testing.assert_allclose(obs_b[i], obs_i, rtol=1e-5, atol=1e-5)
        assert float(reward_b[i]) == pytest.approx(float(reward_i), abs=1e-5)
