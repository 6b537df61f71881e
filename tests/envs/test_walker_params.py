"""walker_rand_params: the official log-uniform parameter draw, the sparse reward on hand-made velocities, the
gymnasium Env writes the task into its model, and (slow: MJX compiles for minutes on CPU) MJX's steps of a
randomised model against CPU MuJoCo's with the same parameters, determinism and vmap over tasks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.envs import gym_wrappers, specs
from jaxsuite.envs import walker_params as wp


def test_tasks_are_log_uniform_multiples_of_the_model_in_the_official_order():
    m, _ = wp.model()
    t = wp.tasks(3, seed=7)
    rng = np.random.RandomState(7)
    for i in range(3):
        for field, base in wp.RAND_PARAMS.items():
            init = getattr(m, field)
            want = init * base ** rng.uniform(-3.0, 3.0, size=init.shape)
            np.testing.assert_allclose(t[field][i], want, rtol=1e-6)
    ratio = t["body_mass"][:, 1:] / m.body_mass[1:]  # the world body has mass 0
    assert (ratio >= 1.5 ** -3 - 1e-6).all() and (ratio <= 1.5 ** 3 + 1e-6).all()
    spec = specs.get("walker_rand_params")
    assert spec.num_train == 40 and spec.eval_tasks["dof_damping"].shape == (10, m.nv)


@pytest.mark.parametrize("velocity,want", [(1.5, 0.8), (1.2, 0.5), (2.0, 0.3), (2.1, 0.0), (0.0, 0.0)])
def test_sparse_reward_near_the_target_velocity(velocity, want):
    zero = jnp.zeros(6)
    assert float(wp.sparse_reward(jnp.asarray(velocity), zero)) == pytest.approx(want, abs=1e-6)
    assert float(wp.sparse_reward(jnp.asarray(velocity), jnp.ones(6))) == pytest.approx(want - 6e-3, abs=1e-6)


def test_gym_env_takes_its_task_into_the_model():
    task = {k: v[4] for k, v in wp.tasks().items()}
    env = gym_wrappers.WalkerRandParamsEnv()
    env.reset(seed=0, options={"task": task})
    np.testing.assert_allclose(env.model.body_mass, task["body_mass"], rtol=1e-6)
    np.testing.assert_allclose(env.model.geom_friction, task["geom_friction"], rtol=1e-6)
    with pytest.raises(ValueError, match="dof_damping"):
        env.reset(options={"task": {**task, "dof_damping": np.ones(2)}})


@pytest.mark.slow
def test_mjx_follows_cpu_mujoco_with_the_tasks_parameters_and_vmap_equals_sequential():
    import mujoco

    tasks = wp.tasks(2)
    task = {k: jnp.asarray(v[1]) for k, v in tasks.items()}
    reset, step = jax.jit(wp.reset), jax.jit(wp.step)
    key = jax.random.key(0)
    state, obs = reset(key, task)
    again, _ = reset(key, task)
    np.testing.assert_array_equal(state.data.qpos, again.data.qpos)
    assert obs.shape == (17,)
    m = mujoco.MjModel.from_xml_path(gym_wrappers.mjx_model.asset_path("walker2d.xml"))
    for field in wp.RAND_PARAMS:
        getattr(m, field)[:] = np.asarray(task[field])
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = np.asarray(state.data.qpos), np.asarray(state.data.qvel)
    actions = jax.random.uniform(jax.random.key(1), (3, 6), minval=-1, maxval=1)
    for a in actions:
        d.ctrl[:] = np.asarray(a)
        for _ in range(wp.FRAME_SKIP):
            mujoco.mj_step(m, d)
        state, obs, reward, _, info = step(state, a)
        np.testing.assert_allclose(state.data.qpos, d.qpos, atol=2e-3)
    keys = jax.random.split(key, 2)
    both = jax.tree.map(jnp.asarray, tasks)
    batched, _ = jax.vmap(wp.reset)(keys, both)
    batched, obs_b, reward_b, _, _ = jax.vmap(wp.step)(batched, actions[:2])
    for i in range(2):
        one, _ = reset(keys[i], {k: v[i] for k, v in both.items()})
        one, obs_i, reward_i, _, _ = step(one, actions[i])
        np.testing.assert_allclose(obs_b[i], obs_i, rtol=1e-5, atol=1e-5)
        assert float(reward_b[i]) == pytest.approx(float(reward_i), abs=1e-5)
