"""Pure-JAX meta-RL tasks with a functional ``reset(key, task) -> (state, obs)`` / ``step(state, action) ->
(state, obs, reward, done, info)`` API, vmappable over environments and tasks and jittable over whole episodes
(``point_robot.rollout``). Work in progress for issue 8 (MetaCURE): ``point_robot`` (sparse_point_robot) and
``cheetah_vel`` (cheetah_vel_sparse) and ``ant_goal`` (ant_goal_sparse) on MJX (``mjx_model``: shared loading and
start) are in, and as gymnasium Envs (``gym_wrappers``: NumPy and CPU MuJoCo); walker_rand_params, the
Meta-World adapter and the throughput benchmark are not yet."""
