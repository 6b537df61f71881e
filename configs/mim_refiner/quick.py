"""MIM-Refiner quick preset: a micro ViT (64 wide, 6 blocks) on MNIST's test split (7k train / 1k validation / 2k test),
a short MAE, then the refiner's stage 2 and stage 3; every variant x 3 seeds on 2 CPU cores."""
from ml_collections import ConfigDict

VARIANTS = ("refined_multi", "refined_single", "mae_last", "mae_best_block", "mae_continued", "raw_pixels")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.kind = "refine"
    # val_fraction: held out of the 8k train part (1k images), never trained on; every tuned choice is made on it
    c.data = ConfigDict({"name": "mnist", "image_size": 28, "test_fraction": 0.2, "val_fraction": 0.125,
                         "split_seed": 0, "root": ""})
    c.model = ConfigDict({"patch_size": 7, "in_chans": 1, "dim": 64, "depth": 6, "heads": 4, "num_registers": 0,
                          "dtype": "float32"})
    c.mae = ConfigDict({"steps": 800, "mask_ratio": 0.75, "norm_pix": True, "dim": 32, "depth": 1, "heads": 2,
                        "crop_scale": (0.5, 1.0),
                        "optim": ConfigDict({"base_lr": 1.5e-3, "weight_decay": 0.05, "warmup_fraction": 0.05})})
    c.refine = ConfigDict({
        "head_blocks": (-1, 4, 3),  # the final output + the last third of the blocks, as the paper's L/16 heads
        "head": ConfigDict({"proj_hidden": 256, "proj_hidden_layers": 1, "out_dim": 64, "pred_hidden": 512}),
        "queue_size": 2048, "temperature": 0.2, "stage2_topk": 1, "stage3_topk": 20, "local_indexing": "fixed",
        "ema": 0.99, "stage2_steps": 50, "stage3_steps": 120,
        "optim": ConfigDict({"lr": 3e-3, "warmup_fraction": 0.1, "encoder_weight_decay": 0.05,
                             "head_weight_decay": 1e-5, "layer_decay": 0.65}),
    })
    # milder than the paper's ImageNet recipe (crops 0.25-1, full BYOL jitter, 10 local crops): at 28x28 and a
    # few hundred steps that recipe keeps the NNA loss at chance (log B); no local crops, to fit the CPU budget
    c.aug = ConfigDict({"num_global": 2, "global_size": 28, "global_scale": (0.5, 1.0), "num_local": 0,
                        "local_size": 14, "local_scale": (0.1, 0.4), "strength": 0.3})
    c.eval = ConfigDict({"block": "final", "knn_k": 20, "knn_tau": 0.07, "linear_steps": 500, "one_shot_draws": 10})
    c.batch_size = 128
    c.checkpoint_every = 200
    c.keep_checkpoints = 2
    c.log_every = 50
    c.variant = "refined_multi"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
