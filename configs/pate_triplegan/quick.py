"""PATE-TripleGAN quick preset: scikit-learn's 8x8 digits (embedded; 1,437 private images, 10% labelled, 360 held
out), epsilon 10 at delta 1e-5, every variant x 5 seeds in under 15 minutes on 2 CPU cores. The issue's MNIST
setting (8k private / 2k held-out 28x28 images) is the `mnist` preset, the paper's 60k setting `paper`."""
from ml_collections import ConfigDict

VARIANTS = ("pate_triplegan", "no_pate", "dp_cgan", "pate_gan", "triplegan_nonprivate", "real_data")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.data = ConfigDict({"dataset": "digits", "test_size": 360, "labeled_fraction": 0.1, "num_private": 0})
    c.kind = "pate_triplegan"
    # C: multinomial logistic regression (no conv, no hidden layer): trained by DP-SGD on 144 labels, a 650-parameter
    # C reached about twice the test accuracy of the 16/32-channel CNN it replaced (the noise grows with the square
    # root of the parameter count); the CAS classifier keeps the CNN (c.cas below)
    c.model = ConfigDict({"latent": 16, "g_hidden": (128, 256), "d_hidden": (128,), "c_channels": (),
                          "c_hidden": 0, "num_teachers": 20, "teacher_hidden": (64,)})
    c.gen_batch = 32  # generated pairs per step
    c.real_batch = 8  # private pairs per step of a non-private D / C, and per teacher for each kind of pair
    c.relabel_every = 10  # pate_triplegan: C pre-labels the private images every this many steps
    # alpha_s: C's PATE student term; alpha_p: R_P (Eq. 5) -- off here: on G's early samples it pulled the private
    # C's accuracy down in development runs; pseudo_pairs "real": D and the teachers take (x_u, C(x_u)) as real
    # pairs, so D learns what digits look like from every private image, not only from the labelled 10%
    c.loss = ConfigDict({"alpha": 0.5, "alpha_p": 0.0, "alpha_s": 0.1, "pseudo_pairs": "real"})
    # noise_scale multiplies pate.sigma and the DP-SGD noise multipliers; the _eps1 variants use eps1_noise_scale
    c.privacy = ConfigDict({"epsilon": 10.0, "delta": 1e-5, "noise_scale": 1.0, "eps1_noise_scale": 4.0})
    # GNMax: `queries` answers every `query_every` steps, replayed to the student (C, or pate_gan's D);
    # student_keep "agreeing" would let C learn only the generated images whose GNMax label is G's own (README)
    c.pate = ConfigDict({"sigma": 10.0, "queries": 1, "query_every": 10, "replay": 1024, "student_keep": "all"})
    # DP-SGD: D's expected Poisson batch of all private examples (dp_cgan's D: cgan_expected_batch of the
    # labelled ones) and C's of the labelled ones. C takes a private step (R_L) every `c_every` iterations with its
    # own noise, its public terms every iteration. The batches and noises are the best of a small sweep per private
    # variant (methods/pate_triplegan/README.md). clipping "ghost" (per-example norms without per-example
    # gradients) or "vmap" (its exact reference)
    c.dp = ConfigDict({"clip_norm": 1.0, "noise_multiplier": 4.0, "expected_batch": 128.0,
                       "cgan_expected_batch": 32.0, "c_expected_batch": 64.0, "c_noise_multiplier": 4.0,
                       "c_every": 10, "overflow_delta_share": 0.01, "clipping": "ghost"})
    # C: heavy-ball SGD (Adam's per-coordinate scaling inflates DP noise on the few private steps)
    c.optim = ConfigDict({"lr": 1e-3, "beta1": 0.5, "c_optimizer": "sgd", "c_lr": 0.2, "c_momentum": 0.9})
    # every private variant stops when its budget is spent (the cap is never reached at epsilon 10, so they all
    # spend the same epsilon); the non-private upper bound runs `nonprivate_steps`
    c.steps = 5000
    c.nonprivate_steps = 1000
    # the CAS CNN: its own architecture, whatever the private C's
    c.cas = ConfigDict({"samples": 10000, "steps": 300, "batch_size": 64, "lr": 1e-3, "channels": (16, 32),
                        "hidden": 64})
    c.checkpoint_every = 250
    c.keep_checkpoints = 2
    c.log_every = 50
    c.variant = "pate_triplegan"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2, 3, 4)  # 5 seeds: every variant in about 8 minutes on 2 cores (issue 35: paired intervals)
    return c
