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

from jaxsuite.methods.pa3dfl.decomposition import LayerSpec, compose


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

    def __call__(self, x: jax.Array, keep: dict | None = None) -> jax.Array:
        return forward(self.specs, {s.name: (self.weight(s), self.b[s.name][...]) for s in self.specs}, x, keep)


class PlainCNN(nnx.Module):
    """The same CNN with ordinary weights at width ``p`` (the first p fraction of every pruned layer's channels):
    the network of the width-sliced baselines (HeteroFL, FedRolex, FjORD, LG-FedAvg, local training) and the
    target of pFedHN's hyper-network."""

    def __init__(self, specs: tuple[LayerSpec, ...], p_min: Fraction, p: Fraction, *, rngs: nnx.Rngs):
        self.specs = specs
        self.w, self.b = nnx.Dict(), nnx.Dict()
        for spec in specs:
            self.w[spec.name] = nnx.Param(jax.random.normal(rngs.params(), plain_shape(spec, p_min, p))
                                          * math.sqrt(2.0 / fan_in(spec)))
            self.b[spec.name] = nnx.Param(jnp.zeros((spec.out_width(p_min, p),)))

    def __call__(self, x: jax.Array, keep: dict | None = None) -> jax.Array:
        return forward(self.specs, {s.name: (self.w[s.name][...], self.b[s.name][...]) for s in self.specs}, x, keep)


def plain_shape(spec: LayerSpec, p_min: Fraction, p: Fraction) -> tuple[int, ...]:
    """A width-``p`` kernel: [k, k, S_p, T_p] (HWIO) for a convolution, [S_p, T_p] for a linear layer."""
    s_p, t_p = spec.width(p_min, p)[1], spec.out_width(p_min, p)
    return (spec.kernel, spec.kernel, s_p, t_p) if spec.kind == "conv" else (s_p, t_p)


def conv_same(x: jax.Array, w: jax.Array) -> jax.Array:
    """A stride-1 "SAME" convolution (NHWC input, HWIO kernel) as one matrix product over k x k shifted copies of
    the input (im2col). The same numbers as ``lax.conv_general_dilated``; under a ``vmap`` over clients' kernels it
    is a batched matrix product, where XLA:CPU would run a grouped convolution several times slower."""
    k = w.shape[0]
    h, wd = x.shape[1], x.shape[2]
    pad = (k - 1) // 2
    xp = jnp.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    patches = jnp.concatenate([xp[:, i:i + h, j:j + wd, :] for i in range(k) for j in range(k)], axis=-1)
    return patches @ w.reshape(-1, w.shape[-1])


def max_pool2(x: jax.Array) -> jax.Array:
    """2 x 2 max-pooling, stride 2 (odd trailing rows / columns dropped, as a VALID pool does), as a reshape and a
    max: its gradient avoids XLA:CPU's slow select-and-scatter."""
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def forward(specs: tuple[LayerSpec, ...], weights: dict, x: jax.Array, keep: dict | None = None) -> jax.Array:
    """conv -> ReLU -> max-pool 2 per conv layer, global average pooling, linear -> ReLU, ..., linear logits.
    ``keep`` (FjORD's ordered dropout): per pruned layer, a [T_p] 0/1 mask of the output channels kept."""
    for spec in specs:
        w, b = weights[spec.name]
        if spec.kind == "conv":
            x = conv_same(x, w)
            x = max_pool2(jax.nn.relu(x + b))
        else:
            if x.ndim == 4:
                x = jnp.mean(x, axis=(1, 2))  # global average pooling
            x = x @ w + b
            if spec.prune_out:
                x = jax.nn.relu(x)
        if keep is not None and spec.name in keep:
            x = x * keep[spec.name]
    return x


class HyperNetwork(nnx.Module):
    """Client i -> full-width target tensors of every layer: {layer: (main [shape], bias [T])}; prune afterwards.

    Client embeddings E [N, d] -> E' = Enc(E) = Linear(h) ReLU Linear(h) [N, h]. With ``attention`` (Pa3dFL):
    e_i^(l) = softmax(E' e'_i / tau_l)^T E' with a learnable tau_l per layer; without (pFedHN): e_i^(l) = e'_i.
    A linear decoder per layer maps e_i^(l) to its tensors, scaled by He's sqrt(2 / fan_in)."""

    def __init__(self, specs: tuple[LayerSpec, ...], shapes: dict, num_clients: int, embed_dim: int, hidden: int,
                 *, attention: bool, rngs: nnx.Rngs):
        self.specs, self.shapes, self.attend = specs, shapes, attention
        self.embeddings = nnx.Param(jax.random.normal(rngs.params(), (num_clients, embed_dim)))
        self.enc1 = nnx.Linear(embed_dim, hidden, rngs=rngs)
        self.enc2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.log_tau = nnx.Param(jnp.zeros((len(specs),)))  # tau_l = exp(log_tau_l), learnable per layer
        self.dec = nnx.Dict({s.name: nnx.Linear(hidden, math.prod(shapes[s.name]) + s.out_features, rngs=rngs)
                             for s in specs})

    def encoded(self) -> jax.Array:
        return self.enc2(jax.nn.relu(self.enc1(self.embeddings[...])))

    def attention(self, client: jax.Array) -> jax.Array:
        """[L, N]: layer l's attention weights softmax(s_i / tau_l) of client ``client`` over all clients."""
        e = self.encoded()
        scores = e @ e[client]
        return jax.nn.softmax(scores[None, :] / jnp.exp(self.log_tau[...])[:, None], axis=-1)

    def __call__(self, client: jax.Array) -> dict:
        e = self.encoded()
        mixed = self.attention(client) @ e if self.attend else jnp.broadcast_to(e[client], (len(self.specs),
                                                                                            e.shape[1]))
        out = {}
        for layer, spec in enumerate(self.specs):
            flat = self.dec[spec.name](mixed[layer]) * math.sqrt(2.0 / fan_in(spec))
            size = math.prod(self.shapes[spec.name])
            out[spec.name] = (flat[:size].reshape(self.shapes[spec.name]), flat[size:])
        return out
