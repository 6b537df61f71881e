"""Fuzz the CLI's validation path (`run --check`: config, data, abstract build, workdir; nothing is trained) with
random --set values, presets and workdirs for every method: the answer is exit 0 or a one-line error with exit
status 2, never a traceback."""
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxsuite import cli
from jaxsuite.core import config as config_lib
from jaxsuite.core import registry


@functools.lru_cache(maxsize=None)
def _leaves(method: str, preset: str) -> list[tuple[str, object]]:
    out = []

    def walk(node, prefix=""):
        for k, v in node.items():
            if hasattr(v, "items"):
                walk(v, f"{prefix}{k}.")
            else:
                out.append((prefix + k, v))

    walk(config_lib.load_config(method, preset))
    return out


_SCALARS = st.one_of(
    st.integers(-3, 3), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(alphabet="abcxyz_(),.' 019-", max_size=12), st.none())
_TEXT = st.one_of(
    _SCALARS.map(repr),
    st.lists(_SCALARS, max_size=5).map(lambda xs: repr(tuple(xs))),
    st.sampled_from(["", "()", "(1,)", "[]", "{}", "1e999", "-1e999", "nan", "-0", "0", "-1", "true", "None",
                     "(0, 0, 0)", "('a', 'b', 'c')", "((1, 2), 3)", "__import__('os')", "1,2"]))


def _near(old) -> st.SearchStrategy:
    """Values of the preset value's own type, so the checks past type coercion (ranges, data, build) are reached."""
    if isinstance(old, bool):
        return st.booleans().map(repr)
    if isinstance(old, int):
        return st.one_of(st.integers(-2, 4), st.integers(-10 ** 9, 10 ** 9), st.just(old)).map(repr)
    if isinstance(old, float):
        return st.one_of(st.floats(-10, 10, allow_nan=False), st.sampled_from([0.0, -1.0, 1e30, old])).map(repr)
    if isinstance(old, (tuple, list)) and old and all(type(v) is type(old[0]) for v in old):
        return st.lists(_near(old[0]).map(eval), min_size=max(0, len(old) - 1), max_size=len(old) + 1).map(
            lambda xs: repr(tuple(xs)))
    if isinstance(old, str):
        return st.sampled_from([old, "", "none", "x", old.upper()])
    return _TEXT


def _workdir(kind: str, base) -> str:
    path = base / kind
    if kind == "file":
        path.write_text("not a folder")
        return str(path / "sub")
    if kind == "junk":
        path.mkdir(exist_ok=True)
        (path / "checkpoint").write_text("someone else's")
    if kind == "proc":
        return "/proc/jaxsuite-fuzz"
    return str(path)


@pytest.mark.parametrize("method", sorted(registry.METHODS))
def test_cli_validation_never_tracebacks(method, tmp_path_factory, capsys):
    presets = config_lib.presets(method)
    base = tmp_path_factory.mktemp(method)
    counter = iter(range(10 ** 6))

    @settings(max_examples=30, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def check(data):
        preset = data.draw(st.sampled_from(presets), label="preset")
        key, old = data.draw(st.sampled_from(_leaves(method, preset)), label="key")
        value = data.draw(st.one_of(_near(old), _TEXT), label="value")
        folder = base / str(next(counter))
        folder.mkdir()
        workdir = _workdir(data.draw(st.sampled_from(["new"] * 5 + ["file", "junk", "proc"]), label="workdir"), folder)
        seed = data.draw(st.sampled_from(["0"] * 6 + ["1", "-1", "99999999999"]), label="seed")
        args = ["run", method, "--check", "--quiet", "--preset", preset, "--set", f"{key}={value}",
                "--seed", seed, "--workdir", workdir]
        capsys.readouterr()
        rc = cli.main(args)  # an exception escaping here is the traceback a user would see
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert rc in (0, 2), (args, rc, err)
        if rc == 2:
            assert len(err) == 1 and err[0].startswith("jaxsuite: error: "), (args, err)

    check()
