"""The CAS evaluator learns real digits and is at chance on shuffled labels."""
import numpy as np

from jaxsuite.methods.pate_triplegan import cas, data


def test_cas_on_real_and_on_shuffled_labels():
    d = data.load("digits", test_size=360, labeled_fraction=1.0)
    p, t = d["private"], d["test"]
    real = cas.cas_accuracy(p["x"], p["y"], t["x"], t["y"], 10, steps=300, channels=(8, 16), hidden=32)
    shuffled = np.random.default_rng(0).permutation(p["y"])
    noise = cas.cas_accuracy(p["x"], shuffled, t["x"], t["y"], 10, steps=300, channels=(8, 16), hidden=32)
    assert real > 0.9 and noise < 0.3
