"""PATE-TripleGAN on the issue's MNIST setting: MNIST's test split, 8k private images (10% labelled), 2k held out;
epsilon 10 at delta 1e-5. Much longer than `quick` (a GPU run); not run in CI."""
import importlib.util
from pathlib import Path

from ml_collections import ConfigDict

_spec = importlib.util.spec_from_file_location("pate_triplegan_quick", Path(__file__).with_name("quick.py"))
_quick = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quick)


def get_config() -> ConfigDict:
    c = _quick.get_config()
    c.data.dataset, c.data.test_size = "mnist", 2000
    c.model = ConfigDict({"latent": 32, "g_hidden": (128, 256), "d_hidden": (64,), "c_channels": (8, 16),
                          "c_hidden": 32, "num_teachers": 100, "teacher_hidden": (32,)})
    c.pate.sigma, c.pate.query_every = 20.0, 10
    c.dp.expected_batch, c.dp.c_expected_batch = 128.0, 32.0
    c.optim.lr = 5e-4
    c.steps = 3000
    c.nonprivate_steps = c.steps
    c.optim.c_optimizer, c.optim.c_lr = "adam", 1e-2  # this CNN C keeps Adam (not run here; quick: linear C, SGD)
    c.cas.channels, c.cas.hidden = (8, 16), 32
    c.cas.steps = 1000
    return c
