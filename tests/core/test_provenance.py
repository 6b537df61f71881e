"""Code fingerprints (jaxsuite/core/provenance.py): which files they cover, and current / stale."""
import subprocess

import pytest

from jaxsuite.core import provenance
from jaxsuite.core.provenance import _Tree, digest_of, fingerprint_files


def make_tree(root):
    files = {
        "jaxsuite/__init__.py": "",
        "jaxsuite/core/__init__.py": "",
        "jaxsuite/core/util.py": "from jaxsuite.core import other\n",
        "jaxsuite/core/other.py": "X = 1\n",
        "jaxsuite/core/lazy.py": "Y = 2\n",
        "jaxsuite/core/unused.py": "Z = 3\n",
        "jaxsuite/nn/__init__.py": "",
        "jaxsuite/nn/cnn.py": "import numpy\n",
        "jaxsuite/methods/__init__.py": "",
        "jaxsuite/methods/foo/__init__.py": "",
        "jaxsuite/methods/foo/experiment.py": ("from jaxsuite.core import util\nfrom . import model\n"
                                               "def run():\n    import jaxsuite.core.lazy\n"),
        "jaxsuite/methods/foo/model.py": "from ...nn.cnn import CNN\n",
        "jaxsuite/methods/foo/README.md": "numbers\n",
        "jaxsuite/methods/bar/experiment.py": "",
        "configs/foo/quick.py": "def get_config(): pass\n",
        "configs/bar/quick.py": "",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_fingerprint_covers_the_package_its_configs_and_what_they_import(tmp_path):
    tree = _Tree(make_tree(tmp_path))
    assert sorted(fingerprint_files("foo", tree)) == [
        "configs/foo/quick.py", "jaxsuite/__init__.py", "jaxsuite/core/__init__.py", "jaxsuite/core/lazy.py",
        "jaxsuite/core/other.py", "jaxsuite/core/util.py", "jaxsuite/methods/__init__.py",
        "jaxsuite/methods/foo/__init__.py", "jaxsuite/methods/foo/experiment.py", "jaxsuite/methods/foo/model.py",
        "jaxsuite/nn/__init__.py", "jaxsuite/nn/cnn.py"]


@pytest.mark.parametrize("rel,changes", [("jaxsuite/core/other.py", True), ("configs/foo/quick.py", True),
                                         ("jaxsuite/core/unused.py", False), ("jaxsuite/methods/foo/README.md", False),
                                         ("jaxsuite/methods/bar/experiment.py", False)])
def test_fingerprint_changes_only_with_the_code_it_covers(tmp_path, rel, changes):
    root = make_tree(tmp_path)
    before = digest_of(fingerprint_files("foo", _Tree(root)))
    (root / rel).write_text((root / rel).read_text() + "# edited\n")
    assert (digest_of(fingerprint_files("foo", _Tree(root))) != before) == changes


def test_nddr_fingerprint_names_its_imports_and_no_other_method():
    files = provenance.fingerprint("nddr")["files"]
    assert {"jaxsuite/methods/nddr/train.py", "configs/nddr/quick.py", "jaxsuite/core/loop.py",
            "jaxsuite/nn/cnn.py"} <= set(files)
    assert not [f for f in files if f.startswith("jaxsuite/methods/") and f.count("/") > 2
                and not f.startswith("jaxsuite/methods/nddr/")]
    assert not [f for f in files if f.endswith(".md")]


def test_freshness_current_stale_and_derived_from_the_commit():
    now = provenance.fingerprint("nddr")
    assert provenance.freshness({"method": "nddr", "fingerprint": now})["status"] == "current"
    old = {"digest": "x", "files": {**now["files"], "jaxsuite/core/loop.py": "0"}}
    fresh = provenance.freshness({"method": "nddr", "git_commit": "abc", "fingerprint": old})
    assert fresh["status"] == "stale" and fresh["changed"] == ["jaxsuite/core/loop.py"]
    assert "produced by abc" in fresh["reason"]
    dirty = provenance.freshness({"method": "nddr", "git_commit": "abc-dirty"})
    assert dirty["status"] == "stale" and "uncommitted" in dirty["reason"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=provenance.ROOT, capture_output=True, text=True).stdout
    if not head.strip():
        pytest.skip("not a git checkout")
    at_head = provenance.fingerprint_at("nddr", head.strip())
    derived = provenance.freshness({"method": "nddr", "git_commit": head.strip()})  # no fingerprint recorded
    assert derived["derived"] and derived["status"] == ("current" if at_head["digest"] == now["digest"] else "stale")
    missing = provenance.freshness({"method": "nddr", "git_commit": "f" * 40})
    assert missing["status"] == "stale" and "not in this repository" in missing["reason"]


def test_record_has_the_command_machine_and_libraries():
    rec = provenance.record("nddr", "quick", [0, 1], ["optim.lr=0.1"], "results")
    assert rec["command"] == "jaxsuite reproduce nddr --preset quick --seeds 0,1 --set optim.lr=0.1 --out results"
    assert rec["machine"]["cpu"] and rec["machine"]["cores"] >= 1 and "cpu" in rec["machine"]["accelerator"]
    assert "jax" in rec["libraries"] and rec["fingerprint"] == provenance.fingerprint("nddr")
