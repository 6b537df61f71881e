"""Ranges and shapes of the NDDR-CNN config keys (checked by jaxsuite.core.schema before anything runs; the rules
every method shares -- positive batch sizes, non-negative step counts and seeds -- apply too)."""
from jaxsuite.core.schema import Check, Choice, Float, Int, Tuple

SCHEMA = {
    "dataset": Choice("multi_digits", "multi_mnist", "shapes_dense", "nyuv2"),
    "data.n_train": Int(min=1),
    "data.n_test": Int(min=1),
    "data.n_val": Int(min=0),
    "data.val_fraction": Float(min=0.0, max=0.9),
    "data.image_size": Int(min=8),
    "model.kind": Choice("multi_column", "hard_sharing"),
    "model.fusion": Choice("nddr", "cross_stitch", "none"),
    "model.nddr_init": Choice("constant", "xavier"),
    "model.init_weights": Tuple(Float(min=0.0), len=2),  # (alpha, beta): the own and the other tasks' weight
    "model.nddr_bn_epsilon": Float(above=0.0),
    "model.channels": Tuple(Int(min=1), min_len=1),
    "model.depths": Tuple(Int(min=1), same_len_as="model.channels"),
    "model.pool_strides": Tuple(Int(min=1), same_len_as="model.channels"),
    "model.dilations": Tuple(Int(min=1), same_len_as="model.channels"),
    "model.head_hidden": Int(min=1),
    "model.head_dilation": Int(min=1),
    "model.dropout": Float(min=0.0, max=0.99),
    "model.bn_momentum": Float(min=0.0, max=1.0),
    "optim.lr": Float(above=0.0),
    "optim.momentum": Float(min=0.0, max=1.0),
    "optim.poly_power": Float(min=0.0),
    "optim.weight_decay": Float(min=0.0),
    "optim.fusion_lr_mult": Float(min=0.0),
    "optim.head_w_lr_mult": Float(min=0.0),
    "optim.head_b_lr_mult": Float(min=0.0),
    "pretrain.lr": Float(above=0.0),
    "hard_sharing_lr": Float(above=0.0),
    "loss.normals_weight": Float(min=0.0),
}

CHECKS = [
    Check(("data.val_fraction", "data.n_val"),
          lambda c: c.dataset not in ("multi_digits", "multi_mnist") or c.data.val_fraction > 0 or c.data.n_val == 0,
          "validation canvases need source digits: val_fraction must be > 0 when n_val > 0"),
    Check(("pretrain.steps", "finetune_steps"), lambda c: c.pretrain.steps + c.finetune_steps > 0,
          "must not both be 0: nothing would be trained"),
]
