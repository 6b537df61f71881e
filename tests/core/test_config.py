"""Config loading, --set overrides and the CLI's one-line errors (exit status 2, no traceback)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxsuite.core.config import apply_override, load_config
from jaxsuite.core.errors import ConfigError
from tests.helpers import cli


@pytest.mark.parametrize("args, needle", [
    (["run", "nddr", "--set", "no_such_key=1"], "unknown config key 'no_such_key'"),
    (["run", "nddr", "--set", "optim.nope=1"], "unknown config key 'optim.nope'"),
    (["run", "nddr", "--set", "optim.lr=fast"], "config key 'optim.lr' expects float, got 'fast'"),
    (["run", "nddr", "--set", "batch_size=1.5"], "config key 'batch_size' expects int"),
    (["run", "nddr", "--preset", "nope"], "unknown preset 'nope' for method 'nddr'"),
    (["reproduce", "nddr", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "nddr", "--variant", "nope", "--set", "finetune_steps=0"], "unknown variant 'nope'"),
    (["run", "nope"], "unknown method 'nope'"),
    (["run", "nddr", "--set", "dataset=imagenet"], "config key 'dataset' must be one of"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_data_names_file_and_fetch_command(tmp_path):
    proc = cli("run", "nddr", "--set", "dataset=multi_mnist", env={"JAXSUITE_DATA": str(tmp_path)})
    assert proc.returncode == 2
    assert "t10k-images-idx3-ubyte.gz" in proc.stderr and "jaxsuite data fetch mnist" in proc.stderr
    assert str(tmp_path / "mnist") in proc.stderr and "Traceback" not in proc.stderr


def test_overrides_apply_and_keep_types():
    c = load_config("nddr", "quick", ["optim.lr=1", "model.shortcut=true", "model.channels=(2,3,4)",
                                      "dataset=shapes_dense", "pretrain.steps=7"])
    assert c.optim.lr == 1.0 and isinstance(c.optim.lr, float)
    assert c.model.shortcut is True and c.model.channels == (2, 3, 4)
    assert c.dataset == "shapes_dense" and c.pretrain.steps == 7


def test_group_and_form_errors():
    c = load_config("nddr", "quick")
    with pytest.raises(ConfigError, match="is a group"):
        apply_override(c, "optim=3")
    with pytest.raises(ConfigError, match="not of the form key=value"):
        apply_override(c, "optim.lr")
    with pytest.raises(ConfigError, match="expects bool"):
        apply_override(c, "model.shortcut=3")


@given(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_numeric_overrides_round_trip(i, x):
    c = _cached()
    apply_override(c, f"batch_size={i}")
    apply_override(c, f"optim.lr={x!r}")
    assert c.batch_size == i and c.optim.lr == float(x)


_CONFIG = []


def _cached():
    if not _CONFIG:
        _CONFIG.append(load_config("nddr", "quick"))
    return _CONFIG[0]
