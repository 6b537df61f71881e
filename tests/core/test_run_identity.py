"""Issue 34's silent wrong results: a stale shared phase, a workdir of another run, data altered on disk.
Each now gives the correct result (the stale phase retrained) or a one-line refusal with exit status 2."""
import json
import shutil

import pytest

from jaxsuite import cli
from jaxsuite.core import runner
from jaxsuite.core.errors import DataCorruptError
from tests.helpers import sets

# A tiny NDDR run: a few steps of each phase on 64 multi_digits canvases.
TINY = ["data.n_train=64", "data.n_test=32", "model.channels=(4,4,4)", "model.head_hidden=8", "batch_size=16",
        "eval_batch_size=32", "pretrain.steps=6", "finetune_steps=2", "log_every=1"]
SINGLE = ["variants=('single_task',)"]


def _main(capsys, *args):
    rc = cli.main(list(args))
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def test_a_changed_setting_retrains_the_shared_pretraining(tmp_path):
    """Case 1: reproduce into the same OUT with another pretrain.lr must not reuse the first run's pretraining."""
    first = runner.reproduce("nddr", "quick", TINY + SINGLE, seeds=[0], out=tmp_path / "out", progress=False)
    again = runner.reproduce("nddr", "quick", TINY + SINGLE + ["pretrain.lr=0.002"], seeds=[0], out=tmp_path / "out",
                             progress=False)
    fresh = runner.reproduce("nddr", "quick", TINY + SINGLE + ["pretrain.lr=0.002"], seeds=[0],
                             out=tmp_path / "fresh", progress=False)
    pre = lambda p: p["extra"]["single_task_pretrain"]  # noqa: E731
    assert pre(again) == pre(fresh) and pre(again) != pre(first)
    assert again["variants"]["single_task"]["mean_accuracy"] == fresh["variants"]["single_task"]["mean_accuracy"]
    assert len(list((tmp_path / "out" / "nddr" / "shared" / "pretrain").glob("seed0-*"))) == 2
    md = (tmp_path / "out" / "nddr" / "results.md").read_text()
    assert "--set pretrain.lr=0.002" in md and "single_task (1 of 7)" in md


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished nddr seed-0 run in its workdir."""
    workdir = tmp_path_factory.mktemp("run") / "A"
    config = runner.load_config("nddr", "quick", TINY)
    runner.run_one("nddr", config, "nddr", 0, workdir, progress=False)
    return workdir


@pytest.mark.parametrize("args, field", [(["--variant", "nddr_lr1"], "variant"), (["--seed", "1"], "seed"),
                                         (["--variant", "cross_stitch"], "variant"),
                                         (["--set", "optim.lr=0.037"], "config.optim.lr")])
def test_run_refuses_a_workdir_of_another_run(finished_run, capsys, args, field):
    """Case 2: another variant, seed or setting on a finished workdir is refused, naming the field."""
    stamp = (finished_run / "identity.json").read_text()
    rc, lines = _main(capsys, "run", "nddr", "--quiet", *sets(*TINY), "--workdir", str(finished_run), *args)
    assert rc == 2 and len(lines) == 1 and "holds another run" in lines[0] and field in lines[0], lines
    assert (finished_run / "identity.json").read_text() == stamp


def test_the_same_run_is_resumed_and_a_failed_check_stamps_nothing(finished_run, tmp_path, capsys):
    rc, _ = _main(capsys, "run", "nddr", "--quiet", "--check", *sets(*TINY), "--workdir", str(finished_run))
    assert rc == 0
    fresh = tmp_path / "B"
    rc, lines = _main(capsys, "run", "nddr", "--quiet", *sets(*TINY, "batch_size=0"), "--workdir", str(fresh))
    assert rc == 2 and "batch_size" in lines[0]
    assert not (fresh / "identity.json").exists()
    rc, _ = _main(capsys, "run", "nddr", "--quiet", "--check", *sets(*TINY), "--workdir", str(fresh))
    assert rc == 0  # the corrected command is not refused


def test_a_run_of_a_stamped_workdir_reports_the_summed_train_seconds(finished_run):
    identity = json.loads((finished_run / "identity.json").read_text())
    assert identity["method"] == "nddr" and identity["seed"] == 0 and identity["code"]
    assert json.loads((finished_run / "finetune" / "train_seconds.json").read_text())


@pytest.fixture
def data_copy(tmp_path, monkeypatch, shared_data):
    root = tmp_path / "data"
    for name in ("planetoid", "mnist"):
        shutil.copytree(shared_data / name, root / name)
    monkeypatch.setenv("JAXSUITE_DATA", str(root))
    return root


def _flip(path, offsets):
    data = bytearray(path.read_bytes())
    for i in offsets:
        data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_altered_planetoid_labels_are_refused_and_listed_as_bad(data_copy, capsys):
    """Case 3: label bytes flipped in ind.cora.ally: the run is refused (exit 2) and `list` shows the file bad."""
    from jaxsuite.methods.exgrg import experiment

    ally = data_copy / "planetoid" / "ind.cora.ally"
    _flip(ally, range(200, 210))
    config = runner.load_config("exgrg", "quick", ["datasets=('cora',)"])
    with pytest.raises(DataCorruptError, match="ind.cora.ally.*jaxsuite data fetch planetoid"):
        experiment.check_data(config)
    rc, lines = _main(capsys, "run", "exgrg", "--check", "--set", "datasets=('cora',)",
                      "--workdir", str(data_copy.parent / "w"))
    assert rc == 2 and len(lines) == 1 and "ind.cora.ally" in lines[0]
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "bad sha256: ind.cora.ally" in out


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_damaged_mnist_file_is_one_line_exit_2(data_copy, capsys, damage):
    gz = data_copy / "mnist" / "t10k-labels-idx1-ubyte.gz"
    if damage == "truncate":
        gz.write_bytes(gz.read_bytes()[:1000])
    elif damage == "flip":
        _flip(gz, [500])
    else:
        gz.write_bytes(b"not a gzip file at all")
    rc, lines = _main(capsys, "run", "nddr", "--check", *sets("dataset=multi_mnist"),
                      "--workdir", str(data_copy.parent / "w"))
    assert rc == 2 and len(lines) == 1 and "t10k-labels-idx1-ubyte.gz" in lines[0]
    assert "jaxsuite data fetch mnist" in lines[0]


def test_an_unpinned_damaged_gz_is_one_line(tmp_path):
    from jaxsuite.data.mnist import read_idx

    bad = tmp_path / "x-idx1-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataCorruptError, match="cannot be read"):
        read_idx(bad)
