"""Meta-World ML1 reach tasks (``reach-v3``, ``reach-wall-v3``; the ``metaworld`` package) as sparse-reward
gymnasium Envs, for meta-RL agents outside JAX. MetaCURE's Meta-World experiments use success-only rewards:
``reward = info["success"]`` (1.0 once the hand is within the benchmark's 5 cm of the hidden goal, else 0.0);
Meta-World's shaped reward stays in ``info["dense_reward"]``. The goal is hidden from the observation (Meta-World's
default for ML1), so an agent has to find it by exploring: the setting MetaCURE is about.

``ML1Tasks(name, seed)`` holds the benchmark's 50 train and 50 test tasks (goal positions, fixed by ``seed``);
``tasks.make(split, index)`` returns one task's Env. Episodes end with ``truncated`` after Meta-World's
``max_path_length`` (500) steps, or after ``max_episode_steps`` when given. MetaCURE's official Meta-World
configs (configs/metaworld-reach*-metacure.json) use 150-step episodes (``OFFICIAL_EPISODE_STEPS``), 3 exploration
episodes, 50 training and 10 evaluation tasks.

Install: ``pip install --no-deps metaworld==3.1.1``. metaworld 3.1.1 pins ``mujoco==3.3.0``, which would downgrade
the MuJoCo that MJX needs; ``--no-deps`` keeps ours (its other requirements, gymnasium, numpy, scipy and imageio,
are jaxsuite's already). Newer MuJoCo stores 12 numbers per weld constraint where 3.3 stored 11 (a trailing field,
zero by default), and metaworld's ``reset_mocap_welds`` writes an 11-vector into the row; ``_fit_mocap_welds``
replaces that one method with one that writes the same 11 numbers into the row's first 11 entries and leaves the
new one as compiled. Nothing else in reach / reach-wall touches the changed layout (``tests/envs`` runs episodes)."""
from __future__ import annotations

import gymnasium
import numpy as np

ENVS = {"reach": "reach-v3", "reach-wall": "reach-wall-v3"}
SPLITS = ("train", "test")
OFFICIAL_EPISODE_STEPS = 150  # MetaCURE's max_path_length for Meta-World reach / reach-wall
NUM_EVAL_TASKS = 10  # MetaCURE's Meta-World configs evaluate on 10 of the benchmark's test tasks
OBS_DIM, ACT_DIM = 39, 4  # Meta-World v3 observations (goal zeroed in ML1) and the hand's (dx, dy, dz, grip)
# metaworld's weld data for its mocap hand (anchor 0; relpose: position 0, quaternion (-1, 0, 0, 0); torquescale 5)
_MOCAP_WELD = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0)


def _import_metaworld():
    try:
        import metaworld
    except ImportError as e:
        raise ImportError("the Meta-World adapter needs the metaworld package: "
                          "pip install --no-deps metaworld==3.1.1 (see jaxsuite/envs/metaworld_ml1.py)") from e
    _fit_mocap_welds()
    return metaworld


def _fit_mocap_welds() -> None:
    """Make metaworld's ``reset_mocap_welds`` write its 11 weld numbers into MuJoCo rows of any width >= 11."""
    import mujoco
    from metaworld import sawyer_xyz_env

    base = sawyer_xyz_env.SawyerMocapBase
    if getattr(base.reset_mocap_welds, "_jaxsuite_fitted", False):
        return

    def reset_mocap_welds(self) -> None:
        if self.model.nmocap > 0 and self.model.eq_data is not None:
            for i in range(self.model.eq_data.shape[0]):
                if self.model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
                    self.model.eq_data[i, :len(_MOCAP_WELD)] = _MOCAP_WELD

    reset_mocap_welds._jaxsuite_fitted = True
    base.reset_mocap_welds = reset_mocap_welds


class SparseSuccessReward(gymnasium.Wrapper):
    """reward = float(info["success"]); the wrapped env's reward moves to info["dense_reward"]."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "dense_reward": float(reward)}
        return obs, float(info["success"]), terminated, truncated, info


class ML1Tasks:
    """One ML1 benchmark: ``name`` in ``ENVS`` (or its Meta-World id), tasks drawn by metaworld from ``seed``."""

    def __init__(self, name: str = "reach", seed: int = 0):
        env_id = ENVS.get(name, name)
        if env_id not in ENVS.values():
            raise ValueError(f"Meta-World ML1 env must be one of {sorted(ENVS)} (or {sorted(ENVS.values())}), "
                             f"got {name!r}")
        self.env_id = env_id
        self.benchmark = _import_metaworld().ML1(env_id, seed=seed)
        self.tasks = {"train": self.benchmark.train_tasks, "test": self.benchmark.test_tasks}
        self.env_class = {"train": self.benchmark.train_classes, "test": self.benchmark.test_classes}

    def goal(self, split: str, index: int) -> np.ndarray:
        """The task's hidden goal position (x, y, z), for analysis: an agent never sees it."""
        env = self.make(split, index)
        env.reset(seed=0)
        return np.asarray(env.unwrapped._target_pos, np.float64)

    def make(self, split: str, index: int, max_episode_steps: int | None = None) -> gymnasium.Env:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        tasks = self.tasks[split]
        if not 0 <= index < len(tasks):
            raise IndexError(f"{self.env_id} has {len(tasks)} {split} tasks; index {index} is out of range")
        env = self.env_class[split][self.env_id]()
        env.set_task(tasks[index])
        if max_episode_steps is not None:
            if not 0 < max_episode_steps <= env.max_path_length:
                raise ValueError(f"max_episode_steps must be in [1, {env.max_path_length}], got {max_episode_steps}")
            env.max_path_length = max_episode_steps
        return SparseSuccessReward(env)
