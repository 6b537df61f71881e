"""NNX modules: the GCN encoder f_theta (shared by every variant) and BGRL's predictor.

The static hyper-parameters of a variant (its kind, augmentation rates, loss weights, relation-graph
components) ride along as a frozen dataclass attribute, so ``train_step(state, batch)`` needs no config.
"""
from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from jaxsuite.nn.gnn import GCN


@dataclasses.dataclass(frozen=True)
class Hyper:
    kind: str  # "exgrg" (VICReg form + relation graph; vicreg_aug is its G^O-only case) | "cca_ssg" | "bgrl" | "supervised"
    form: str = "whitened"  # variance/covariance terms: "whitened" (CCA-SSG form) or "vicreg" (hinge form)
    feature_drop: float = 0.1
    edge_drop: float = 0.4
    inv_weight: float = 25.0
    var_weight: float = 25.0
    cov_weight: float = 1.0
    components: tuple[tuple[str, float], ...] = (("aug", 1.0),)  # relation-graph components and weights
    knn_k: int = 10
    num_clusters: int = 16
    kmeans_iters: int = 3
    knn_hops: int = 0  # 0: k-NN over all nodes; r > 0: only among the r-hop neighbours
    refresh_every: int = 1  # E-step period in steps (1 = every EM iteration, as in the paper)
    cca_lambda: float = 1e-3
    ema_start: float = 0.99
    total_steps: int = 100
    dropout: float = 0.5


class Predictor(nnx.Module):
    """BGRL's predictor: Linear -> PReLU -> Linear."""

    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(dim, hidden, rngs=rngs)
        self.alpha = nnx.Param(jax.numpy.full((), 0.25))
        self.fc2 = nnx.Linear(hidden, dim, rngs=rngs)

    def __call__(self, x):
        h = self.fc1(x)
        return self.fc2(jax.numpy.where(h > 0, h, self.alpha.value * h))


class GraphSSL(nnx.Module):
    """The encoder H = f_theta(X, A) (a GCN) and, for BGRL, the predictor."""

    def __init__(self, in_features: int, sizes: tuple[int, ...], hyper: Hyper, *, rngs: nnx.Rngs):
        self.hyper = hyper
        self.encoder = GCN((in_features, *sizes), rngs=rngs)
        self.predictor = Predictor(sizes[-1], sizes[-1], rngs=rngs) if hyper.kind == "bgrl" else None
