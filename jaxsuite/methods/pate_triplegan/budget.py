"""The privacy plan of a run, fixed before its first step: which mechanisms touch the private set, what one
iteration costs in RDP, and so how many iterations fit the (epsilon, delta) budget.

Every mechanism here has a data-independent cost that is the same each iteration (GNMax: lambda / sigma^2 per
answer; DP-SGD: the Poisson-subsampled Gaussian's curve), so "stop before the next iteration would exceed the
budget" is exactly ``steps = min(config.steps, accounting.max_steps(one_iteration, eps, delta'))``, where delta'
is delta less the probability that a fixed-size padded Poisson batch overflowed (``sampling``). GNMax asked every
``query_every`` steps is costed per block of that many steps.

All mechanisms of a run read the same private set (the teachers' shards partition it; DP-SGD batches sample all of
it or its labelled part), so their RDP curves add; the mu-GDP view composes them as sqrt(sum mu_i^2).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.privacy import accounting, sampling

#: per kind, its DP-SGD players: player -> (pool it samples: "all" private examples or "labeled", config key of L)
DPSGD_PLAYERS = {
    "pate_triplegan": {"d": ("all", "dp.expected_batch"), "c": ("labeled", "dp.c_expected_batch")},
    "dp_cgan": {"d": ("labeled", "dp.expected_batch")},
}
PATE_KINDS = ("pate_triplegan", "pate_gan")


@dataclasses.dataclass(frozen=True)
class Poisson:
    rate: float  # q
    max_batch: int  # padded size
    expected: float  # L = q n, what the clipped sum is divided by


@dataclasses.dataclass(frozen=True)
class Plan:
    steps: int
    dpsgd: dict = dataclasses.field(default_factory=dict)  # player -> Poisson
    gnmax_sigma: float = 0.0  # pate.sigma x privacy.noise_scale
    dp_noise: float = 0.0  # dp.noise_multiplier x privacy.noise_scale
    epsilon: float = 0.0  # data-independent (epsilon, delta)-DP of the whole run
    delta: float = 0.0
    overflow_delta: float = 0.0  # part of delta for dropped Poisson surplus
    mu: float = 0.0  # mu-GDP (CLT for DP-SGD, sqrt(2)/sigma per GNMax answer)
    gnmax_answers: int = 0

    @property
    def private(self) -> bool:
        return self.delta > 0

    def as_metrics(self) -> dict:
        """The run's privacy for results.json (only the steps for a non-private run: its epsilon is infinite)."""
        if not self.private:
            return {"steps": float(self.steps)}
        return {"epsilon_spent": self.epsilon, "delta": self.delta, "mu_gdp": self.mu,
                "gdp_epsilon": accounting.gdp_epsilon(self.mu, self.delta) if self.mu > 0 else 0.0,
                "steps": float(self.steps), "gnmax_answers": float(self.gnmax_answers)}


def _get(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def plan(cfg, num_private: int, num_labeled: int) -> Plan:
    """The run's steps and privacy; ``cfg.kind`` names the game (``train.KINDS``)."""
    if cfg.kind not in (*PATE_KINDS, *DPSGD_PLAYERS):  # non-private: the configured steps
        return Plan(steps=cfg.steps)
    eps, delta = cfg.privacy.epsilon, cfg.privacy.delta
    if not (eps > 0 and 0 < delta < 1):
        raise ConfigError(f"config keys 'privacy.epsilon' > 0 and 'privacy.delta' in (0, 1) expected, got "
                          f"{eps}, {delta}")
    pate = cfg.kind in PATE_KINDS
    if pate and not cfg.pate.sigma > 0:
        raise ConfigError(f"config key 'pate.sigma' must be > 0, got {cfg.pate.sigma}")
    if not cfg.privacy.noise_scale > 0:
        raise ConfigError(f"config key 'privacy.noise_scale' must be > 0, got {cfg.privacy.noise_scale}")
    sigma, noise = cfg.pate.sigma * cfg.privacy.noise_scale, cfg.dp.noise_multiplier * cfg.privacy.noise_scale
    every = cfg.pate.query_every if pate else 1
    players = DPSGD_PLAYERS.get(cfg.kind, {})
    overflow_share = cfg.dp.overflow_delta_share * delta / max(len(players), 1)
    poisson, block = {}, np.zeros_like(accounting.ORDERS)  # block: `every` steps, one of them asking GNMax
    if pate:
        block = block + accounting.gnmax_rdp_independent(sigma, cfg.pate.queries)
    for name, (pool_name, key) in players.items():
        pool = num_private if pool_name == "all" else num_labeled
        expected = _get(cfg, key)
        if not 0 < expected < pool:
            raise ConfigError(f"config key {key!r} must be in (0, {pool}), got {expected}")
        rate = expected / pool
        poisson[name] = (pool, Poisson(rate, sampling.default_max_batch(pool, rate, cfg.steps, overflow_share),
                                       float(expected)))
        block = block + accounting.rdp_curve(accounting.dpsgd_event(rate, noise, every))
    spendable = delta - cfg.dp.overflow_delta_share * delta
    steps = min(cfg.steps, accounting.max_steps(block, eps, spendable) * every)
    if steps == 0:
        raise ConfigError(f"one iteration of {cfg.kind} ({every} step(s): one block of pate.query_every) already "
                          f"exceeds epsilon {eps}: raise 'pate.sigma' / 'dp.noise_multiplier' / "
                          f"'privacy.noise_scale', or lower 'pate.queries', 'pate.query_every' or the DP-SGD batches")
    answers = -(-steps // every) * cfg.pate.queries if pate else 0  # asking steps begun
    spent, mus, overflow = np.zeros_like(accounting.ORDERS), [], 0.0
    if answers:
        spent = spent + accounting.gnmax_rdp_independent(sigma, answers)
        mus.append(accounting.gnmax_mu(sigma, answers))
    for pool, p in poisson.values():
        spent = spent + accounting.rdp_curve(accounting.dpsgd_event(p.rate, noise, steps))
        mus.append(accounting.dpsgd_mu(p.rate, noise, steps))
        overflow += accounting.overflow_delta(pool, p.rate, p.max_batch, steps)
    return Plan(steps=steps, dpsgd={k: p for k, (_, p) in poisson.items()}, gnmax_sigma=sigma, dp_noise=noise,
                epsilon=accounting.epsilon(spent, spendable), delta=spendable + overflow, overflow_delta=overflow,
                mu=accounting.compose_mu(*mus), gnmax_answers=answers)
