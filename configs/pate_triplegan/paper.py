"""PATE-TripleGAN at the paper's scale: MNIST's 60k training images private (10% labelled), its 10k test images held
out, every variant at epsilon 10 and at epsilon 1 (variants ending in _eps1), delta 1e-5. The paper's layer sizes,
teacher count, noise and clip are not public (see methods/pate_triplegan/README.md): these follow G-PATE's MNIST
settings where it has them (thousands of teachers). Long; needs the MNIST training files
(`jaxsuite data fetch mnist`) and is not run in CI."""
import importlib.util
from pathlib import Path

from ml_collections import ConfigDict

_spec = importlib.util.spec_from_file_location("pate_triplegan_quick", Path(__file__).with_name("quick.py"))
_quick = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quick)

VARIANTS = _quick.VARIANTS + tuple(f"{v}_eps1" for v in _quick.VARIANTS if v not in ("triplegan_nonprivate",
                                                                                     "real_data"))


def get_config() -> ConfigDict:
    c = _quick.get_config()
    c.data.dataset, c.data.test_size = "mnist_full", 10000
    c.model = ConfigDict({"latent": 100, "g_hidden": (256, 512, 1024), "d_hidden": (512, 256), "c_channels": (32, 64),
                          "c_hidden": 128, "num_teachers": 2000, "teacher_hidden": (64,)})
    c.gen_batch, c.real_batch = 64, 8
    c.pate.sigma, c.pate.queries, c.pate.query_every, c.pate.replay = 100.0, 8, 1, 16384
    c.dp.expected_batch, c.dp.c_expected_batch = 256.0, 64.0
    c.optim.lr = 2e-4
    c.steps = 20000
    c.nonprivate_steps = c.steps
    c.optim.c_optimizer, c.optim.c_lr = "adam", 1e-2  # this CNN C keeps Adam (not run here; quick: linear C, SGD)
    c.cas.channels, c.cas.hidden = (32, 64), 128
    c.cas.steps = 3000
    c.cas.batch_size = 128
    c.variants = VARIANTS
    return c
