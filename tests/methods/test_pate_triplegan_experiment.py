"""A variant runs end to end through experiment.run: budget-limited steps, CAS in [0, 1], the epsilon it spent
(<= the target) for results.json's extra, a sample grid; every variant through reproduce (slow)."""
import json

import pytest

from jaxsuite.core import runner
from jaxsuite.core.config import load_config
from jaxsuite.methods.pate_triplegan import experiment

TINY = ["model.g_hidden=(32,)", "model.d_hidden=(32,)", "model.c_channels=(4,8)", "model.c_hidden=16",
        "model.num_teachers=4", "model.teacher_hidden=(16,)", "gen_batch=8", "pate.replay=16",
        "cas.samples=200", "cas.steps=5", "checkpoint_every=0", "log_every=5"]


def test_dp_cgan_runs_within_its_budget(tmp_path):
    cfg = load_config("pate_triplegan", "quick", TINY + ["steps=100000", "privacy.epsilon=4.0", "optim.lr=1e-3"])
    metrics = experiment.run(cfg, "dp_cgan", 0, tmp_path, progress=False)
    assert 0 < metrics["steps"] < 100000  # stopped by the budget, not by the step cap
    assert metrics["epsilon_spent"] <= 4.0 and metrics["extra/epsilon_spent"] == metrics["epsilon_spent"]
    assert 0.0 <= metrics["cas_accuracy"] <= 1.0
    assert (tmp_path / "samples.png").stat().st_size > 0


@pytest.mark.slow
def test_every_variant_runs_through_reproduce(tmp_path):
    out = runner.reproduce("pate_triplegan", "quick", TINY + ["steps=10"], seeds=[0], out=tmp_path, progress=False)
    payload = json.loads((tmp_path / "pate_triplegan" / "results.json").read_text())
    assert set(payload["variants"]) == set(out["config"]["variants"])
    assert set(payload["extra"]["epsilon_spent"]) == {"pate_triplegan", "no_pate", "dp_cgan", "pate_gan"}
    assert all(e <= 10.0 for eps in payload["extra"]["epsilon_spent"].values() for e in eps)
