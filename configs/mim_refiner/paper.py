"""MIM-Refiner paper preset (Alkin et al. 2024, Sec. 4.1 and the official src/yamls/stage{2,3}/l16_mae.yaml):
ViT-L/16 from an MAE checkpoint, ImageNet-1K from a user folder (`--set data.root=/path/imagenet` with
train/<class>/ and test/<class>/), heads on blocks 16-22 (0-indexed) and the final output, 20 + 30 epochs.

The checkpoint: `--set mae.checkpoint=/path/mae_pretrain_vit_large.pth` (the official MAE release; timm layout).
For data2vec 2.0 (post-norm, embedding norm): `--set model.norm=post --set model.embed_norm=True` and the
fairseq checkpoint; its temperature is 0.2 as well, H/14 uses 0.3 and blocks 20-30.
"""
import importlib.util
from pathlib import Path

from ml_collections import ConfigDict

_spec = importlib.util.spec_from_file_location("mim_refiner_quick", Path(__file__).with_name("quick.py"))
_quick = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quick)

IMAGENET_TRAIN = 1_281_167
BATCH = 1024


def get_config() -> ConfigDict:
    c = _quick.get_config()
    c.data = ConfigDict({"name": "imagefolder", "image_size": 224, "test_fraction": 0.0, "split_seed": 0,
                         "val_fraction": 0.01, "root": ""})  # validation: 1% of train (about 12.8k images)
    c.model = ConfigDict({"patch_size": 16, "in_chans": 3, "dim": 1024, "depth": 24, "heads": 16,
                          "num_registers": 0, "norm": "pre", "embed_norm": False, "dtype": "bfloat16"})
    c.mae.checkpoint = ""  # required here: the path of the MIM model to refine
    epoch = IMAGENET_TRAIN // BATCH
    c.refine.head_blocks = (-1, 22, 21, 20, 19, 18, 17, 16)
    c.refine.head = ConfigDict({"proj_hidden": 2048, "proj_hidden_layers": 1, "out_dim": 256, "pred_hidden": 4096})
    c.refine.queue_size = 65536
    c.refine.temperature = 0.2
    c.refine.stage2_topk = 1
    c.refine.stage3_topk = 20
    c.refine.ema = 0.9999
    c.refine.stage2_steps = 20 * epoch
    c.refine.stage3_steps = 30 * epoch
    c.refine.optim = ConfigDict({"lr": 4e-4, "warmup_fraction": 4 / 30, "encoder_weight_decay": 0.05,
                                 "head_weight_decay": 1e-5, "layer_decay": 0.65})
    c.aug = ConfigDict({"num_global": 2, "global_size": 224, "global_scale": (0.25, 1.0), "num_local": 10,
                        "local_size": 96, "local_scale": (0.05, 0.25), "strength": 1.0})
    c.eval.knn_k = 20
    c.batch_size = BATCH
    c.checkpoint_every = 1000
    c.variants = ("refined_multi", "refined_single", "mae_last", "mae_best_block")
    return c
