"""NDDR-CNN as in the paper (Sec. 4.1; experiments/VGG16/NDDR.sh): two VGG-16 DeepLab-LargeFOV columns
with BN on NYUv2 (795 train / 654 test, 40 classes + normals), 321x321 inputs, batch 10, SGD momentum
0.9, lr 1e-3 with poly 0.9 decay, 20k steps, weight decay 5e-4, NDDR lr x100, fc8 x10 / x20,
NDDR init (0.9, 0.1), BN decay 0.95, normals loss x20. Needs $JAXSUITE_DATA/nyuv2 and an accelerator.
The single-task networks are trained for 20k steps first (the paper fine-tunes them from ImageNet VGG-16;
we have no ImageNet weights here, so they train from their shared random init -- see the README)."""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("nddr", "quick")
    with c.unlocked():
        c.dataset = "nyuv2"
        c.data.update({"image_size": 321, "val_fraction": 0.1})  # 80 of the 795 train frames held out
        c.model.update({"channels": (64, 128, 256, 512, 512), "depths": (2, 2, 3, 3, 3),
                        "pool_strides": (2, 2, 2, 1, 1), "dilations": (1, 1, 1, 1, 2),
                        "head_hidden": 1024, "head_dilation": 12, "dropout": 0.5, "bn_momentum": 0.95})
        c.optim.update({"lr": 1e-3, "momentum": 0.9, "poly_power": 0.9, "weight_decay": 5e-4,
                        "fusion_lr_mult": 100.0, "head_w_lr_mult": 10.0, "head_b_lr_mult": 20.0})
        c.loss.normals_weight = 20.0
        c.pretrain.update({"steps": 20000, "lr": 1e-3})
        c.hard_sharing_lr = 1e-3
        c.finetune_steps = 20000
        c.batch_size = 10
        c.eval_batch_size = 6
        c.checkpoint_every = 1000
        c.log_every = 100
        c.variants = ("nddr", "nddr_shortcut", "single_task", "hard_sharing", "cross_stitch",
                      "nddr_xavier", "nddr_lr1")
    return c
