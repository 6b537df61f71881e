"""The private / held-out split: disjoint, deterministic, labelled fraction as asked; MNIST from the shared files."""
import numpy as np
import pytest

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.pate_triplegan import data


@pytest.mark.parametrize("name, n, test_size", [("digits", 1797, 360), ("mnist", 10000, 2000)])
def test_split(name, n, test_size):
    a = data.load(name, test_size=test_size, labeled_fraction=0.1)
    b = data.load(name, test_size=test_size, labeled_fraction=0.1)
    np.testing.assert_array_equal(a["private"]["x"], b["private"]["x"])
    assert len(a["test"]["x"]) == test_size and len(a["private"]["x"]) == n - test_size
    assert a["private"]["labeled"].sum() == round(0.1 * (n - test_size))
    assert a["num_classes"] == 10 and 0.0 <= a["private"]["x"].min() and a["private"]["x"].max() <= 1.0
    # disjoint: no held-out image also sits in the private set (exact duplicates aside)
    priv = {im.tobytes() for im in a["private"]["x"]}
    assert sum(im.tobytes() in priv for im in a["test"]["x"]) <= 5


def test_bad_keys_are_named():
    with pytest.raises(ConfigError, match="data.test_size"):
        data.load("digits", test_size=5000, labeled_fraction=0.1)
    with pytest.raises(ConfigError, match="unknown dataset"):
        data.load("cifar", test_size=10, labeled_fraction=0.1)
