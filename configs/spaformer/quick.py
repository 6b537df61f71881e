"""SPAFormer quick preset: proc_furniture, 7 training categories (chair, table, shelf, cabinet, lamp, bed, bench;
2 to 20 parts) and the held-out stool category; 64 points per part; a 2-layer, d-96 post-LN encoder; every
variant x 3 seeds on 2 CPU cores in under 15 minutes."""
from ml_collections import ConfigDict

VARIANTS = ("spaformer_parallel", "spaformer_autoregressive", "no_sequence", "no_knowledge", "dgl_baseline")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.data = ConfigDict({
        "name": "proc_furniture", "root": "",
        "categories": ("chair", "table", "shelf", "cabinet", "lamp", "bed", "bench"), "heldout": ("stool",),
        "train_per_category": 200, "test_per_category": 30, "heldout_count": 50,
        "num_points": 32, "max_parts": 20, "order": "diagonal", "seed": 0,
    })
    c.model = ConfigDict({
        "kind": "spaformer", "autoregressive": False, "use_groups": True, "use_sequence": True,
        "part_type_dims": 0, "ar_layers": 1, "ar_pose_noise": 0.02, "ar_passes": 2,
        "point_widths": (32, 64), "point_out": 64, "mlp_widths": (64,),
        "dim": 96, "layers": 2, "heads": 4, "ffn": 192, "dropout": 0.0, "head_hidden": 64,
    })
    c.dgl = ConfigDict({"iterations": 2, "hidden": 64})
    c.loss = ConfigDict({"trans": 1.0, "rot_cd": 10.0, "shape_cd": 1.0, "match_points": 16, "loss_points": 32})
    # decay_every / steps in optimiser steps; *_epochs > 0 instead counts epochs of the training split
    c.optim = ConfigDict({"lr": 1e-3, "weight_decay": 1e-5, "decay_every": 300, "decay_every_epochs": 0,
                          "decay_rate": 0.8, "grad_clip": 1.0})
    c.train = ConfigDict({"steps": 500, "epochs": 0, "batch_size": 16})
    c.eval = ConfigDict({"batch_size": 70, "pa_threshold": 0.01, "ca_threshold": 0.01})
    c.checkpoint_every = 400
    c.keep_checkpoints = 2
    c.log_every = 50
    c.variant = "spaformer_parallel"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
