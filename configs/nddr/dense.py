"""NDDR-CNN on shapes_dense: the paper's two NYUv2 tasks (40-class segmentation -> 5 classes here, and
surface normals) on 64x64 ray-cast scenes; reports mIoU, pixel accuracy and normal-angle metrics."""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("nddr", "quick")
    with c.unlocked():
        c.dataset = "shapes_dense"
        c.data.update({"n_train": 2000, "n_val": 400, "n_test": 400, "image_size": 64, "seed": 0})
        c.model.update({"channels": (8, 16, 32), "depths": (1, 1, 1), "pool_strides": (2, 2, 2),
                        "dilations": (1, 1, 1), "head_hidden": 32, "head_dilation": 2, "dropout": 0.1})
        c.pretrain.update({"steps": 600, "lr": 0.02})
        c.hard_sharing_lr = 0.02
        c.optim.lr = 0.01  # as before the quick preset's lr was re-chosen on validation (not tuned for dense)
        c.finetune_steps = 600
        c.batch_size = 16
        c.eval_batch_size = 100
        c.variants = ("nddr", "single_task", "cross_stitch")
    return c
