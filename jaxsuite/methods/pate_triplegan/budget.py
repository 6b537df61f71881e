"""The privacy plan of a run, fixed before its first step: which mechanisms touch the private set, what they
cost in RDP, and so how many iterations fit the (epsilon, delta) budget.

Every mechanism here has a data-independent cost per use (GNMax: lambda / sigma^2 per answer; DP-SGD: the
Poisson-subsampled Gaussian's curve per step), and a run of T iterations uses each a fixed number of times: GNMax
on the steps t with t % query_every == 0, a DP-SGD player on the steps t with t % its ``every`` == 0 (D: every
step; C: every ``dp.c_every``-th). Its RDP curve is that count times the one-use curve, non-decreasing in T, so
"stop before the next iteration would exceed the budget" is exactly ``steps`` = the largest T <= config.steps whose
curve converts to at most epsilon at delta', where delta' is delta less the probability that a fixed-size padded
Poisson batch overflowed (``sampling``).

All mechanisms of a run read the same private set (the teachers' shards partition it; DP-SGD batches sample all of
it or its labelled part), so their RDP curves add.

One neighbouring relation for every mechanism: **add/remove one example**. DP-SGD's Poisson sampling is analysed
under it; a teacher's shard is a keyed hash of each example's id (``experiment.teacher_of``), so adding or removing
an example changes one teacher's shard and nothing else, and the vote histogram moves by at most sqrt(2) in L2.
The data set sizes N (all private examples) and N_l (the labelled ones) set the sampling rates q = L / N and are
treated as public, as in Abadi et al. (2016) and Opacus.

The spent epsilon of the planned run is reported by both of dp-accounting's accountants on the run's whole
``DpEvent`` (``accounting.run_epsilons``): RDP, which also decides where the run stops, and PLD; the smaller is
``epsilon_spent``.

``no_pate`` (a control) is pate_triplegan without teachers or GNMax: it runs the iterations pate_triplegan's plan
affords and gives the GNMax share of the budget to its two DP-SGD players, whose noise multipliers shrink by the
smallest common factor with which those iterations still fit epsilon.
"""
from __future__ import annotations

import dataclasses

import dp_accounting
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.privacy import accounting, sampling


@dataclasses.dataclass(frozen=True)
class Player:
    """Where a DP-SGD player's settings live: the pool it samples ("all" private examples or "labeled"), and the
    config keys of its expected batch L, its noise multiplier and its cadence (None: every step)."""
    pool: str
    batch_key: str
    noise_key: str = "dp.noise_multiplier"
    every_key: str | None = None


#: per kind, its DP-SGD players (C's noise and cadence fall back to D's / every step when the keys are absent)
DPSGD_PLAYERS = {
    "pate_triplegan": {"d": Player("all", "dp.expected_batch"),
                       "c": Player("labeled", "dp.c_expected_batch", "dp.c_noise_multiplier", "dp.c_every")},
    "dp_cgan": {"d": Player("labeled", "dp.expected_batch")},
}
DPSGD_PLAYERS["no_pate"] = DPSGD_PLAYERS["pate_triplegan"]
PATE_KINDS = ("pate_triplegan", "pate_gan")


@dataclasses.dataclass(frozen=True)
class Poisson:
    rate: float  # q
    max_batch: int  # padded size
    expected: float  # L = q n, what the clipped sum is divided by
    noise: float = 0.0  # noise multiplier (std / clip), privacy.noise_scale applied
    every: int = 1  # a private step on the iterations t with t % every == 0

    def uses(self, steps: int) -> int:
        """How many of the first ``steps`` iterations take a private step."""
        return -(-steps // self.every)


@dataclasses.dataclass(frozen=True)
class Plan:
    steps: int
    dpsgd: dict = dataclasses.field(default_factory=dict)  # player -> Poisson
    gnmax_sigma: float = 0.0  # pate.sigma x privacy.noise_scale
    epsilon: float = 0.0  # data-independent (epsilon, delta)-DP of the whole run
    delta: float = 0.0
    overflow_delta: float = 0.0  # part of delta for dropped Poisson surplus
    gnmax_answers: int = 0
    epsilon_rdp: float = 0.0  # the run's epsilon by dp-accounting's RDP accountant (decides the steps)
    epsilon_pld: float = 0.0  # ... and by its PLD accountant
    noise_factor: float = 1.0  # no_pate: the factor on both DP-SGD noise multipliers

    @property
    def private(self) -> bool:
        return self.delta > 0

    def as_metrics(self) -> dict:
        """The run's privacy for results.json (only the steps for a non-private run: its epsilon is infinite)."""
        if not self.private:
            return {"steps": float(self.steps)}
        return {"epsilon_spent": self.epsilon, "epsilon_rdp": self.epsilon_rdp, "epsilon_pld": self.epsilon_pld,
                "delta": self.delta, "steps": float(self.steps), "gnmax_answers": float(self.gnmax_answers),
                "dpsgd_noise_factor": self.noise_factor}


def _get(cfg, dotted: str, default=None):
    node = cfg
    for part in dotted.split("."):
        if part not in node:
            return default
        node = node[part]
    return node


def plan(cfg, num_private: int, num_labeled: int) -> Plan:
    """The run's steps and privacy; ``cfg.kind`` names the game (``train.KINDS``)."""
    if cfg.kind not in (*PATE_KINDS, *DPSGD_PLAYERS):  # non-private: the configured steps
        return Plan(steps=cfg.steps)
    if cfg.kind != "no_pate":
        return _plan(cfg, num_private, num_labeled)
    eps = cfg.privacy.epsilon
    reference = _plan(_with_kind(cfg, "pate_triplegan"), num_private, num_labeled, account=False)
    if reference.steps == 0:
        raise ConfigError(f"no_pate takes pate_triplegan's iterations, and its first already exceeds epsilon {eps}")
    fits = lambda f: _plan(cfg, num_private, num_labeled, f, reference.steps, account=False).steps >= reference.steps
    lo, hi = 0.0, 1.0  # fits(hi); the noise factor is found to 1e-3
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if mid > 0 and fits(mid) else (mid, hi)
    return _plan(cfg, num_private, num_labeled, hi, limit=reference.steps)


def _with_kind(cfg, kind: str):
    other = cfg.copy_and_resolve_references()
    with other.unlocked():
        other.kind = kind
    return other


def _plan(cfg, num_private: int, num_labeled: int, noise_factor: float = 1.0, limit: int | None = None,
          account: bool = True) -> Plan:
    """The plan at DP-SGD noise x ``noise_factor``, at most ``limit`` (default ``cfg.steps``) iterations;
    ``account=False``: only the steps (no final epsilons)."""
    eps, delta = cfg.privacy.epsilon, cfg.privacy.delta
    if not (eps > 0 and 0 < delta < 1):
        raise ConfigError(f"config keys 'privacy.epsilon' > 0 and 'privacy.delta' in (0, 1) expected, got "
                          f"{eps}, {delta}")
    pate = cfg.kind in PATE_KINDS
    if pate and not cfg.pate.sigma > 0:
        raise ConfigError(f"config key 'pate.sigma' must be > 0, got {cfg.pate.sigma}")
    if not cfg.privacy.noise_scale > 0:
        raise ConfigError(f"config key 'privacy.noise_scale' must be > 0, got {cfg.privacy.noise_scale}")
    sigma = cfg.pate.sigma * cfg.privacy.noise_scale if pate else 0.0
    every = cfg.pate.query_every if pate else 1
    players = DPSGD_PLAYERS.get(cfg.kind, {})
    overflow_share = cfg.dp.overflow_delta_share * delta / max(len(players), 1)
    poisson = {}
    for name, player in players.items():
        pool = num_private if player.pool == "all" else num_labeled
        expected = _get(cfg, player.batch_key)
        if not 0 < expected < pool:
            raise ConfigError(f"config key {player.batch_key!r} must be in (0, {pool}), got {expected}")
        noise = _get(cfg, player.noise_key, cfg.dp.noise_multiplier)
        cadence = _get(cfg, player.every_key, 1) if player.every_key else 1
        if not noise > 0:
            raise ConfigError(f"config key {player.noise_key!r} must be > 0, got {noise}")
        if not (isinstance(cadence, int) and cadence >= 1):
            raise ConfigError(f"config key {player.every_key!r} must be an integer >= 1, got {cadence!r}")
        rate = expected / pool
        poisson[name] = (pool, Poisson(rate, sampling.default_max_batch(pool, rate, cfg.steps, overflow_share),
                                       float(expected), noise * cfg.privacy.noise_scale * noise_factor, cadence))
    one_answer = accounting.gnmax_rdp_independent(sigma) if pate else 0.0
    one_step = {name: accounting.rdp_curve(accounting.dpsgd_event(p.rate, p.noise, 1)) for name, (_, p) in
                poisson.items()}

    def answers(steps: int) -> int:  # asking steps begun
        return -(-steps // every) * cfg.pate.queries if pate else 0

    def curve(steps: int) -> np.ndarray:  # self-composition: k uses cost k times one
        total = np.zeros_like(accounting.ORDERS) + answers(steps) * one_answer
        for name, (_, p) in poisson.items():
            total = total + p.uses(steps) * one_step[name]
        return total

    spendable = delta - cfg.dp.overflow_delta_share * delta
    steps = accounting.max_iterations(curve, eps, spendable, limit=cfg.steps if limit is None else limit)
    if not account:
        return Plan(steps=steps)
    if steps == 0:
        raise ConfigError(f"the first iteration of {cfg.kind} already exceeds epsilon {eps}: raise 'pate.sigma' / "
                          f"'dp.noise_multiplier' / 'dp.c_noise_multiplier' / 'privacy.noise_scale', or lower "
                          f"'pate.queries' or the DP-SGD batches")
    events, overflow = [], 0.0
    if answers(steps):
        events.append(accounting.gnmax_event(sigma, answers(steps)))
    for pool, p in poisson.values():
        events.append(accounting.dpsgd_event(p.rate, p.noise, p.uses(steps)))
        overflow += accounting.overflow_delta(pool, p.rate, p.max_batch, p.uses(steps))
    spent = accounting.run_epsilons(dp_accounting.ComposedDpEvent(events), spendable)
    return Plan(steps=steps, dpsgd={k: p for k, (_, p) in poisson.items()}, gnmax_sigma=sigma,
                epsilon=min(spent.values()), delta=spendable + overflow, overflow_delta=overflow,
                gnmax_answers=answers(steps), epsilon_rdp=spent["rdp"], epsilon_pld=spent["pld"],
                noise_factor=noise_factor)
