"""MetaCURE quick preset: sparse_point_robot (the official 40 training / 20 held-out goals on the unit semicircle,
horizon 32; 10 of the 40 are held out of training as validation goals, the 20 are the test goals, read once at the
end of a run), 3 exploration episodes then the exploiter's, every variant x 5 seeds, sized for 2 CPU cores: 640
iterations x 30 gradient steps (19,200 steps, against the official 3000 x 1000), each step on 2 tasks (official 16).
A gradient step's cost grows with its tasks, so at this compute budget many small steps learn faster than few large
ones: the earlier 160 iterations x 30 steps on 8 tasks (the same task-steps) gave metacure a lower validation success
(0.40 against 0.53, seeds 0-2; methods/metacure/README.md). 5 seeds: 10 would take about an hour on 2 cores
(5 variants x about 75 s a run); the README adds a rerun on seeds 5-9. The official point robot settings
(configs/metacure/paper.py) differ in scale too: 3x300 networks, the SNAIL encoder, Adam 3e-4; here 2x64 networks, a minGRU encoder (one associative scan
per context; a SNAIL rollout step re-encodes the whole context) and Adam 1e-3."""
from ml_collections import ConfigDict

VARIANTS = ("metacure", "metacure_lambda0", "pearl", "random_explorer", "rl2")


def get_config() -> ConfigDict:
    c = ConfigDict()
    # env.name: a task of jaxsuite/envs/specs.py (sparse_point_robot; cheetah_vel_sparse, ant_goal_sparse,
    # walker_rand_params on MJX; metaworld_reach, metaworld_reach_wall: Meta-World ML1 through host callbacks);
    # env.horizon: steps per episode, 0 for the env's own (32 here; Meta-World 150)
    c.env = ConfigDict({"name": "sparse_point_robot", "horizon": 0})
    # exploration before the exploiter's episode (official meta_episode_len: 3 point/ant/walker, 1 cheetah)
    c.explore = ConfigDict({"mode": "explorer", "episodes": 3})
    # latent 5 (official, point robot); hidden: the SAC/predictor MLPs (official 3x300)
    # snail: (filters, key size, value size, TC + attention stages) of the SNAIL encoder, official (16, 32, 32, 2)
    c.model = ConfigDict({"encoder": "min_gru", "latent": 5, "hidden": (64, 64), "encoder_hidden": 64,
                          "snail": (16, 32, 32, 2)})
    c.intrinsic = ConfigDict({"weight": 0.2, "dynamics": False})  # lambda; the next-state term of r_int
    # official point robot: reward_scale 100, discount 0.9, kl_lambda 1e-3, tau 0.005, prediction_reward_scale 10
    # (the predictors' loss weight), Adam 3e-4 (here 1e-3: twenty thousand gradient steps instead of millions)
    c.train = ConfigDict({"lr": 1e-3, "reward_scale": 100.0, "discount": 0.9, "tau": 0.005, "kl_lambda": 1e-3,
                          "prediction_scale": 10.0, "meta_batch": 8, "grad_meta_batch": 2, "batch_size": 64,
                          "grad_steps": 30})
    c.buffer = ConfigDict({"contexts": 40, "exploit_episodes": 40})  # per task, in episodes
    c.iterations = 640
    c.eval = ConfigDict({"rollouts": 4})  # meta-test rollouts per validation / test task
    # validation goals: val.tasks of the official training goals, drawn by val.seed, never trained on; every choice
    # and every evaluation during a run (every eval_every iterations; 0: none) reads them (methods/metacure/goals.py)
    c.val = ConfigDict({"tasks": 10, "seed": 0})
    c.eval_every = 0
    # "metacure" (MetaCURE, PEARL and the ablations: train.py) or "rl2" (rl2_train.py; the rl2 variant sets it)
    c.algorithm = "metacure"
    # RL² (Duan et al. 2016) with PPO + GAE, untuned PPO defaults: GRU width, Adam lr, discount, GAE lambda, clip
    # epsilon, PPO epochs and minibatches (of whole trials) per iteration, loss weights, global-norm clip, the
    # initial log std, the weight of the K exploration episodes' rewards in the return (1: RL²; 0: E-RL²) and
    # whether the meta-test acts with the mean action (False: sampled, RL²'s exploration is its sampling).
    # trials: one trial (K + 1 episodes on a task) per task per iteration; the iterations follow from MetaCURE's
    # env steps (iterations x train.meta_batch trials), so rl2 gets the same env-step budget
    c.rl2 = ConfigDict({"trials": 16, "hidden": 64, "lr": 1e-3, "discount": 0.99, "gae_lambda": 0.95, "clip": 0.2,
                        "epochs": 4, "minibatches": 4, "value_coef": 0.5, "entropy_coef": 0.0,
                        "max_grad_norm": 0.5, "init_log_std": 0.0, "explore_reward_weight": 1.0,
                        "deterministic_eval": False})
    # per-env settings applied over these when env.name matches (the paper preset has one per task)
    c.overlays = ConfigDict({})
    c.checkpoint_every = 80
    c.keep_checkpoints = 2
    c.log_every = 10
    c.variant = "metacure"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2, 3, 4)
    return c
