"""A workdir holds one run identity: the same identity resumes, another is refused (`run`) or cleared
(`reproduce`), and nothing is stamped before the checks pass."""
import json

import pytest

from jaxsuite.core import identity
from jaxsuite.core.errors import UserError

IDENT = {"method": "m", "variant": "v", "seed": 0, "config": {"dp": {"clipping": "ghost"}, "sizes": [1, 2]},
         "data": {}, "code": "abc"}


def test_a_workdir_is_kept_for_its_identity_and_cleared_for_another(tmp_path):
    workdir = tmp_path / "runs" / "variant" / "seed0"
    identity.claim_workdir(workdir, IDENT)
    (workdir / "checkpoint").write_text("step 10")
    identity.claim_workdir(workdir, json.loads(json.dumps(IDENT)))  # same identity: a stopped run resumes
    assert (workdir / "checkpoint").exists()
    other = {**IDENT, "config": {**IDENT["config"], "dp": {"clipping": "vmap"}}}
    identity.claim_workdir(workdir, other)  # another identity: from scratch
    assert not (workdir / "checkpoint").exists()
    assert json.loads((workdir / identity.STAMP).read_text())["config"]["dp"] == {"clipping": "vmap"}


def test_a_workdir_without_a_stamp_is_not_resumed(tmp_path):
    workdir = tmp_path / "seed0"
    workdir.mkdir()
    (workdir / "checkpoint").write_text("from an older version")
    identity.claim_workdir(workdir, IDENT)
    assert not (workdir / "checkpoint").exists()


@pytest.mark.parametrize("field,value", [("seed", 1), ("variant", "w"), ("code", "def"),
                                         ("data", {"mnist/x.gz": "00"})])
def test_jaxsuite_run_refuses_a_workdir_of_another_identity_naming_the_field(tmp_path, field, value):
    workdir = tmp_path / "seed0"
    identity.claim_workdir(workdir, IDENT, on_change="error")
    (workdir / "checkpoint").write_text("step 10")
    with pytest.raises(UserError, match=field):
        identity.claim_workdir(workdir, {**IDENT, field: value}, on_change="error")
    assert (workdir / "checkpoint").exists()  # the user's folder is left alone


def test_jaxsuite_run_refuses_files_without_an_identity(tmp_path):
    (tmp_path / "checkpoint").write_text("step 10")
    with pytest.raises(UserError, match="holds no identity.json"):
        identity.claim_workdir(tmp_path, IDENT, on_change="error")


def test_phase_dir_changes_with_its_spec(tmp_path):
    a = identity.phase_dir(tmp_path, "seed0", {"lr": 0.01}, "nddr")
    assert a == identity.phase_dir(tmp_path, "seed0", {"lr": 0.01}, "nddr")
    assert a != identity.phase_dir(tmp_path, "seed0", {"lr": 0.002}, "nddr")
    with identity.current({**IDENT, "data": {"x": "1"}}):
        assert a != identity.phase_dir(tmp_path, "seed0", {"lr": 0.01}, "nddr")
