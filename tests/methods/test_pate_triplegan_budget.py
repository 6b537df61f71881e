"""The privacy plan: training stops before the budget would be exceeded, the epsilon quoted is what was spent,
composition adds the mechanisms' curves, and bad settings are named."""
import pytest
from ml_collections import ConfigDict

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.pate_triplegan import budget
from jaxsuite.privacy import accounting

BASE = {"privacy": {"epsilon": 3.0, "delta": 1e-5, "noise_scale": 1.0}, "steps": 10 ** 6,
        "pate": {"sigma": 40.0, "queries": 1, "query_every": 1},
        "dp": {"noise_multiplier": 1.0, "expected_batch": 64.0, "c_expected_batch": 16.0,
               "overflow_delta_share": 0.01}}


def _cfg(kind, **over):
    d = {**BASE, "kind": kind}
    for k, v in over.items():
        group, key = k.split(".")
        d[group] = {**d[group], key: v}
    return ConfigDict(d)


@pytest.mark.parametrize("kind", ["pate_triplegan", "dp_cgan", "pate_gan"])
def test_stops_at_the_last_step_that_fits(kind):
    cfg = _cfg(kind)
    plan = budget.plan(cfg, 8000, 800)
    assert 0 < plan.steps < cfg.steps and plan.epsilon <= cfg.privacy.epsilon
    one_more = {**cfg.to_dict(), "steps": plan.steps + cfg.pate.query_every}
    one_more["privacy"] = {**one_more["privacy"], "epsilon": 100.0}
    bigger = budget.plan(ConfigDict(one_more), 8000, 800)
    assert bigger.steps == plan.steps + cfg.pate.query_every
    assert bigger.epsilon_rdp > cfg.privacy.epsilon  # the next block would have overspent (RDP decides the stop)
    assert plan.delta <= cfg.privacy.delta


def test_pate_triplegan_composes_gnmax_and_both_dpsgd_players():
    cfg = _cfg("pate_triplegan", **{"privacy.epsilon": 100.0})
    cfg.steps = 300
    plan = budget.plan(cfg, 8000, 800)
    assert plan.steps == 300 and set(plan.dpsgd) == {"d", "c"}
    assert plan.dpsgd["d"].rate == pytest.approx(64 / 8000) and plan.dpsgd["c"].rate == pytest.approx(16 / 800)
    curve = (accounting.gnmax_rdp_independent(40.0, 300)
             + accounting.rdp_curve(accounting.dpsgd_event(64 / 8000, 1.0, 300))
             + accounting.rdp_curve(accounting.dpsgd_event(16 / 800, 1.0, 300)))
    assert plan.epsilon_rdp == pytest.approx(accounting.epsilon(curve, 0.99e-5), rel=1e-6)
    assert plan.epsilon == min(plan.epsilon_rdp, plan.epsilon_pld) and 0 < plan.epsilon_pld
    assert plan.gnmax_answers == 300
    assert "mu_gdp" not in plan.as_metrics()  # the CLT's mu-GDP is an approximation, not a bound: not reported


def test_non_private_kinds_run_the_configured_steps():
    plan = budget.plan(ConfigDict({**BASE, "kind": "triplegan", "steps": 123}), 8000, 800)
    assert plan.steps == 123 and plan.epsilon == 0.0


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="pate.sigma"):
        budget.plan(_cfg("pate_gan", **{"pate.sigma": 0.0}), 8000, 800)
    with pytest.raises(ConfigError, match="dp.c_expected_batch"):
        budget.plan(_cfg("pate_triplegan", **{"dp.c_expected_batch": 900.0}), 8000, 800)
    with pytest.raises(ConfigError, match="exceeds epsilon"):
        budget.plan(_cfg("pate_gan", **{"pate.sigma": 0.1}), 8000, 800)


def test_a_non_private_run_reports_no_epsilon():
    plan = budget.plan(ConfigDict({**BASE, "kind": "triplegan", "steps": 5}), 8000, 800)
    assert not plan.private and plan.as_metrics() == {"steps": 5.0}


def test_noise_scale_multiplies_both_mechanisms_noise():
    scaled = budget.plan(_cfg("pate_triplegan", **{"privacy.noise_scale": 2.0}), 8000, 800)
    plain = budget.plan(_cfg("pate_triplegan", **{"pate.sigma": 80.0, "dp.noise_multiplier": 2.0}), 8000, 800)
    assert (scaled.steps, scaled.epsilon) == (plain.steps, plain.epsilon)
    assert scaled.gnmax_sigma == 80.0 and {p.noise for p in scaled.dpsgd.values()} == {2.0}


def test_c_steps_on_its_cadence_with_its_own_noise_cost_only_those_steps():
    """C's DP-SGD on every 4th iteration (t = 0, 4, ...) with noise 3: the spent curve is D's 300 steps plus C's
    75, and more iterations fit than with C private on every step."""
    over = {"privacy.epsilon": 100.0, "dp.c_every": 4, "dp.c_noise_multiplier": 3.0}
    cfg = _cfg("pate_triplegan", **over)
    cfg.steps = 299
    plan = budget.plan(cfg, 8000, 800)
    c = plan.dpsgd["c"]
    assert (c.every, c.noise, c.uses(299), plan.dpsgd["d"].every) == (4, 3.0, 75, 1)
    spent = (accounting.gnmax_rdp_independent(40.0, 299)
             + accounting.rdp_curve(accounting.dpsgd_event(64 / 8000, 1.0, 299))
             + accounting.rdp_curve(accounting.dpsgd_event(16 / 800, 3.0, 75)))
    assert plan.epsilon_rdp == pytest.approx(accounting.epsilon(spent, plan.delta - plan.overflow_delta), rel=1e-6)
    every_step = budget.plan(_cfg("pate_triplegan"), 8000, 800)
    assert budget.plan(_cfg("pate_triplegan", **{"dp.c_every": 4}), 8000, 800).steps > every_step.steps
    with pytest.raises(ConfigError, match="dp.c_every"):
        budget.plan(_cfg("pate_triplegan", **{"dp.c_every": 0}), 8000, 800)
    with pytest.raises(ConfigError, match="dp.c_noise_multiplier"):
        budget.plan(_cfg("pate_triplegan", **{"dp.c_noise_multiplier": 0.0}), 8000, 800)


def test_no_pate_gives_the_gnmax_share_to_dpsgd_at_pate_triplegans_iterations():
    ref = budget.plan(_cfg("pate_triplegan"), 8000, 800)
    control = budget.plan(_cfg("no_pate"), 8000, 800)
    assert control.steps == ref.steps and control.gnmax_answers == 0 and control.epsilon <= 3.0
    assert control.noise_factor < 1 and control.dpsgd["d"].noise == pytest.approx(control.noise_factor)
    # the smallest factor (to 1e-3): a little less noise would no longer fit
    tighter = budget._plan(_cfg("no_pate"), 8000, 800, control.noise_factor - 2e-3, ref.steps, account=False)
    assert tighter.steps < ref.steps
