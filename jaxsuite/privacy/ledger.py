"""A host-side privacy ledger for a training run whose mechanisms all touch the same private data set:
DP-SGD steps (Poisson rate q, noise multiplier sigma) and PATE GNMax answers (noise sigma, and each
answer's vote histogram for the data-dependent bound). It answers "what has been spent" and "does the next
iteration still fit the (eps, delta) budget", and serialises to a dict for checkpoints and results.json.

The spent epsilon quoted is the data-independent one (a valid DP guarantee); the data-dependent one is
reported beside it, as Papernot et al. (2018) do, with the caveat that publishing it needs a smooth-
sensitivity release."""
from __future__ import annotations

import dataclasses

import numpy as np

from jaxsuite.privacy import accounting


@dataclasses.dataclass
class Ledger:
    delta: float
    target_eps: float
    dpsgd: dict = dataclasses.field(default_factory=dict)  # "q,sigma" -> steps
    gnmax: dict = dataclasses.field(default_factory=dict)  # "sigma" -> answers
    dependent_rdp: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros_like(accounting.ORDERS))

    def _curve(self, extra_dpsgd: dict | None = None, extra_gnmax: dict | None = None) -> np.ndarray:
        curves = [np.zeros_like(accounting.ORDERS)]
        for key, steps in {**self.dpsgd, **(extra_dpsgd or {})}.items():
            total = steps + (self.dpsgd.get(key, 0) if extra_dpsgd and key in extra_dpsgd else 0)
            q, sigma = (float(v) for v in key.split(","))
            curves.append(accounting.rdp_curve(accounting.dpsgd_event(q, sigma, total)))
        for key, answers in {**self.gnmax, **(extra_gnmax or {})}.items():
            total = answers + (self.gnmax.get(key, 0) if extra_gnmax and key in extra_gnmax else 0)
            curves.append(accounting.gnmax_rdp_independent(float(key), total))
        return accounting.compose(*curves)

    def record_dpsgd(self, rate: float, sigma: float, steps: int = 1) -> None:
        key = f"{rate!r},{sigma!r}"
        self.dpsgd[key] = self.dpsgd.get(key, 0) + steps

    def record_gnmax(self, sigma: float, votes: np.ndarray) -> None:
        """One answer per row of ``votes`` [Q, K]."""
        votes = np.atleast_2d(np.asarray(votes))
        self.gnmax[repr(float(sigma))] = self.gnmax.get(repr(float(sigma)), 0) + len(votes)
        for row in votes:
            self.dependent_rdp = self.dependent_rdp + accounting.gnmax_rdp_dependent(
                accounting.gnmax_logq(row, sigma), sigma)

    def epsilon(self) -> float:
        return accounting.epsilon(self._curve(), self.delta)

    def epsilon_data_dependent(self) -> float:
        dpsgd_only = Ledger(self.delta, self.target_eps, dict(self.dpsgd))._curve()
        return accounting.epsilon(dpsgd_only + self.dependent_rdp, self.delta)

    def fits(self, *, dpsgd: dict | None = None, gnmax: dict | None = None) -> bool:
        """Would spending these too stay within target_eps? ``dpsgd``: {(q, sigma): steps}; ``gnmax``: {sigma: answers}."""
        extra_d = {f"{q!r},{s!r}": n for (q, s), n in (dpsgd or {}).items()}
        extra_g = {repr(float(s)): n for s, n in (gnmax or {}).items()}
        return accounting.epsilon(self._curve(extra_d, extra_g), self.delta) <= self.target_eps

    def to_dict(self) -> dict:
        return {"delta": self.delta, "target_eps": self.target_eps, "dpsgd": dict(self.dpsgd),
                "gnmax": dict(self.gnmax), "dependent_rdp": self.dependent_rdp.tolist(),
                "epsilon": self.epsilon(), "epsilon_data_dependent": self.epsilon_data_dependent()}

    @classmethod
    def from_dict(cls, d: dict) -> "Ledger":
        return cls(d["delta"], d["target_eps"], dict(d["dpsgd"]), dict(d["gnmax"]), np.asarray(d["dependent_rdp"]))
