"""Pure-JAX meta-RL tasks with a functional ``reset(key, task) -> (state, obs)`` / ``step(state, action) ->
(state, obs, reward, done, info)`` API, vmappable over environments and tasks and jittable over whole episodes
(``rollout``). Work in progress for issue 8 (MetaCURE): ``point_robot`` (sparse_point_robot) is in; the MJX tasks
(cheetah_vel_sparse, ant_goal_sparse, walker_rand_params), the gymnasium wrapper and the Meta-World adapter
are not yet."""
