"""Pure-JAX meta-RL tasks with a functional ``reset(key, task) -> (state, obs)`` / ``step(state, action) ->
(state, obs, reward, done, info)`` API, vmappable over environments and tasks and jittable over whole episodes
(``point_robot.rollout``): ``point_robot`` (sparse_point_robot), and on MJX (``mjx_model``: shared loading and
start) ``cheetah_vel`` (cheetah_vel_sparse), ``ant_goal`` (ant_goal_sparse) and ``walker_params``
(walker_rand_params: randomised masses, inertias, damping and friction per task); ``specs.get(name)`` describes
each for an agent (sizes, action scale, horizon, the official task lists). ``gym_wrappers`` exposes them as
gymnasium Envs (NumPy and CPU MuJoCo); ``benchmarks/envs_throughput.py`` times MJX against gymnasium's vector
env. ``metaworld_ml1``: Meta-World's ML1 reach / reach-wall tasks (the ``metaworld`` package, CPU MuJoCo) as
gymnasium Envs with MetaCURE's success-only sparse reward; ``host_bridge`` turns such host Envs into the same
traceable ``reset`` / ``step`` (``io_callback``), so ``specs.get("metaworld_reach")`` trains like the others."""
