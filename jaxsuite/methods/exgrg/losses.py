"""Loss terms (pure functions of embeddings Z1, Z2 of two augmented views, shape [N, D]).

ExGRG's objective in VICReg form (paper: L = L_V + L_C + L_I'):
  L_V  -- variance: mean_d ReLU(1 - sqrt(Var(z_d) + eps)) per view           (``variance``)
  L_C  -- covariance: sum of squared off-diagonal covariances / D per view    (``covariance``)
  L_I' -- invariance weighted by the relation graph G, the Laplacian-eigenmap term
          sum_ij G_ij ||z1_i - z2_j||^2 / sum_ij G_ij, summed over G's components with their
          weights (``edge_invariance``; ``cluster_invariance`` for G^S in closed form)
Baselines: CCA-SSG (Zhang et al. 2021, Eq. 4) and BGRL (Thakoor et al. 2021, Eq. 2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsuite.methods.exgrg.relation_graph import Edges


def variance(z: jax.Array, eps: float = 1e-4) -> jax.Array:
    """VICReg's hinge on the per-dimension standard deviation (target 1)."""
    return jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(z.var(axis=0) + eps)))


def covariance(z: jax.Array) -> jax.Array:
    """VICReg's decorrelation: squared off-diagonal entries of the covariance matrix, over D."""
    zc = z - z.mean(0)
    cov = zc.T @ zc / (z.shape[0] - 1)
    off = cov - jnp.diag(jnp.diag(cov))
    return jnp.sum(off * off) / z.shape[1]


def edge_invariance(z1: jax.Array, z2: jax.Array, edges: Edges) -> jax.Array:
    """sum_e w_e ||z1[s_e] - z2[r_e]||^2 / sum_e w_e, symmetrised over the two views."""
    def one(a, b):
        d = a[edges.senders] - b[edges.receivers]
        return jnp.sum(edges.weights * jnp.sum(d * d, -1))

    total = 0.5 * (one(z1, z2) + one(z2, z1))
    return total / jnp.maximum(edges.weights.sum(), 1e-8)


def cluster_invariance(z1: jax.Array, z2: jax.Array, assign: jax.Array, num_clusters: int) -> jax.Array:
    """G^S: every pair (i, j) in the same cluster C with weight 1/|C|. Exactly
    sum_C [sum_i ||z1_i||^2 + sum_j ||z2_j||^2 - 2 (sum_i z1_i).(sum_j z2_j) / |C|] / N,
    without materialising the |C|^2 edges."""
    n, d = z1.shape
    s1 = jax.ops.segment_sum(z1, assign, num_clusters)
    s2 = jax.ops.segment_sum(z2, assign, num_clusters)
    m = jax.ops.segment_sum(jnp.ones(n), assign, num_clusters)
    cross = jnp.sum(jnp.sum(s1 * s2, -1) / jnp.maximum(m, 1.0))
    return (jnp.sum(z1 * z1) + jnp.sum(z2 * z2) - 2.0 * cross) / n


def whiten(z: jax.Array) -> jax.Array:
    """Per-dimension standardisation scaled by 1/sqrt(N), so that Z^T Z is the correlation matrix."""
    return (z - z.mean(0)) / (z.std(0) + 1e-8) / jnp.sqrt(z.shape[0])


def decorrelation(zw: jax.Array) -> jax.Array:
    """||Z^T Z - I||_F^2 of whitened Z: its diagonal is the variance term (each dimension at unit
    variance) and its off-diagonal the covariance term of VICReg, in CCA-SSG's form."""
    c = zw.T @ zw
    return jnp.sum((c - jnp.eye(c.shape[0])) ** 2)


def cca_ssg(z1: jax.Array, z2: jax.Array, lam: float) -> jax.Array:
    """CCA-SSG: ||Z1 - Z2||_F^2 + lam (||Z1^T Z1 - I||_F^2 + ||Z2^T Z2 - I||_F^2) on whitened Z."""
    a, b = whiten(z1), whiten(z2)
    return jnp.sum((a - b) ** 2) + lam * (decorrelation(a) + decorrelation(b))


def bgrl(q1: jax.Array, q2: jax.Array, t1: jax.Array, t2: jax.Array) -> jax.Array:
    """BGRL: 2 - 2 cos(q1, sg(t2)) + 2 - 2 cos(q2, sg(t1)), averaged over nodes."""
    def unit(v):  # rsqrt of a clipped squared norm: finite gradients at v = 0 (CiteSeer's featureless nodes)
        return v * jax.lax.rsqrt(jnp.maximum(jnp.sum(v * v, -1, keepdims=True), 1e-16))

    def cos(a, b):
        return jnp.sum(unit(a) * jax.lax.stop_gradient(unit(b)), -1)

    return jnp.mean(4.0 - 2.0 * cos(q1, t2) - 2.0 * cos(q2, t1))
