"""Per-example squared gradient norms of one layer from its inputs and output gradients, without building the
per-example gradients where that is cheaper: ghost clipping (Li et al. 2022, "Large Language Models Can Be
Strong Differentially Private Learners", Sec. 4) and its mixed form for convolutions (Bu et al. 2022, "Scalable
and Efficient Training of Large Convolutional Neural Networks with Differential Privacy", Sec. 3).

For a weight used as ``y_t = a_t W`` at T positions of one example (a sequence, the output pixels of a
convolution, or the same layer called several times), the example's gradient is ``G = sum_t a_t^T g_t`` with
``g_t = dl/dy_t``, and

    ||G||_F^2 = sum_{t,s} (a_t . a_s)(g_t . g_s)          (ghost: two T x T Gram matrices, O(T^2 (p + q)))
              = sum_{p,q} (sum_t a_tp g_tq)^2             (direct: the p x q gradient, O(T p q))

and the layer picks whichever costs fewer multiply-adds (ghost when T (p + q) < p q), as mixed ghost clipping
picks per layer (its paper compares memory, 2 T^2 against p q; by operations the direct form also never holds
more than the layer's own inputs and output gradients: p q <= T (p + q)). A layer in the direct form also gets its
clipped sum ``sum_i c_i G_i`` from those per-example gradients, not from a weight-gradient pass. A convolution is
this with ``a_t`` the unfolded input patch under output pixel t. An embedding row is used where the token is:
``||G||^2 = sum_{t,s} [id_t = id_s] (g_t . g_s)``. A bias's gradient is ``sum_t g_t``. Norm layers' scale and bias
have as many entries as features, so their per-example gradients are built directly, by the layer's own
``vjp`` under ``vmap`` (nothing is hand-derived).

``rule_for`` accepts a layer only in configurations whose norm it computes exactly; anything else (a subclass,
a masked or grouped convolution, circular padding, a custom ``dot_general``, cross-device statistics, extra call
arguments) returns the reason, and ``ghost.py`` falls back to per-example gradients for that layer's parameters.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.linear import canonicalize_padding
from jax import lax

HIGHEST = lax.Precision.HIGHEST
KNOWN_LAYERS = (nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.Embed, nnx.LayerNorm, nnx.RMSNorm)


def _rows(x: jax.Array, feature_ndim: int) -> jax.Array:
    """[B, ..., *features] -> [B, T, prod(features)] (float32)."""
    return x.reshape(x.shape[0], -1, math.prod(x.shape[x.ndim - feature_ndim:])).astype(jnp.float32)


def ghost_sq_norms(a: jax.Array, g: jax.Array) -> jax.Array:
    """Per-example ``||a_i^T g_i||_F^2`` from the two T x T Gram matrices."""
    gram_a = jnp.einsum("btp,bsp->bts", a, a, precision=HIGHEST)
    gram_g = jnp.einsum("btq,bsq->bts", g, g, precision=HIGHEST)
    return jnp.sum(gram_a * gram_g, axis=(1, 2))


def direct_sq_norms(a: jax.Array, g: jax.Array) -> jax.Array:
    """Per-example ``||a_i^T g_i||_F^2`` from the p x q per-example gradients."""
    return jnp.sum(jnp.einsum("btp,btq->bpq", a, g, precision=HIGHEST) ** 2, axis=(1, 2))


def use_ghost(t: int, p: int, q: int) -> bool:
    """The ghost form costs fewer multiply-adds than the direct one: T^2 (p + q) < T p q."""
    return t * (p + q) < p * q


def matmul_sq_norms(a: jax.Array, g: jax.Array) -> jax.Array:
    """Per-example ``||a_i^T g_i||_F^2`` for a [B, T, p] and g [B, T, q]: ghost or direct, whichever is cheaper."""
    t, p, q = a.shape[1], a.shape[2], g.shape[2]
    if t == 1:
        return jnp.sum(a[:, 0] ** 2, -1) * jnp.sum(g[:, 0] ** 2, -1)
    return ghost_sq_norms(a, g) if use_ghost(t, p, q) else direct_sq_norms(a, g)


def bias_sq_norms(g: jax.Array) -> jax.Array:
    return jnp.sum(jnp.sum(g, axis=1) ** 2, axis=-1)


def scaled(scale: jax.Array, x: jax.Array) -> jax.Array:
    """Row i of x times scale_i; rows with scale 0 (non-finite norms) become exactly 0."""
    s = scale.reshape(scale.shape + (1,) * (x.ndim - 1))
    return jnp.where(s > 0, s.astype(x.dtype) * x, jnp.zeros_like(x))


def kernel_and_bias_sums(kernel: Callable, g: jax.Array, use_bias: bool) -> Callable:
    """``scale -> {"kernel": kernel(scale), "bias": sum_i scale_i sum_t g_it}``: a layer's clipped sums by name."""
    def sums(scale):
        out = {"kernel": kernel(scale)}
        if use_bias:
            out["bias"] = jnp.sum(scaled(scale, g), axis=(0, 1))
        return out
    return sums


class Rule:
    """How one layer's per-example squared gradient norms come from its calls: ``group_sq_norms`` takes the
    rules, inputs ``xs`` and output gradients ``gs`` of all calls of the same layer (lists, each entry
    [B, *one example's shape]) and ``per_example_grads(xs, gs)``, the layer's per-example parameter gradients
    built with its own vjp, for the rules that want the direct form."""

    @staticmethod
    def group_sq_norms(rules: list, xs: list, gs: list, per_example_grads: Callable) -> jax.Array:
        raise NotImplementedError

    @classmethod
    def group_norms_and_sums(cls, rules: list, xs: list, gs: list, per_example_grads: Callable):
        """(squared norms, ``sums``): ``sums(scale)`` is the clipped sum ``sum_i scale_i g_i`` of each parameter,
        by name, when the rule can form it from what the norms computed; None: book-keeping by the layer's vjp."""
        return cls.group_sq_norms(rules, xs, gs, per_example_grads), None


class DenseRule(Rule):
    """``nnx.Linear`` and ``nnx.LinearGeneral`` without batch axes: ``contract`` input axes (of one example's input)
    against the kernel, ``out_ndim`` output feature axes."""

    def __init__(self, contract: tuple[int, ...], out_ndim: int, use_bias: bool, in_order: bool = True):
        self.contract, self.out_ndim, self.use_bias = contract, out_ndim, use_bias
        self.in_order = in_order  # the kernel's input axes are in the input's order (its rows flatten like it)

    def rows(self, x: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
        """([B, T, p] inputs, [B, T, q] output gradients) of one call."""
        k = len(self.contract)
        x = jnp.moveaxis(x, [c + 1 for c in self.contract], range(x.ndim - k, x.ndim))
        return _rows(x, k), _rows(g, self.out_ndim)

    @classmethod
    def group_sq_norms(cls, rules, xs, gs, per_example_grads):
        return cls.group_norms_and_sums(rules, xs, gs, per_example_grads)[0]

    @staticmethod
    def group_norms_and_sums(rules, xs, gs, per_example_grads):
        a, g = (jnp.concatenate(parts, axis=1) for parts in zip(*(r.rows(x, g) for r, x, g in zip(rules, xs, gs))))
        t, p, q = a.shape[1], a.shape[2], g.shape[2]
        bias = bias_sq_norms(g) if rules[0].use_bias else 0.0
        if t == 1 or use_ghost(t, p, q) or not rules[0].in_order:
            return matmul_sq_norms(a, g) + bias, None  # clipped sums by the layer's vjp
        grads = jnp.einsum("btp,btq->bpq", a, g, precision=HIGHEST)
        sums = kernel_and_bias_sums(lambda scale: jnp.sum(scaled(scale, grads), axis=0), g, rules[0].use_bias)
        return jnp.sum(grads ** 2, axis=(1, 2)) + bias, sums


class ConvRule(DenseRule):
    """``nnx.Conv`` (feature_group_count 1, no mask, zero padding): a dense layer on the unfolded input patches."""

    def __init__(self, layer: nnx.Conv):
        n = len(layer.kernel_size)
        per_dim = lambda v: (1,) * n if v is None else ((v,) * n if isinstance(v, int) else tuple(v))
        self.kernel_size, self.strides = tuple(layer.kernel_size), per_dim(layer.strides)
        self.lhs_dilation, self.rhs_dilation = per_dim(layer.input_dilation), per_dim(layer.kernel_dilation)
        self.padding, self.use_bias = canonicalize_padding(layer.padding, n), layer.use_bias

    def offset_slices(self, x: jax.Array) -> list[jax.Array]:
        """[N, *spatial, C] -> one [N, *out_spatial, C] strided slice of the padded input per kernel offset: the
        input pixels that offset meets under each output pixel."""
        dilated = [(s - 1) * d + 1 for s, d in zip(x.shape[1:-1], self.lhs_dilation)]
        window = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.rhs_dilation)]
        pads = (lax.padtype_to_pads(dilated, window, self.strides, self.padding) if isinstance(self.padding, str)
                else self.padding)
        x = lax.pad(x, jnp.zeros((), x.dtype),
                    [(0, 0, 0)] + [(lo, hi, d - 1) for (lo, hi), d in zip(pads, self.lhs_dilation)] + [(0, 0, 0)])
        out = [(size - w) // s + 1 for size, w, s in zip(x.shape[1:-1], window, self.strides)]
        slices = []
        for offset in itertools.product(*map(range, self.kernel_size)):
            start = [o * d for o, d in zip(offset, self.rhs_dilation)]
            limit = [st + (o - 1) * s + 1 for st, o, s in zip(start, out, self.strides)]
            slices.append(lax.slice(x, [0, *start, 0], [x.shape[0], *limit, x.shape[-1]], [1, *self.strides, 1]))
        return slices

    def rows(self, x, g):
        """Per offset, ([B, T, C] input slices), and the [B, T, q] output gradients of one call."""
        n, b = len(self.kernel_size), x.shape[0]
        slices = self.offset_slices(x.reshape((-1,) + x.shape[x.ndim - n - 1:]))
        g = g.reshape((-1,) + g.shape[g.ndim - n - 1:])
        if slices[0].shape[:-1] != g.shape[:-1]:
            raise RuntimeError(f"ghost clipping: Conv slices {slices[0].shape} do not line up with its output "
                               f"{g.shape}")
        return [_rows(s.reshape(b, -1, s.shape[-1]), 1) for s in slices], _rows(g.reshape(b, -1, g.shape[-1]), 1)

    @staticmethod
    def group_norms_and_sums(rules, xs, gs, per_example_grads):
        """A dense layer on the unfolded patches A (the offsets' slices side by side). Ghost form: the Grams of A and
        g, and the clipped sum ``A^T (c g)`` over the batch. Direct form: the per-example gradients offset by
        offset, ``A_k^T g`` (without building the patches, which cost more than the rest), their squares summed,
        and the clipped sum ``sum_i c_i G_i`` from them: no weight-gradient pass of the convolution."""
        first = rules[0]
        parts = [r.rows(x, g) for r, x, g in zip(rules, xs, gs)]
        g = jnp.concatenate([p[1] for p in parts], axis=1)
        slices = [jnp.concatenate(per_call, axis=1) for per_call in zip(*(p[0] for p in parts))]
        t, q = g.shape[1], g.shape[-1]
        c = xs[0].shape[-1]
        if t == 1 or use_ghost(t, math.prod(first.kernel_size) * c, q):
            a = jnp.concatenate(slices, axis=-1)
            sq = matmul_sq_norms(a, g)
            kernel = lambda scale: jnp.einsum("btp,btq->pq", a, scaled(scale, g), precision=HIGHEST)
        else:
            grads = [jnp.einsum("btc,btq->bcq", a, g, precision=HIGHEST) for a in slices]
            sq = sum(jnp.sum(k ** 2, axis=(1, 2)) for k in grads)
            kernel = lambda scale: jnp.stack([jnp.sum(scaled(scale, k), axis=0) for k in grads])
        bias = bias_sq_norms(g) if first.use_bias else 0.0
        return sq + bias, kernel_and_bias_sums(kernel, g, first.use_bias)


class EmbedRule(Rule):
    """``nnx.Embed``: ``||G||^2 = sum_{t,s} [id_t = id_s] g_t . g_s`` over the example's tokens."""

    @staticmethod
    def group_sq_norms(rules, xs, gs, per_example_grads):
        ids = jnp.concatenate([x.reshape(x.shape[0], -1) for x in xs], axis=1)
        g = jnp.concatenate([_rows(g, 1) for g in gs], axis=1)
        if ids.shape[1] == 1:
            return jnp.sum(g[:, 0] ** 2, -1)
        same = (ids[:, :, None] == ids[:, None, :]).astype(jnp.float32)
        return jnp.sum(same * jnp.einsum("btq,bsq->bts", g, g, precision=HIGHEST), axis=(1, 2))


class DirectRule(Rule):
    """Small parameter sets (norm layers' scale and bias): the per-example gradients themselves."""

    @staticmethod
    def group_sq_norms(rules, xs, gs, per_example_grads):
        grads = jax.tree.leaves(per_example_grads(xs, gs))
        return sum(jnp.sum(g.astype(jnp.float32).reshape(g.shape[0], -1) ** 2, -1) for g in grads)


def rule_for(layer, args: tuple, kwargs: dict) -> Rule | str:
    """The rule for this call of ``layer``, or why it has none (its parameters then get per-example gradients)."""
    cls = type(layer)
    if cls not in KNOWN_LAYERS:
        return f"{cls.__name__} is not a known layer"
    if len(args) != 1 or any(v is not None for v in kwargs.values()):
        return f"{cls.__name__} called with arguments other than its input"
    x = args[0]
    if cls is nnx.Linear:
        if layer.dot_general is not lax.dot_general:
            return "Linear with a custom dot_general"
        return DenseRule((x.ndim - 1,), 1, layer.use_bias)
    if cls is nnx.LinearGeneral:
        if layer.batch_axis or layer.dot_general is not None or layer.dot_general_cls is not None:
            return "LinearGeneral with batch axes or a custom dot_general"
        axes = tuple(a % x.ndim for a in layer.axis)
        return DenseRule(tuple(sorted(axes)), len(layer.out_features), layer.use_bias, axes == tuple(sorted(axes)))
    if cls is nnx.Conv:
        if layer.mask is not None or layer.feature_group_count != 1 or \
                layer.conv_general_dilated is not lax.conv_general_dilated:
            return "Conv with a mask, feature groups or a custom convolution"
        if isinstance(layer.padding, str) and layer.padding.upper() in ("CIRCULAR", "REFLECT", "CAUSAL"):
            return f"Conv with {layer.padding} padding"
        return ConvRule(layer)
    if cls is nnx.Embed:
        if layer.num_embeddings == 1:
            return "Embed with a single row (broadcast, not a lookup)"
        return EmbedRule()
    if getattr(layer, "axis_name", None) is not None:
        return f"{cls.__name__} with cross-device statistics"
    return DirectRule()
