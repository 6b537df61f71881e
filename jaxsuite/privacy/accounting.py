"""Privacy accounting: RDP curves over a fixed grid of orders, composed by addition, converted to
(epsilon, delta); and the Gaussian-DP (mu-GDP) view.

- DP-SGD: Poisson-subsampled Gaussian from dp-accounting's ``RdpAccountant`` (Mironov et al. 2019); the
  fixed-size padded batch adds the probability that a draw overflows it to delta (``overflow_delta``).
- PATE's GNMax (Papernot et al., ICLR 2018): data-independent RDP lambda / sigma^2 per query (Prop. 8);
  data-dependent RDP from Theorem 6 with mu_2 = sigma sqrt(-log q~), mu_1 = mu_2 + 1 (Prop. 10), where
  q~ is the union bound on Pr[noisy argmax != argmax] (Prop. 7); Confident-GNMax's threshold check is
  a Gaussian mechanism of stability 1 (RDP lambda / (2 sigma_1^2)). The data-dependent curve depends on
  the votes, i.e. on the private data: releasing it needs smooth sensitivity (not done here), so results
  report both.
- Composition: RDP curves of mechanisms on the *same* data add up (``compose``).
- Conversion: dp-accounting's (tighter) RDP -> (eps, delta), or the classic eps = rdp - log(delta)/(lambda-1)
  (Mironov 2017, Prop. 3) that TensorFlow Privacy's tutorials quote; and dp-accounting's privacy-loss-distribution
  accountant (PLD, a numerical bound, usually tighter than RDP) for a run's whole ``DpEvent`` (``run_epsilons``).
- mu-GDP for DP-SGD by the central limit theorem (Bu, Dong, Long, Su 2020):
  mu = q sqrt(T (exp(1/sigma^2) - 1)); delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2). The CLT is
  an approximation, not a bound: these functions are kept for comparison with the GDP literature and no
  reported epsilon comes from them.
"""
from __future__ import annotations

import logging
import math
from typing import Callable

import dp_accounting
import numpy as np
from dp_accounting.rdp import rdp_privacy_accountant
from scipy import optimize, special, stats

# TensorFlow Privacy's default orders, so that the classic conversion reproduces its published figures.
ORDERS = np.array([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), np.float64)


def dpsgd_event(rate: float, noise_multiplier: float, steps: int) -> dp_accounting.DpEvent:
    """``steps`` Poisson-subsampled Gaussian steps (add/remove-one neighbours)."""
    one = dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    return dp_accounting.SelfComposedDpEvent(one, steps)


def gnmax_event(sigma: float, answers: int) -> dp_accounting.DpEvent:
    """``answers`` GNMax answers: each a Gaussian mechanism on the vote histogram, whose L2 sensitivity is sqrt(2)
    (one teacher's vote moves from one class to another; under add/remove-one only the teacher whose shard holds
    the example changes), so its noise multiplier is sigma / sqrt(2) (RDP lambda / sigma^2, Papernot et al. 2018,
    Prop. 8)."""
    return dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma / math.sqrt(2.0)), answers)


def run_epsilons(event: dp_accounting.DpEvent, delta: float, orders: np.ndarray = ORDERS) -> dict:
    """{"rdp": epsilon, "pld": epsilon} of a whole run's ``event`` at ``delta``: dp-accounting's RDP accountant
    (over ``orders``) and its PLD accountant; both are upper bounds, so the smaller one holds."""
    rdp = rdp_privacy_accountant.RdpAccountant(list(orders))
    rdp.compose(event)
    pld = dp_accounting.pld.PLDAccountant()
    pld.compose(event)
    return {"rdp": float(rdp.get_epsilon(delta)), "pld": float(pld.get_epsilon(delta))}


def overflow_delta(dataset_size: int, rate: float, max_batch: int, steps: int) -> float:
    """Probability that any of ``steps`` Poisson draws exceeds ``max_batch`` (its surplus is dropped by
    ``sampling.poisson_batch``). Off that event the run is exactly Poisson-subsampled DP-SGD, so it is
    (eps, delta + overflow_delta)-DP; spend ``delta - overflow_delta`` on the Poisson accounting.
    (dp-accounting's RDP accountant does not support ``TruncatedSubsampledGaussianDpEvent``.)"""
    return float(min(1.0, steps * stats.binom.sf(max_batch, dataset_size, rate)))


class _NonConvergedOrders(logging.Filter):
    """dp-accounting logs one warning per fractional order whose series fails to converge (large sampling rates)
    and leaves that order out, i.e. at infinite RDP: the epsilon stays a valid, conservative bound, and a run that
    recomputes its plan would print hundreds of such lines. They are dropped here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to converge" not in record.getMessage()


logging.getLogger("absl").addFilter(_NonConvergedOrders())


def rdp_curve(event: dp_accounting.DpEvent, orders: np.ndarray = ORDERS) -> np.ndarray:
    """The RDP guarantee of ``event`` at every order (dp-accounting's RdpAccountant)."""
    acc = rdp_privacy_accountant.RdpAccountant(list(orders))
    acc.compose(event)
    if not hasattr(acc, "_rdp"):
        raise RuntimeError("this dp-accounting version does not expose RdpAccountant._rdp; pin dp-accounting")
    return np.asarray(acc._rdp, np.float64)


def epsilon(rdp: np.ndarray, delta: float, orders: np.ndarray = ORDERS, *, classic: bool = False) -> float:
    """(eps, delta)-DP from an RDP curve: dp-accounting's conversion, or the classic one."""
    rdp = np.asarray(rdp, np.float64)
    if classic:
        return float(np.min(rdp - math.log(delta) / (orders - 1)))
    return float(rdp_privacy_accountant.compute_epsilon(list(orders), list(rdp), delta)[0])


def compose(*curves: np.ndarray) -> np.ndarray:
    """RDP of running mechanisms on the same data one after another: the curves add."""
    return np.sum(np.stack([np.asarray(c, np.float64) for c in curves]), axis=0)


# ---------------------------------------------------------------------------------- PATE / GNMax ----

def gnmax_rdp_independent(sigma: float, queries: int = 1, orders: np.ndarray = ORDERS) -> np.ndarray:
    """GNMax over vote histograms (one teacher moves two counts by 1): lambda / sigma^2 per query."""
    return queries * orders / sigma ** 2


def gnmax_logq(votes: np.ndarray, sigma: float) -> float:
    """log of the union bound on Pr[argmax(votes + N(0, sigma^2)) != argmax(votes)] (Prop. 7), capped at
    log((K - 1) / K)."""
    votes = np.asarray(votes, np.float64)
    top = np.argmax(votes)
    gaps = np.delete(votes[top] - votes, top)
    logq = special.logsumexp(stats.norm.logsf(gaps, scale=math.sqrt(2.0) * sigma))
    return float(min(logq, math.log(1 - 1 / len(votes))))


def _log1mexp(x: float) -> float:
    return math.log1p(-math.exp(x)) if x < -1 else (math.log(-math.expm1(x)) if x < 0 else -math.inf)


def gnmax_rdp_dependent(logq: float, sigma: float, orders: np.ndarray = ORDERS) -> np.ndarray:
    """Theorem 6 for one GNMax answer given q~ (its log), never above the data-independent lambda/sigma^2."""
    base = orders / sigma ** 2
    if logq == -math.inf:
        return np.zeros_like(base)
    mu2 = sigma * math.sqrt(-logq)
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / sigma ** 2, mu2 / sigma ** 2
    applies = (mu1 > orders) & (mu2 > 1)
    # q~ must lie where the bound is increasing in q and A > 0 (the theorem's condition)
    limit = (mu2 - 1) * eps2 - mu2 * (math.log1p(1 / (mu1 - 1)) + math.log1p(1 / (mu2 - 1))) if mu2 > 1 else -math.inf
    if not applies.any() or logq > limit or -logq <= eps2:
        return base
    log1q = _log1mexp(logq)
    log_a = (orders - 1) * (log1q - _log1mexp((logq + eps2) * (1 - 1 / mu2)))
    log_b = (orders - 1) * (eps1 - logq / (mu1 - 1))
    bound = np.logaddexp(log1q + log_a, logq + log_b) / (orders - 1)
    return np.where(applies, np.minimum(base, bound), base)


def threshold_rdp_independent(sigma1: float, queries: int = 1, orders: np.ndarray = ORDERS) -> np.ndarray:
    """Confident-GNMax's noisy threshold check (stability 1): lambda / (2 sigma_1^2) per query."""
    return queries * orders / (2 * sigma1 ** 2)


# --------------------------------------------------------------------------------------- mu-GDP ----

def dpsgd_mu(rate: float, noise_multiplier: float, steps: int) -> float:
    """The CLT mu of Poisson-subsampled DP-SGD (Bu et al. 2020, Theorem 5)."""
    return rate * math.sqrt(steps * math.expm1(1.0 / noise_multiplier ** 2))


def gdp_delta(mu: float, eps: float) -> float:
    """delta(eps) of mu-GDP (Dong, Roth, Su 2019, Corollary 2.13)."""
    return float(stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The eps at which mu-GDP gives ``delta`` (delta(eps) decreases in eps)."""
    if gdp_delta(mu, 0.0) <= delta:
        return 0.0
    hi = 1.0
    while gdp_delta(mu, hi) > delta:
        hi *= 2
    return float(optimize.brentq(lambda e: gdp_delta(mu, e) - delta, 0.0, hi))


def gnmax_mu(sigma: float, queries: int = 1) -> float:
    """GNMax answers as mu-GDP: one query is a Gaussian mechanism of L2 sensitivity sqrt(2), (sqrt(2)/sigma)-GDP;
    ``queries`` of them compose to sqrt(queries) times that (Dong, Roth, Su 2019, Corollary 3.3)."""
    return math.sqrt(queries) * math.sqrt(2.0) / sigma


def compose_mu(*mus: float) -> float:
    """mu-GDP mechanisms on the same data compose to sqrt(sum mu_i^2)."""
    return math.sqrt(sum(m * m for m in mus))


# ----------------------------------------------------------------------------------- the budget ----

def max_steps(step_rdp: np.ndarray, target_eps: float, delta: float, orders: np.ndarray = ORDERS,
              spent_rdp: np.ndarray | None = None, limit: int = 10 ** 9) -> int:
    """The largest T with epsilon(spent + T * step_rdp) <= target_eps (RDP composes additively, so T steps
    of one mechanism cost T times its curve); 0 if even one step would exceed the budget."""
    spent = np.zeros_like(orders) if spent_rdp is None else np.asarray(spent_rdp, np.float64)
    return max_iterations(lambda t: spent + t * np.asarray(step_rdp), target_eps, delta, orders, limit)


def max_iterations(curve: Callable[[int], np.ndarray], target_eps: float, delta: float,
                   orders: np.ndarray = ORDERS, limit: int = 10 ** 9) -> int:
    """The largest T <= limit whose RDP ``curve(T)`` (non-decreasing in T: what T iterations spend) converts to
    at most ``target_eps`` at ``delta``; 0 if even one iteration would exceed the budget."""
    def fits(t: int) -> bool:
        return epsilon(curve(t), delta, orders) <= target_eps

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi < limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit)
    if fits(hi):
        return hi
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
