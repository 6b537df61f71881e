"""WIP: one PATE-TripleGAN iteration jits, updates every player, and its votes count every teacher once."""
import jax
import numpy as np
from ml_collections import ConfigDict

from jaxsuite.methods.pate_triplegan import data, train
from jaxsuite.privacy import sampling

CFG = ConfigDict({"model": {"latent": 16, "g_hidden": (64,), "d_hidden": (64,), "c_channels": (8, 16), "c_hidden": 32,
                            "num_teachers": 4},
                  "optim": {"lr": 2e-4}, "dp": {"clip_norm": 1.0, "noise_multiplier": 1.0}, "pate": {"sigma": 1.0},
                  "loss": {"alpha": 0.5, "alpha_p": 0.1}})


def test_one_iteration_updates_every_player():
    d = data.load("digits", test_size=360, labeled_fraction=0.1)
    priv, n = d["private"], len(d["private"]["x"])
    state = train.init(CFG, 10, d["image_shape"], 32.0, jax.random.key(0))
    shards = np.array_split(np.arange(n), 4)  # fixed, disjoint
    idx, mask = sampling.poisson_batch(jax.random.key(1), n, 32 / n, 64)
    idx = np.asarray(idx)
    batch = {"teacher_x": np.stack([priv["x"][s[:32]] for s in shards]),
             "teacher_y": np.stack([priv["y"][s[:32]] for s in shards]),
             "x": priv["x"][idx], "y": priv["y"][idx], "labeled": priv["labeled"][idx].astype(np.float32),
             "mask": np.asarray(mask, np.float32)}
    new, metrics = jax.jit(train.train_step)(state, batch)
    np.testing.assert_array_equal(np.asarray(metrics["votes"]).sum(-1), 4)
    for name in ("g", "d", "c", "teachers"):
        before, after = jax.tree.leaves(state.params[name]), jax.tree.leaves(new.params[name])
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), name
        assert all(np.isfinite(np.asarray(a)).all() for a in after)
