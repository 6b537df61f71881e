"""A reproduce run resumes its own checkpoints only: a changed config starts the run afresh."""
import json

import pytest

from jaxsuite.core.errors import UserError
from jaxsuite.core.runner import _claim_workdir


def test_a_workdir_is_kept_for_its_config_and_cleared_for_another(tmp_path):
    workdir = tmp_path / "runs" / "variant" / "seed0"
    config = {"dp": {"clipping": "ghost"}, "sizes": [1, 2]}
    _claim_workdir(workdir, config)
    (workdir / "checkpoint").write_text("step 10")
    _claim_workdir(workdir, json.loads(json.dumps(config)))  # same config: a stopped run resumes
    assert (workdir / "checkpoint").exists()
    _claim_workdir(workdir, {**config, "dp": {"clipping": "vmap"}})  # another config: from scratch
    assert not (workdir / "checkpoint").exists()
    assert json.loads((workdir / "config.json").read_text())["dp"] == {"clipping": "vmap"}


def test_a_workdir_without_a_stamp_is_not_resumed(tmp_path):
    workdir = tmp_path / "seed0"
    workdir.mkdir()
    (workdir / "checkpoint").write_text("from an older version")
    _claim_workdir(workdir, {"a": 1})
    assert not (workdir / "checkpoint").exists()


def test_jaxsuite_run_refuses_a_workdir_of_another_config_naming_the_keys(tmp_path):
    workdir = tmp_path / "seed0"
    _claim_workdir(workdir, {"dp": {"clipping": "ghost"}, "lr": 1.0}, on_change="error")
    (workdir / "checkpoint").write_text("step 10")
    with pytest.raises(UserError, match="dp.clipping"):
        _claim_workdir(workdir, {"dp": {"clipping": "vmap"}, "lr": 1.0}, on_change="error")
    assert (workdir / "checkpoint").exists()  # the user's folder is left alone
