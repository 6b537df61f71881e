"""The E-step: the relation graph G as a weighted sum of components, each a sparse edge list.

Every component is ``Edges(senders, receivers, weights)``: an edge (i, j) asks that node i's
embedding in view 1 be close to node j's embedding in view 2. Components (paper's names):

* G^O -- the augmentation pairs (i, i): the conventional, implicit relation graph.
* G^A -- the input adjacency (prior domain knowledge).
* G^k -- a k-NN graph on the cosine similarity of the current embeddings H = f(X, A) (online).
* G^S -- a clustering graph: nodes in the same k-means cluster of H (online); every pair in a
  cluster of size m has weight 1/m. Written as its star expansion (node -> cluster mean), which gives
  the same value without m^2 edges (``losses.cluster_invariance``).
* G^L, G^R -- k-NN graphs on positional / structural encodings: Laplacian eigenvectors (LapPE) and
  random-walk return probabilities (RWSE); fixed, computed once on the host.

The online components are computed under ``stop_gradient`` (the E-step); their construction is
vectorised (a matrix product and ``lax.top_k``), never an O(N^2) Python loop.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh


class Edges(NamedTuple):
    senders: jax.Array
    receivers: jax.Array
    weights: jax.Array


def augmentation_pairs(num_nodes: int) -> Edges:
    idx = jnp.arange(num_nodes, dtype=jnp.int32)
    return Edges(idx, idx, jnp.ones(num_nodes, jnp.float32))


def knn_edges(h: jax.Array, k: int, scope: jax.Array | None = None) -> Edges:
    """Each node -> its k most cosine-similar other nodes, weight 1 (jittable, O(N^2 d) FLOPs on device).

    ``scope`` (bool [N, N], optional) restricts the candidates, e.g. to the r-hop neighbourhood
    (``hop_scope``); a node with fewer than k candidates gets weight 0 on the missing edges."""
    hn = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-8)
    sim = hn @ hn.T
    sim = sim - 3.0 * jnp.eye(h.shape[0], dtype=sim.dtype)  # never pick yourself
    if scope is not None:
        sim = jnp.where(scope, sim, -10.0)
    top, nbrs = jax.lax.top_k(sim, k)
    senders = jnp.repeat(jnp.arange(h.shape[0], dtype=jnp.int32), k)
    weights = (top > -2.0).astype(jnp.float32).reshape(-1)
    return Edges(senders, nbrs.reshape(-1).astype(jnp.int32), weights)


def hop_scope(senders: np.ndarray, receivers: np.ndarray, n: int, hops: int) -> np.ndarray:
    """bool [N, N]: j is within ``hops`` edges of i (i itself excluded)."""
    adj = sp.coo_matrix((np.ones(len(senders)), (senders, receivers)), shape=(n, n)).tocsr()
    reach, power = adj.copy(), adj.copy()
    for _ in range(hops - 1):
        power = power @ adj
        reach = reach + power
    out = reach.toarray() > 0
    np.fill_diagonal(out, False)
    return out


def kmeans(h: jax.Array, centroids: jax.Array, iters: int) -> tuple[jax.Array, jax.Array]:
    """``iters`` Lloyd steps on L2-normalised embeddings from warm-start centroids: (assignment, centroids).
    An empty cluster keeps its previous centroid."""
    hn = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-8)
    c = centroids.shape[0]

    def step(cent, _):
        assign = jnp.argmax(hn @ cent.T, axis=-1)
        sums = jax.ops.segment_sum(hn, assign, c)
        counts = jax.ops.segment_sum(jnp.ones(hn.shape[0]), assign, c)
        new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts[:, None], 1), cent)
        return new / jnp.maximum(jnp.linalg.norm(new, axis=-1, keepdims=True), 1e-8), None

    cent, _ = jax.lax.scan(step, centroids, None, length=iters)
    return jnp.argmax(hn @ cent.T, axis=-1), cent


def laplacian_pe(senders: np.ndarray, receivers: np.ndarray, n: int, dim: int) -> np.ndarray:
    """The ``dim`` eigenvectors of the symmetric normalised Laplacian after the trivial one (LapPE)."""
    adj = sp.coo_matrix((np.ones(len(senders)), (senders, receivers)), shape=(n, n)).tocsr()
    deg = np.asarray(adj.sum(1)).ravel()
    d = sp.diags(1.0 / np.sqrt(np.maximum(deg, 1)))
    lap = sp.eye(n) - d @ adj @ d
    k = min(dim + 1, n - 2)
    vals, vecs = eigsh(lap, k=k, which="SM", tol=1e-4, maxiter=5000, v0=np.ones(n) / np.sqrt(n))
    order = np.argsort(vals)
    return vecs[:, order[1:]].astype(np.float32)


def random_walk_se(senders: np.ndarray, receivers: np.ndarray, n: int, steps: int) -> np.ndarray:
    """Return probabilities of 1..``steps``-step random walks, diag((D^-1 A)^t) (RWSE)."""
    adj = sp.coo_matrix((np.ones(len(senders)), (senders, receivers)), shape=(n, n)).tocsr()
    deg = np.asarray(adj.sum(1)).ravel()
    rw = sp.diags(1.0 / np.maximum(deg, 1)) @ adj
    out, power = [], sp.eye(n, format="csr")
    for _ in range(steps):
        power = power @ rw
        out.append(power.diagonal())
    return np.stack(out, 1).astype(np.float32)


def static_knn(features: np.ndarray, k: int) -> Edges:
    """k-NN edges on fixed (host) encodings, standardised per dimension first."""
    f = (features - features.mean(0)) / (features.std(0) + 1e-6)
    return jax.tree.map(np.asarray, knn_edges(jnp.asarray(f), k))
