"""The client network with decomposed layers, and Pa3dFL's server-side hyper-network.

Client network (a small CNN, widths scaled by the client's ratio p): conv k x k -> ReLU -> max-pool 2, twice,
global average pooling, linear -> ReLU -> linear to the class logits. Every conv / linear weight is
``decomposition.compose(theta_u, theta_v)``; biases are personal (pruned with the outputs). Global average
pooling keeps "the first p fraction of the inputs" of the first linear layer equal to the first p fraction of
the last conv's channels.

Hyper-network (Sec. 4.2): learnable client embeddings E [N, d]; an encoder E' = Enc(E) (MLP); for client i and
layer l, scores s_i = E' e'_i against every client and an attention-aggregated embedding
e_i^(l) = softmax(s_i / tau_l)^T E' with a learnable temperature tau_l per layer (the implicit aggregation of
client knowledge); a linear decoder per layer maps e_i^(l) to the layer's full-width theta_v and bias, pruned to
the client's width afterwards. Decoder outputs are scaled by He's sqrt(2 / fan_in) so that the composed weights
start at the usual scale (our choice; the paper gives no initialisation).
"""
from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsuite.methods.pa3dfl.decomposition import LayerSpec, compose, prune_v


def cnn_specs(in_channels: int, channels: tuple[int, int], hidden: int, num_classes: int,
              kernel: int = 3) -> tuple[LayerSpec, ...]:
    """The full-width layers of the client CNN."""
    c1, c2 = channels
    return (LayerSpec("conv1", "conv", c1, in_channels, kernel, prune_in=False),
            LayerSpec("conv2", "conv", c2, c1, kernel),
            LayerSpec("fc1", "linear", hidden, c2),
            LayerSpec("fc2", "linear", num_classes, hidden, prune_out=False))


def fan_in(spec: LayerSpec) -> int:
    return spec.kernel ** 2 * spec.in_features


class DecomposedCNN(nnx.Module):
    """The client CNN at width ``p``: per layer theta_u (general, full size), theta_v and bias (personal, pruned)."""

    def __init__(self, specs: tuple[LayerSpec, ...], p_min: Fraction, p: Fraction, *, rngs: nnx.Rngs):
        self.specs, self.p_min, self.p = specs, p_min, p
        self.u, self.v, self.b = nnx.Dict(), nnx.Dict(), nnx.Dict()
        for spec in specs:
            r2 = spec.r2(p_min)
            self.u[spec.name] = nnx.Param(jax.random.normal(rngs.params(), spec.u_shape(p_min)) / math.sqrt(r2))
            self.v[spec.name] = nnx.Param(jax.random.normal(rngs.params(), spec.v_shape(p_min, p))
                                          * math.sqrt(2.0 / fan_in(spec)))
            self.b[spec.name] = nnx.Param(jnp.zeros((spec.out_width(p_min, p),)))

    def weight(self, spec: LayerSpec) -> jax.Array:
        return compose(spec, self.u[spec.name][...], self.v[spec.name][...], self.p_min, self.p)

    def __call__(self, x: jax.Array) -> jax.Array:
        for spec in self.specs:
            w, b = self.weight(spec), self.b[spec.name][...]
            if spec.kind == "conv":
                x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                x = nnx.max_pool(jax.nn.relu(x + b), (2, 2), (2, 2))
                continue
            if x.ndim == 4:
                x = jnp.mean(x, axis=(1, 2))  # global average pooling
            x = x @ w + b
            if spec.prune_out:
                x = jax.nn.relu(x)
        return x


class HyperNetwork(nnx.Module):
    """Client i -> the full-width theta_v and bias of every layer (prune with ``personal``)."""

    def __init__(self, specs: tuple[LayerSpec, ...], p_min: Fraction, num_clients: int, embed_dim: int,
                 hidden: int, *, rngs: nnx.Rngs):
        self.specs, self.p_min = specs, p_min
        self.embeddings = nnx.Param(jax.random.normal(rngs.params(), (num_clients, embed_dim)))
        self.enc1 = nnx.Linear(embed_dim, hidden, rngs=rngs)
        self.enc2 = nnx.Linear(hidden, embed_dim, rngs=rngs)
        self.log_tau = nnx.Param(jnp.zeros((len(specs),)))  # tau_l = exp(log_tau_l), learnable per layer
        self.dec = nnx.Dict({s.name: nnx.Linear(embed_dim, math.prod(s.v_shape(p_min)) + s.out_features, rngs=rngs)
                             for s in specs})

    def encoded(self) -> jax.Array:
        return self.enc2(jax.nn.relu(self.enc1(self.embeddings[...])))

    def attention(self, client: jax.Array) -> jax.Array:
        """[L, N]: layer l's attention weights softmax(s_i / tau_l) of client ``client`` over all clients."""
        e = self.encoded()
        scores = e @ e[client]
        return jax.nn.softmax(scores[None, :] / jnp.exp(self.log_tau[...])[:, None], axis=-1)

    def __call__(self, client: jax.Array) -> dict:
        """{layer: (theta_v [R2, G S], bias [T])} at full width for client ``client`` (an int array)."""
        e = self.encoded()
        mixed = self.attention(client) @ e  # [L, d]: e_i^(l)
        out = {}
        for l, spec in enumerate(self.specs):
            flat = self.dec[spec.name](mixed[l]) * math.sqrt(2.0 / fan_in(spec))
            size = math.prod(spec.v_shape(self.p_min))
            out[spec.name] = (flat[:size].reshape(spec.v_shape(self.p_min)), flat[size:])
        return out

    def personal(self, client: jax.Array, p: Fraction) -> tuple[dict, dict]:
        """({layer: theta_v}, {layer: bias}) of client ``client`` pruned to width ``p``."""
        full = self(client)
        v = {s.name: prune_v(s, full[s.name][0], self.p_min, p) for s in self.specs}
        b = {s.name: full[s.name][1][: s.out_width(self.p_min, p)] for s in self.specs}
        return v, b
