"""Issue 34's traceback cases: each is now one line on stderr and exit status 2 (in process: `cli.main`)."""
import errno
from pathlib import Path

import pytest

from jaxsuite import cli


def _main(capsys, *args):
    rc = cli.main(list(args))
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("args, needle", [
    (["--set", "batch_size=0"], "'batch_size' must be an integer >= 1, got 0"),
    (["--set", "batch_size=-5"], "'batch_size' must be an integer >= 1, got -5"),
    (["--seed", "-1"], "seed must be an integer in [0, "),
    (["--set", "model.init_weights=(1,2,3)"], "'model.init_weights' must be a tuple of 2 entries"),
    (["--set", "model.channels=('a','b','c')"], "'model.channels' expects a tuple of int"),
    (["--set", "model.depths=(1,1)"], "'model.depths' must be a tuple of 3 entries (one per entry of model.channels)"),
    (["--set", "finetune_steps=0", "--set", "pretrain.steps=0"], "must not both be 0: nothing would be trained"),
    (["--set", "optim.lr=1e999"], "'optim.lr' must be a finite number > 0.0, got inf"),
    (["--set", "model.pool_strides=(8,8,8)"], "building variant nddr failed with this config (ValueError: pool_stride "
                                               "must be 1 or 2, got 8); check config key 'model.pool_strides'"),
])
def test_bad_values_are_one_line(tmp_path, capsys, args, needle):
    rc, lines = _main(capsys, "run", "nddr", "--check", "--workdir", str(tmp_path / "w"), *args)
    assert rc == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not (tmp_path / "w" / "identity.json").exists()


def test_a_preset_with_a_syntax_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("def get_config(:\n    pass\n")
    rc, lines = _main(capsys, "run", "nddr", "--check", "--preset", str(bad), "--workdir", str(tmp_path / "w"))
    assert rc == 2 and len(lines) == 1 and f"config file {bad} has a syntax error at line 1" in lines[0]
    raising = tmp_path / "raising.py"
    raising.write_text("def get_config():\n    return 1 / 0\n")
    rc, lines = _main(capsys, "run", "nddr", "--check", "--preset", str(raising), "--workdir", str(tmp_path / "w"))
    assert rc == 2 and len(lines) == 1 and "ZeroDivisionError" in lines[0]


def test_unusable_workdirs_are_one_line(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for workdir, reason in ((afile / "run", "Not a directory"), (Path("/proc/jaxsuite-test"), "No such file")):
        rc, lines = _main(capsys, "run", "nddr", "--check", "--workdir", str(workdir))
        assert rc == 2 and len(lines) == 1 and f"workdir {workdir} is not usable ({reason}" in lines[0], lines

    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)  # a read-only mount, without mounting one
    rc, lines = _main(capsys, "run", "nddr", "--check", "--workdir", str(tmp_path / "ro"))
    assert rc == 2 and len(lines) == 1 and "is not usable (Read-only file system" in lines[0]


def test_reproduce_without_seeds_or_variants_is_one_line(tmp_path, capsys):
    rc, lines = _main(capsys, "reproduce", "nddr", "--check", "--seeds", "", "--out", str(tmp_path))
    assert rc == 2 and len(lines) == 1 and "--seeds names no seed" in lines[0]
    rc, lines = _main(capsys, "reproduce", "nddr", "--check", "--set", "variants=()", "--out", str(tmp_path))
    assert rc == 2 and len(lines) == 1 and "'variants' must name each variant to run once" in lines[0]
