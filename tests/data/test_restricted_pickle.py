"""The restricted unpickler for .npy files: object arrays of plain data load, a pickle naming a callable is
refused before it runs (PartNet-Assembly's shape files are such pickles)."""
import os

import numpy as np
import pytest

from jaxsuite.core.errors import UserError
from jaxsuite.data import partnet_assembly, restricted_pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_npy_object_arrays_of_data_load_and_code_is_refused(tmp_path):
    np.save(tmp_path / "ok.npy", {"part_pcs": np.ones((2, 3, 3)), "ids": [1, 2]}, allow_pickle=True)
    np.save(tmp_path / "plain.npy", np.arange(3))
    np.save(tmp_path / "evil.npy", np.array([_Evil()], dtype=object), allow_pickle=True)
    item = restricted_pickle.load_npy(tmp_path / "ok.npy", "shape file").item()
    np.testing.assert_array_equal(item["part_pcs"], np.ones((2, 3, 3)))
    np.testing.assert_array_equal(restricted_pickle.load_npy(tmp_path / "plain.npy", "ids"), np.arange(3))
    with pytest.raises(UserError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        partnet_assembly._load_dict(tmp_path / "evil.npy")
    with pytest.raises(UserError, match="not found"):
        restricted_pickle.load_npy(tmp_path / "missing.npy", "shape file")
