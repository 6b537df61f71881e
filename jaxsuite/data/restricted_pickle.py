"""Reading data pickles without running their code: an unpickler that admits only numpy arrays and Python's
containers (an untrusted pickle may name any callable, e.g. ``os.system``; such a pickle is refused)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from jaxsuite.core.errors import UserError

ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
           ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"), ("collections", "defaultdict")}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise UserError(f"refusing to unpickle {module}.{name}: data pickles may hold only numpy arrays, "
                            "lists and dicts")
        return super().find_class(module, name)


def load(path: Path, what: str, encoding: str = "latin1"):
    """The object in the pickle ``path`` (a ``what``); a clear error naming the file if it is missing, malformed
    or names anything but numpy arrays and containers."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding=encoding).load()
        except UserError as err:
            raise UserError(f"{path}: {err}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError) as err:
            raise UserError(f"{path} is not a valid {what}: {err!r}") from None


def load_npy(path: Path, what: str):
    """The array in the ``.npy`` file ``path``; an object array (a pickled payload, e.g. a dict saved with
    ``np.save``) is read with the restricted unpickler instead of ``np.load(allow_pickle=True)``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            return RestrictedUnpickler(f, encoding="latin1").load()
        except UserError as err:
            raise UserError(f"{path}: {err}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError) as err:
            raise UserError(f"{path} is not a valid {what}: {err!r}") from None
