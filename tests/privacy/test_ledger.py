"""The ledger composes DP-SGD and GNMax on the same data, refuses what would overspend, and round-trips."""
import numpy as np
import pytest

from jaxsuite.privacy import accounting
from jaxsuite.privacy.ledger import Ledger


def test_ledger_composes_and_stops_at_the_budget():
    led = Ledger(delta=1e-5, target_eps=2.0)
    led.record_dpsgd(0.01, 1.1, 100)
    alone = accounting.epsilon(accounting.rdp_curve(accounting.dpsgd_event(0.01, 1.1, 100)), 1e-5)
    assert led.epsilon() == pytest.approx(alone, rel=1e-9)
    led.record_gnmax(50.0, np.array([[40, 2, 1], [30, 10, 3]]))
    assert led.epsilon() > alone and led.epsilon_data_dependent() <= led.epsilon() + 1e-12
    assert led.fits(dpsgd={(0.01, 1.1): 1}) and not led.fits(dpsgd={(0.01, 1.1): 10 ** 6})
    back = Ledger.from_dict(led.to_dict())
    assert back.epsilon() == pytest.approx(led.epsilon()) and back.gnmax == led.gnmax


def test_fits_counts_existing_steps_of_the_same_mechanism():
    led = Ledger(delta=1e-5, target_eps=1.0)
    budget = accounting.max_steps(accounting.rdp_curve(accounting.dpsgd_event(0.01, 1.1, 1)), 1.0, 1e-5)
    led.record_dpsgd(0.01, 1.1, budget)
    assert not led.fits(dpsgd={(0.01, 1.1): 1}) and led.fits(dpsgd={(0.01, 1.1): 0})
