"""The tasks as gymnasium Envs, for agents outside JAX: ``SparsePointRobotEnv`` (NumPy), ``CheetahVelSparseEnv``,
``AntGoalSparseEnv`` and ``WalkerRandParamsEnv`` (CPU MuJoCo, the same MJCF, frame skip, start noise, observation
and reward as the MJX tasks; the tasks' reward functions run on NumPy here, no device round trip per step). The
task is a constructor argument or ``reset(options={"task": ...})``; ``info["success"]`` as in the JAX tasks.
Registered with gymnasium as ``jaxsuite/SparsePointRobot-v0``, ``jaxsuite/CheetahVelSparse-v0``,
``jaxsuite/AntGoalSparse-v0`` and ``jaxsuite/WalkerRandParams-v0`` (episode lengths 32, 64, 32, 64 through
gymnasium's TimeLimit)."""
from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from jaxsuite.envs import ant_goal, cheetah_vel, mjx_model, point_robot, walker_params


class _TaskEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, task):
        self.task = np.asarray(task, np.float32)

    def _set_task(self, options):
        if options and "task" in options:
            task = np.asarray(options["task"], np.float32)
            if task.shape != self.task.shape:
                raise ValueError(f"reset option 'task' must have shape {self.task.shape}, got {task.shape}")
            self.task = task


class SparsePointRobotEnv(_TaskEnv):
    def __init__(self, task=(1.0, 0.0)):
        super().__init__(task)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-point_robot.MAX_ACTION, point_robot.MAX_ACTION, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._set_task(options)
        self.pos = np.zeros(2, np.float32)
        return self.pos.copy(), {}

    def step(self, action):
        self.pos = (self.pos + np.clip(action, -point_robot.MAX_ACTION, point_robot.MAX_ACTION)).astype(np.float32)
        reward, dense = point_robot.sparse_reward(self.pos, self.task, xp=np)
        info = {"dense_reward": float(dense), "success": bool(dense >= -point_robot.GOAL_RADIUS)}
        return self.pos.copy(), float(reward), False, False, info


class _MujocoTaskEnv(_TaskEnv):
    asset: str
    frame_skip = 5

    def __init__(self, task, obs_size: int):
        import mujoco

        super().__init__(task)
        self.model = mujoco.MjModel.from_xml_path(mjx_model.asset_path(self.asset))
        self.data = mujoco.MjData(self.model)
        self.torso = mjx_model.body_id(self.model, "torso")
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_size,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)

    def reset(self, *, seed=None, options=None):
        import mujoco

        super().reset(seed=seed)
        self._set_task(options)
        mujoco.mj_resetData(self.model, self.data)
        self._randomise_start()
        mujoco.mj_forward(self.model, self.data)
        return self._obs(), {}

    def _randomise_start(self):
        """gym's reset noise: qpos0 + U(-0.1, 0.1), qvel 0.1 N(0, 1)."""
        self.data.qpos[:] = self.model.qpos0 + self.np_random.uniform(-0.1, 0.1, self.model.nq)
        self.data.qvel[:] = 0.1 * self.np_random.standard_normal(self.model.nv)

    def _simulate(self, action):
        import mujoco

        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        for _ in range(self.frame_skip):
            mujoco.mj_step(self.model, self.data)


class CheetahVelSparseEnv(_MujocoTaskEnv):
    asset = "half_cheetah.xml"

    def __init__(self, task=1.0):
        super().__init__(task, 20)

    def _obs(self):
        return np.concatenate([self.data.qpos[1:], self.data.qvel, self.data.xpos[self.torso]])

    def step(self, action):
        x_before = self.data.qpos[0]
        self._simulate(action)
        velocity = (self.data.qpos[0] - x_before) / (self.model.opt.timestep * self.frame_skip)
        reward = float(cheetah_vel.sparse_reward(velocity, self.task, np.clip(action, -1.0, 1.0), xp=np))
        success = abs(velocity - self.task) <= cheetah_vel.GOAL_RADIUS
        return self._obs(), reward, False, False, {"velocity": velocity, "success": bool(success)}


class AntGoalSparseEnv(_MujocoTaskEnv):
    asset = "ant.xml"

    def __init__(self, task=(1.0, 0.0), official: bool = True):
        self.official = official
        super().__init__(task, 113)

    def _contact(self):
        return np.clip(self.data.cfrc_ext, -1.0, 1.0)

    def _obs(self):
        return np.concatenate([self.data.qpos, self.data.qvel, self._contact().ravel()])

    def _simulate(self, action):
        import mujoco

        super()._simulate(action)
        mujoco.mj_rnePostConstraint(self.model, self.data)

    def step(self, action):
        self._simulate(action)
        xy = self.data.xpos[self.torso, :2].copy()
        reward = float(ant_goal.sparse_reward(xy, self.task, np.clip(action, -1.0, 1.0), self._contact(),
                                              self.official, xp=np))
        success = np.sum(np.abs(xy - self.task)) <= ant_goal.GOAL_RADIUS
        return self._obs(), reward, False, False, {"torso_xy": xy, "success": bool(success)}


class WalkerRandParamsEnv(_MujocoTaskEnv):
    """The task is {field: array} of model parameters (``walker_params.tasks()`` rows); default: the unchanged
    model. ``reset(options={"task": ...})`` writes them into the MjModel, as rand_param_envs' ``set_task``."""
    asset = "walker2d.xml"
    frame_skip = walker_params.FRAME_SKIP

    def __init__(self, task=None):
        super().__init__(np.zeros(0), 17)
        self.init_params = {k: getattr(self.model, k).copy() for k in walker_params.RAND_PARAMS}
        self._apply(task if task is not None else self.init_params)

    def _apply(self, task):
        for field, init in self.init_params.items():
            value = np.asarray(task[field], np.float64)
            if value.shape != init.shape:
                raise ValueError(f"task field {field!r} must have shape {init.shape}, got {value.shape}")
            getattr(self.model, field)[:] = value
        self.task = {k: np.asarray(task[k]) for k in self.init_params}

    def _set_task(self, options):
        if options and "task" in options:
            self._apply(options["task"])

    def _randomise_start(self):
        """gym's Walker2d reset noise: U(-0.005, 0.005) on qpos0 and on a zero qvel."""
        self.data.qpos[:] = self.model.qpos0 + self.np_random.uniform(-0.005, 0.005, self.model.nq)
        self.data.qvel[:] = self.np_random.uniform(-0.005, 0.005, self.model.nv)

    def _obs(self):
        return np.concatenate([self.data.qpos[1:], np.clip(self.data.qvel, -10.0, 10.0)])

    def step(self, action):
        x_before = self.data.qpos[0]
        self._simulate(action)
        velocity = (self.data.qpos[0] - x_before) / (self.model.opt.timestep * self.frame_skip)
        reward = float(walker_params.sparse_reward(velocity, np.clip(action, -1.0, 1.0), xp=np))
        success = abs(velocity - walker_params.TARGET_VELOCITY) <= walker_params.GOAL_RADIUS
        return self._obs(), reward, False, False, {"velocity": velocity, "success": bool(success)}


for _id, _cls, _steps in (("SparsePointRobot-v0", SparsePointRobotEnv, point_robot.HORIZON),
                          ("CheetahVelSparse-v0", CheetahVelSparseEnv, cheetah_vel.HORIZON),
                          ("AntGoalSparse-v0", AntGoalSparseEnv, ant_goal.HORIZON),
                          ("WalkerRandParams-v0", WalkerRandParamsEnv, walker_params.HORIZON)):
    if f"jaxsuite/{_id}" not in gymnasium.registry:
        gymnasium.register(f"jaxsuite/{_id}", entry_point=_cls, max_episode_steps=_steps)
