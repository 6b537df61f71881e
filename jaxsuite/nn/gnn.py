"""Graph neural network layers as NNX modules over ``jraph.GraphsTuple`` and jax segment operations.

Edge weights live in ``graph.edges`` (shape [E]); a dropped edge has weight 0, so augmented views keep
static shapes and one compiled step serves every view. Node features may be a dense array or a
``jax.experimental.sparse.BCOO`` matrix (bag-of-words features are ~1% dense).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import jraph
from flax import nnx


def gcn_normalise(graph: jraph.GraphsTuple, num_nodes: int) -> tuple[jax.Array, jax.Array]:
    """Kipf & Welling's D^-1/2 (A + I) D^-1/2: per-edge coefficients and the self-loop coefficient."""
    w = graph.edges
    deg = jax.ops.segment_sum(w, graph.receivers, num_nodes) + 1.0
    inv_sqrt = jax.lax.rsqrt(deg)
    return w * inv_sqrt[graph.senders] * inv_sqrt[graph.receivers], inv_sqrt * inv_sqrt


class GCNLayer(nnx.Module):
    """H' = D^-1/2 (A + I) D^-1/2 (X W) + b (Kipf & Welling 2017, Eq. 2)."""

    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(nnx.initializers.glorot_uniform()(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,)))

    def __call__(self, graph: jraph.GraphsTuple, x, feature_mask: jax.Array | None = None,
                 projected: jax.Array | None = None) -> jax.Array:
        """``projected``: X W computed by the caller (views that share X and W share the big matmul)."""
        if projected is not None:
            h = projected
        else:
            kernel = self.kernel.value if feature_mask is None else feature_mask[:, None] * self.kernel.value
            h = x @ kernel  # BCOO @ dense works too; masking input columns == masking kernel rows
        n = h.shape[0]
        coef, self_coef = gcn_normalise(graph, n)
        agg = jax.ops.segment_sum(h[graph.senders] * coef[:, None], graph.receivers, n)
        return agg + h * self_coef[:, None] + self.bias.value


class GCN(nnx.Module):
    """A stack of GCN layers with ReLU between them (and after the last when ``activate_last``)."""

    def __init__(self, sizes: tuple[int, ...], *, activate_last: bool = False, rngs: nnx.Rngs):
        self.layers = nnx.List([GCNLayer(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activate_last = activate_last

    def project(self, x) -> jax.Array:
        """The first layer's X W, to share between views of one feature matrix (``projected=``)."""
        return x @ self.layers[0].kernel.value

    def __call__(self, graph: jraph.GraphsTuple, x, feature_mask: jax.Array | None = None,
                 dropout: float = 0.0, rngs: nnx.Rngs | None = None, projected: jax.Array | None = None) -> jax.Array:
        for i, layer in enumerate(self.layers):
            if dropout and rngs is not None and i > 0:
                keep = jax.random.bernoulli(rngs.dropout(), 1 - dropout, x.shape)
                x = jnp.where(keep, x / (1 - dropout), 0.0)
            x = layer(graph, x, feature_mask if i == 0 else None, projected if i == 0 else None)
            if i < len(self.layers) - 1 or self.activate_last:
                x = nnx.relu(x)
        return x


def graphs_tuple(senders, receivers, num_nodes: int, weights=None) -> jraph.GraphsTuple:
    """A single-graph GraphsTuple with edge weights (1 by default) and no node features attached."""
    senders, receivers = jnp.asarray(senders, jnp.int32), jnp.asarray(receivers, jnp.int32)
    w = jnp.ones(senders.shape, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    return jraph.GraphsTuple(nodes=None, edges=w, senders=senders, receivers=receivers,
                             n_node=jnp.array([num_nodes]), n_edge=jnp.array([len(senders)]), globals=None)
