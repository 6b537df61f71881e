"""SPAFormer paper preset: PartNet-Assembly (the official layout under data.root, see
jaxsuite/data/partnet_assembly.py), all 21 categories trained together (the released multitask model), shapes of
at most 20 parts, 1000 points per part; the released network (PointNet 3-64-64-64-128-1024 -> 256 -> MLP 432-432-216
+ 20-d group one-hot + 20-d sequence one-hot = d 256; post-LN encoder, 6 layers, 8 heads, FFN 1024, dropout 0.1)
and training (Adam lr 1.5e-4, weight decay 1e-5, x0.8 every 90 epochs, 900 epochs, batch 64, gradient clip 1,
losses 1 / 10 / 1, matching on 100 points). No held-out category: the paper's zero-shot experiment moves
categories from data.categories to data.heldout."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("spaformer_quick", Path(__file__).with_name("quick.py"))
_quick = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quick)
VARIANTS = _quick.VARIANTS

CATEGORIES = ("Bag", "Bed", "Bottle", "Bowl", "Chair", "Clock", "Dishwasher", "Display", "Door", "Earphone", "Faucet",
              "Hat", "Knife", "Lamp", "Laptop", "Mug", "StorageFurniture", "Refrigerator", "TrashCan", "Vase", "Table")


def get_config():
    c = _quick.get_config()
    c.data.update({"name": "partnet", "root": "", "categories": CATEGORIES, "heldout": (),
                   "train_per_category": 0, "test_per_category": 0, "heldout_count": 0,  # 0: every shape
                   "num_points": 1000, "max_parts": 20, "order": "diagonal"})
    c.model.update({"point_widths": (64, 64, 64, 128, 1024), "point_out": 256, "mlp_widths": (432, 432),
                    "dim": 256, "layers": 6, "heads": 8, "ffn": 1024, "dropout": 0.1, "head_hidden": 256,
                    "ar_layers": 6})
    c.dgl.update({"iterations": 5, "hidden": 256})
    c.loss.update({"match_points": 100, "loss_points": 1000})
    c.optim.update({"lr": 1.5e-4, "weight_decay": 1e-5, "decay_every": 0, "decay_every_epochs": 90,
                    "decay_rate": 0.8, "grad_clip": 1.0})
    c.train.update({"steps": 0, "epochs": 900, "batch_size": 64})
    c.eval.batch_size = 64
    c.checkpoint_every = 2000
    return c
