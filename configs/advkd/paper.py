"""Adv-KD paper preset: the official code's settings (kidist-amde/Adv-KD, src/prodm/kdgan_training.py,
models/proddpm_student.py, data/generate_sample.py) on a CelebA-HQ-style image folder at 256x256.

The official teacher is google/ddpm-celebahq-256 (1000 steps, linear betas 1e-4..0.02); there is no importer for
diffusers checkpoints here, so this preset trains a teacher of that architecture (DDPM's CelebA-HQ UNet: 128
channels, multipliers 1,1,2,2,4,4, two residual blocks per level, attention at 16x16) -- weeks of accelerator time.
20,000 trajectories recorded after steps 1, 101, ..., 901 and 1000; an 11-sub-module student from 4x4 noise to
256x256; per stage s a fresh discriminator, 10 (s + 1) epochs, batch 64 (s < 8), 32 (s = 8), 16 (s > 8), Adam 1e-4
with betas (0.5, 0.999), GP weight 10, D weights clipped to +-0.1, no regression term.

``data.root`` must hold train/<class>/ and test/<class>/ folders (5% of train/ is held out for validation,
``data.val_fraction``; FD is reported on test/); the FD classifier needs two or more classes (e.g.
CelebA-HQ split by an attribute); FID with Inception features is not built here.
"""
from ml_collections import ConfigDict

VARIANTS = ("advkd_student", "regression_student", "regression_ddim", "teacher_full", "teacher_few_steps")
TRAJECTORIES = 20_000
BATCH = (64,) * 8 + (32, 16, 16)


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.kind = "adversarial"
    c.data = ConfigDict({"name": "imagefolder", "image_size": 256, "channels": 3, "num_classes": 2,
                         "test_fraction": 0.0, "val_fraction": 0.05, "split_seed": 0, "root": ""})
    c.teacher = ConfigDict({
        "steps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "ema": 0.9999, "train_steps": 500_000, "batch_size": 64,
        "seed": 0,
        "unet": ConfigDict({"base": 128, "mults": (1, 1, 2, 2, 4, 4), "num_res_blocks": 2, "attn_resolutions": (16,),
                            "patch": 1}),
        "optim": ConfigDict({"lr": 2e-5, "warmup_steps": 5000, "final_lr_ratio": 1.0, "grad_clip": 1.0}),
    })
    c.trajectories = ConfigDict({"num": TRAJECTORIES, "val_num": 1024, "chunk": 64, "record_after": (1,) + tuple(range(101, 1000, 100))
                                 + (1000,)})
    c.student = ConfigDict({
        "input_size": 4,
        "channels": ((16,), (16,), (32, 32), (32, 32), (64, 64), (64, 64), (128, 128), (128, 128), (128, 128),
                     (128, 128), (128, 128)),
        "upsample": (True, False) * 5 + (True,), "bn_momentum": 0.9,
    })
    c.distill = ConfigDict({
        "stage_steps": tuple(10 * (s + 1) * (TRAJECTORIES // BATCH[s]) for s in range(11)), "batch_size": BATCH,
        "gp_weight": 10.0, "gp_examples": 0, "regression_weight": 0.0, "d_weight_clip": 0.1, "ndf": 32, "max_ch": 128, "hidden": 128,
        # the regression students' generator lr per kind (official: the same 1e-4; 0 = g_lr)
        "optim": ConfigDict({"g_lr": 1e-4, "d_lr": 1e-4, "b1": 0.5, "b2": 0.999,
                             "regression_g_lr": ConfigDict({"regression": 1e-4, "regression_ddim": 1e-4})}),
    })
    c.fd = ConfigDict({"features": 128, "lr": 1e-3, "train_steps": 5000, "batch_size": 64, "seed": 0})
    c.eval = ConfigDict({"num_samples": 10_000, "val_samples": 5000, "chunk": 100})
    c.checkpoint_every = 2000
    c.keep_checkpoints = 2
    c.log_every = 100
    c.variant = "advkd_student"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
