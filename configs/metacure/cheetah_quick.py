"""MetaCURE cheetah_quick preset: a smoke-scale run on MJX cheetah_vel_sparse (100 training / 30 held-out target
velocities, horizon 64), one exploration episode then the exploiter's (official meta_episode_len 1), the official
cheetah settings (latent 2, reward_scale 10, discount 0.99) at CPU scale: 4 tasks per iteration, 20 gradient
steps, 30 iterations. It shows the pipeline end to end on MuJoCo physics; it is far too short to learn the task
(the official run is 5000 iterations x 1000 steps). Validation: 10 of the 100 training velocities held out
(``val``); test: the 30 held-out ones. rl2 collects 8 trials per PPO iteration: 15 iterations, the same env steps
as MetaCURE's 30 x 4 trials. 3 seeds (the quick preset's 5 would not fit): on 2 CPU cores most of a run is XLA
compiling the MJX rollouts, once per variant (its programs differ) and shared by its seeds."""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("metacure", "quick")
    c.unlock()
    c.env.name = "cheetah_vel_sparse"
    c.explore.episodes = 1
    c.model.latent = 2
    c.train.update({"reward_scale": 10.0, "discount": 0.99, "prediction_scale": 1.0, "meta_batch": 4,
                    "grad_meta_batch": 4, "grad_steps": 20})
    c.buffer.update({"contexts": 10, "exploit_episodes": 10})
    c.rl2.trials = 8
    c.iterations = 30
    c.eval.rollouts = 1
    c.seeds = (0, 1, 2)
    c.checkpoint_every = 10
    c.log_every = 5
    c.lock()
    return c
