"""The Meta-World ML1 adapter: sparse reward is exactly Meta-World's success flag, tasks are fixed by the seed and
differ in their hidden goal, episodes are deterministic given the seed, and a scripted reach earns the reward."""
import numpy as np
import pytest

pytest.importorskip("metaworld", reason="optional: pip install --no-deps metaworld==3.1.1 (make test installs it)")

from jaxsuite.envs.metaworld_ml1 import ML1Tasks  # noqa: E402


@pytest.fixture(scope="module")
def reach():
    return ML1Tasks("reach", seed=0)


def _rollout(env, seed, policy, steps):
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(policy(obs))
        out.append((obs, r, info))
        if term or trunc:
            break
    return out


def test_tasks_have_distinct_hidden_goals_and_splits(reach):
    assert len(reach.tasks["train"]) == len(reach.tasks["test"]) == 50
    goals = np.stack([reach.goal("train", i) for i in range(5)])
    assert len({tuple(np.round(g, 6)) for g in goals}) == 5
    assert not any(np.allclose(reach.goal("test", 0), g) for g in goals)
    obs, _ = reach.make("train", 0).reset(seed=0)
    np.testing.assert_array_equal(obs[-3:], 0.0)  # the goal is not observed
    np.testing.assert_allclose(ML1Tasks("reach", seed=0).goal("train", 3), goals[3])  # the seed fixes the tasks


def test_scripted_reach_earns_the_sparse_reward_which_is_the_success_flag(reach):
    goal = reach.goal("test", 2)
    env = reach.make("test", 2, max_episode_steps=60)
    steps = _rollout(env, 1, lambda o: np.append(np.clip((goal - o[:3]) * 30, -1, 1), 0.0), 100)
    rewards = np.array([r for _, r, _ in steps])
    assert len(steps) == 60  # truncated at max_episode_steps
    assert set(np.unique(rewards)) <= {0.0, 1.0} and rewards[0] == 0.0 and rewards[-1] == 1.0
    for _, r, info in steps:
        assert r == info["success"] == float(info["obj_to_target"] <= 0.05)  # reach: hand-goal distance <= 5 cm
        assert info["dense_reward"] > 0  # Meta-World's shaped reward is kept in info


def test_episodes_are_deterministic_given_the_seed_and_random_actions_find_nothing():
    wall = ML1Tasks("reach-wall", seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 4))
    runs = [_rollout(wall.make("train", 4), 7, lambda o, it=iter(actions): next(it), 30) for _ in range(2)]  # noqa: B008 -- an immutable default
    for (o1, r1, _), (o2, r2, _) in zip(*runs):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 == 0.0


def test_bad_arguments_are_named(reach):
    with pytest.raises(ValueError, match="ML1 env must be one of"):
        ML1Tasks("push")
    with pytest.raises(ValueError, match="split"):
        reach.make("val", 0)
    with pytest.raises(IndexError, match="50 train tasks"):
        reach.make("train", 50)
    with pytest.raises(ValueError, match="max_episode_steps"):
        reach.make("train", 0, max_episode_steps=501)
