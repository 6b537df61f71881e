"""Per-example squared gradient norms of one layer from its inputs and output gradients, and the layer's clipped
sum formed on the *same route* as its norm, so that no input, crafted or not, can give an example a contribution
larger than the clip: ghost clipping (Li et al. 2022, "Large Language Models Can Be Strong Differentially Private
Learners", Sec. 4) and its mixed form for convolutions (Bu et al. 2022, "Scalable and Efficient Training of Large
Convolutional Neural Networks with Differential Privacy", Sec. 3), made safe against cancellation.

For a weight used as ``y_t = a_t W`` at T positions of one example (a sequence, the output pixels of a
convolution, or the same layer called several times), the example's gradient is ``G = sum_t a_t^T g_t`` with
``g_t = dl/dy_t``, and

    ||G||_F^2 = sum_{t,s} (a_t . a_s)(g_t . g_s)          (ghost: two T x T Gram matrices, O(T^2 (p + q)))
              = sum_{p,q} (sum_t a_tp g_tq)^2             (direct: the p x q gradient, O(T p q))

A bias is a weight on a constant input 1 (added to the Gram of the ``a_t``, not concatenated to them, which would
give p an odd size that XLA's matrix kernels run slower), so kernel and bias share one norm and one route.
The layer picks whichever form costs fewer multiply-adds (ghost when T (p + q) < p q), as mixed ghost clipping
picks per layer.

**Why the ghost form needs care.** Its Gram sum cancels: an example whose positions cancel in G (``a_1 = s u + d``,
``a_2 = -s u``) has Gram terms of size s^2 whose float32 sum rounds to a norm far below the true one, or below 0.
Clipped by that norm, its contribution to the sum is many times C (issue 33 measured 5.7 C). Here every route is
bounded by construction:

- *Direct form* (and Embed, norm layers, fallback leaves): the per-example gradient tensor is built once; the norm is
  measured on it and the clipped sum is ``sum_i c_i G_i`` of that same tensor. An example's contribution is then
  ``c_i G_i`` with ``c_i = min(1, C / ||G_i||)``, norm <= C up to the rounding of one product.
- *Ghost form*: for each example the norm gets a rigorous float32 error bound E (standard model, u = 2^-24,
  gamma_n = n u / (1 - n u)):

      |S~ - ||G||^2| <= E = gamma_p sum |a_t||a_s||G~g_ts| + gamma_q sum |G~a_ts||g_t||g_s|
                           + (u + gamma_{T^2}) sum |G~a_ts G~g_ts| + 3 gamma_p gamma_q (sum_t |a_t||g_t|)^2

  (G~a, G~g the computed Grams, |a_t| the row norms), and the norm used is ``sqrt(S~ + E)``: never below the true
  norm; above it by E / (2 S~), a relative 1e-6 to 1e-4 for ordinary examples (``NORM_TOLERANCE`` below states
  the bound that certifies an example). An example is *certified* when its cancellation ratio
  ``(sum_t |a_t||g_t|)^2 / (S~ - E)`` is at most ``CANCELLATION_LIMIT``: then the rounding of its share of the
  batched clipped sum ``A^T (c g)`` stays at the level of any float32 sum (about u x 100 x C). An example that is
  not certified (crafted cancellation, or a non-finite norm) is *rerouted*: it leaves the batched sum (its rows
  are zeroed) and up to ``FALLBACK_SLOTS`` such examples per layer get their per-example gradient built directly,
  norm and contribution from that tensor; any further one contributes zero and is counted as dropped. The
  direct computation costs K T p q; where that is more than an eighth of the Grams' B T^2 (p + q), it runs under
  ``lax.cond`` only in steps that have such an example.

An embedding row is used where the token is: per example, ``R_t = sum_s [id_t = id_s] g_s`` is the gradient of
token t's row (O(T^2 q), the ghost form's cost); the norm is the sum of ``||R_t||^2`` over each row's first
occurrence and the clipped sum scatters ``c_i R_t`` from those same tensors. Norm layers' scale and bias have as
many entries as features, so their per-example gradients are built directly, by the layer's own ``vjp`` under
``vmap`` (nothing is hand-derived), and their clipped sums come from them.

Sums of non-negative terms (the squared norms of a built tensor) have relative rounding at most (n - 1) u, and in
practice about log2(n) u; only sums that can cancel carry the bound above.

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
UNIT_ROUNDOFF = 2.0 ** -24  # float32
#: an example is certified in a ghost-form layer while (sum_t |a_t||g_t|)^2 <= this x (S~ - E): at most four
#: decimal digits of its float32 Gram sum cancel (ordinary examples: about T)
CANCELLATION_LIMIT = 1e4
#: examples per ghost-form layer and step that can be rerouted to their own per-example gradient
FALLBACK_SLOTS = 4
#: the slots' per-example gradients are built in every step when they cost at most this share of the Grams
#: (K T p q <= share x B T^2 (p + q)), else only in steps that reroute an example (``lax.cond``)
SLOTS_ALWAYS_BUILT = 1 / 8


def gamma(n: int) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of an n-term float32 dot product."""
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)


def norm_tolerance(t: int, p: int, q: int) -> float:
    """Worst-case relative excess of a certified example's ghost norm over its true norm (the bound E over 2 S~,
    with the cancellation ratio at its limit); ordinary examples sit a factor of about CANCELLATION_LIMIT / T
    below it."""
    return 1.01 * (gamma(p) + gamma(q) + UNIT_ROUNDOFF + gamma(t * t) + 3 * gamma(p) * gamma(q)) * CANCELLATION_LIMIT / 2


def _rows(x: jax.Array, feature_ndim: int) -> jax.Array:
    """[B, ..., *features] -> [B, T, prod(features)] (float32)."""
    return x.reshape(x.shape[0], -1, math.prod(x.shape[x.ndim - feature_ndim:])).astype(jnp.float32)


def ghost_sq_norms(a: jax.Array, g: jax.Array) -> jax.Array:
    """Per-example ``||a_i^T g_i||_F^2`` from the two T x T Gram matrices (no error bound: see ``certified``)."""
    gram_a = jnp.einsum("btp,bsp->bts", a, a, precision=HIGHEST)
    gram_g = jnp.einsum("btq,bsq->bts", g, g, precision=HIGHEST)
    return jnp.sum(gram_a * gram_g, axis=(1, 2))


def direct_sq_norms(a: jax.Array, g: jax.Array) -> jax.Array:
    """Per-example ``||a_i^T g_i||_F^2`` from the p x q per-example gradients."""
    return jnp.sum(jnp.einsum("btp,btq->bpq", a, g, precision=HIGHEST) ** 2, axis=(1, 2))


def use_ghost(t: int, p: int, q: int) -> bool:
    """The ghost form costs fewer multiply-adds than the direct one: T^2 (p + q) < T p q."""
    return t > 1 and t * (p + q) < p * q


def certified(a: jax.Array, g: jax.Array, bias: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(upper [B], ok [B] bool, ghost [B]) for a [B, T, p], g [B, T, q] (float32) and, with ``bias``, a constant
    input 1 appended to every a_t (the bias's; added to the Gram, not concatenated, so that p keeps its size):
    ``upper`` = S~ + E >= the true squared norm of the layer's (kernel, bias) gradient (module docstring), ``ok`` =
    finite and within the cancellation limit, ``ghost`` = S~."""
    t, p, q = a.shape[1], a.shape[2] + bias, g.shape[2]
    gram_a = jnp.einsum("btp,bsp->bts", a, a, precision=HIGHEST) + float(bias)
    gram_g = jnp.einsum("btq,bsq->bts", g, g, precision=HIGHEST)
    na, ng = jnp.sqrt(jnp.sum(a * a, -1) + float(bias)), jnp.sqrt(jnp.sum(g * g, -1))  # [B, T]
    ghost = jnp.sum(gram_a * gram_g, axis=(1, 2))
    bsum = jnp.sum(na * ng, -1)  # sum_t |a_t| |g_t| >= ||G|| (triangle inequality)
    terms = (gamma(p) * (na[:, :, None] * na[:, None, :]) * jnp.abs(gram_g)  # (one fused pass over the T x T)
             + gamma(q) * jnp.abs(gram_a) * (ng[:, :, None] * ng[:, None, :])
             + (UNIT_ROUNDOFF + gamma(t * t)) * jnp.abs(gram_a * gram_g))
    err = (jnp.sum(terms, axis=(1, 2)) + 3 * gamma(p) * gamma(q) * bsum ** 2) * 1.01  # (1.01: the bound's own
    # rounding)
    upper = ghost + err
    ok = jnp.isfinite(upper) & jnp.isfinite(bsum) & (bsum ** 2 <= CANCELLATION_LIMIT * jnp.maximum(ghost - err, 0.0))
    ok = ok | (bsum == 0)  # (an example whose layer gradient is exactly zero: padding)
    return upper, ok, ghost


def scaled(scale: jax.Array, x: jax.Array) -> jax.Array:
    """Row i of x times scale_i; rows with scale 0 (non-finite norms, rerouted or dropped examples) become exactly
    0, whatever they hold (NaN included)."""
    s = scale.reshape(scale.shape + (1,) * (x.ndim - 1))
    return jnp.where(s > 0, s.astype(x.dtype) * x, jnp.zeros_like(x))


class Norms:
    """What a layer's rule returns: per-example squared norms ``sq`` [B] (inf: the example contributes zero),
    ``sums(scale) -> {leaf name: clipped sum}`` formed on the norms' route, and per-example flags
    ``rerouted`` (a ghost-form example taken out of the batched sum and given its own gradient) and ``dropped``
    (one that found no fallback slot: its contribution is zero)."""

    def __init__(self, sq, sums, rerouted=None, dropped=None):
        self.sq, self.sums = sq, sums
        self.rerouted = jnp.zeros(sq.shape, bool) if rerouted is None else rerouted
        self.dropped = jnp.zeros(sq.shape, bool) if dropped is None else dropped


def matmul_norms(a: jax.Array, g: jax.Array, bias: bool, to_leaves: Callable,
                 slots: int = FALLBACK_SLOTS) -> Norms:
    """A weight used as ``y_t = a_t W`` (+ b with ``bias``): a [B, T, p] inputs, g [B, T, q] output gradients;
    ``to_leaves(kernel [p, q], bias [q] or None) -> {name: array}`` shapes the clipped sums as the layer's leaves.

    One position (T = 1): ``(|a|^2 + 1) |g|^2`` and the batched ``A^T (c g)``. Direct form: the per-example
    gradients, their norms and ``sum_i c_i G_i``. Ghost form: certified norms (module docstring), the batched
    ``A^T (c g)`` over certified examples, and the rerouted ones' own gradients. The bias's gradient ``sum_t g_t``
    always goes the kernel's way."""
    b, t, p = a.shape
    q = g.shape[-1]
    one = float(bias)
    if t == 1:  # one position: ||a g^T||^2 = |a|^2 |g|^2 (no cancellation); each example's share of A^T (c g) is
        # a single product per entry
        sq = (jnp.sum(a[:, 0] ** 2, -1) + one) * jnp.sum(g[:, 0] ** 2, -1)

        def sums_one(scale):
            cg = scaled(scale, g[:, 0])
            kernel = jnp.einsum("bp,bq->pq", jnp.where((scale > 0)[:, None], a[:, 0], 0.0), cg, precision=HIGHEST)
            return to_leaves(kernel, jnp.sum(cg, axis=0) if bias else None)

        return Norms(sq, sums_one)
    if not use_ghost(t, p + bias, q):
        grads = jnp.einsum("btp,btq->bpq", a, g, precision=HIGHEST)
        bgrads = jnp.sum(g, axis=1) if bias else None
        sq = jnp.sum(grads ** 2, axis=(1, 2)) + (jnp.sum(bgrads ** 2, -1) if bias else 0.0)
        return Norms(sq, lambda scale: to_leaves(jnp.sum(scaled(scale, grads), axis=0),
                                                 jnp.sum(scaled(scale, bgrads), axis=0) if bias else None))
    upper, ok, _ = certified(a, g, bias)
    k = min(b, slots)
    flagged = ~ok
    # rerouted: the first k flagged examples, finite ones first (a non-finite one contributes zero anyway)
    priority = jnp.where(flagged, jnp.where(jnp.isfinite(upper), 2.0, 1.0), 0.0)
    _, idx = lax.top_k(priority, k)
    hit = (jnp.arange(b)[:, None] == idx[None, :]) & flagged[idx][None, :]  # [B, k]: example i in slot j (no scatter)
    in_slot = jnp.any(hit, axis=1)

    def direct(_):
        return (jnp.einsum("ktp,ktq->kpq", a[idx], g[idx], precision=HIGHEST),
                jnp.sum(g[idx], axis=1) if bias else jnp.zeros((k, q), jnp.float32))

    if k * (p + bias) * q <= SLOTS_ALWAYS_BUILT * b * t * (p + bias + q):  # cheap next to the Grams: always built
        own, own_b = direct(None)                                           # (a lax.cond is a sync point in
    else:                                                                   # XLA's CPU schedule)
        own, own_b = lax.cond(jnp.any(in_slot), direct,
                              lambda _: (jnp.zeros((k, p, q), jnp.float32), jnp.zeros((k, q), jnp.float32)), None)
    own_sq = jnp.sum(jnp.where(hit, jnp.sum(own ** 2, axis=(1, 2)) + jnp.sum(own_b ** 2, -1), 0.0), axis=1)
    sq = jnp.where(ok, upper, jnp.where(in_slot, own_sq, jnp.inf))
    a_ok = jnp.where(ok[:, None, None], a, 0.0)

    def sums(scale):
        cg = scaled(jnp.where(ok, scale, 0.0), g)
        c_own = jnp.where(in_slot, scale, 0.0)[idx]
        kernel = (jnp.einsum("btp,btq->pq", a_ok, cg, precision=HIGHEST)
                  + jnp.sum(scaled(c_own, own), axis=0))
        return to_leaves(kernel, jnp.sum(cg, axis=(0, 1)) + jnp.sum(scaled(c_own, own_b), axis=0) if bias else None)

    return Norms(sq, sums, rerouted=in_slot, dropped=flagged & ~in_slot & jnp.isfinite(upper))


def kernel_and_bias(kernel_shape: Callable) -> Callable:
    """(kernel [p, q], bias [q] or None) -> {"kernel": kernel_shape(kernel), "bias": bias} (the layer's leaves)."""
    def leaves(kernel, bias):
        out = {"kernel": kernel_shape(kernel)}
        if bias is not None:
            out["bias"] = bias
        return out
    return leaves


class Rule:
    """How one layer's per-example squared gradient norms and clipped sums come from its calls:
    ``group_norms(rules, xs, gs, per_example_grads, names)`` takes the rules, inputs ``xs`` and output gradients
    ``gs`` of all calls of the same layer (lists, each entry [B, *one example's shape]), the layer's per-example
    parameter gradients built with its own vjp (``per_example_grads(xs, gs)``, a list in the order of ``names``)
    and the layer's leaf names; it returns ``Norms``."""

    @staticmethod
    def group_norms(rules: list, xs: list, gs: list, per_example_grads: Callable, names: tuple) -> Norms:
        raise NotImplementedError


class DenseRule(Rule):
    """``nnx.Linear`` and ``nnx.LinearGeneral`` without batch axes: ``axes`` input axes (of one example's input,
    in the kernel's order) contracted against the kernel, ``out_ndim`` output feature axes."""

    def __init__(self, axes: tuple[int, ...], out_ndim: int, use_bias: bool):
        self.axes, self.out_ndim, self.use_bias = axes, out_ndim, use_bias
        self.contract = tuple(sorted(axes))

    def rows(self, x: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
        """([B, T, p] inputs, [B, T, q] output gradients) of one call; p in the kernel's input-axis order."""
        k = len(self.axes)
        x = jnp.moveaxis(x, [c + 1 for c in self.axes], range(x.ndim - k, x.ndim))
        return _rows(x, k), _rows(g, self.out_ndim)

    @staticmethod
    def group_norms(rules, xs, gs, per_example_grads, names):
        first = rules[0]
        a, g = (jnp.concatenate(parts, axis=1) for parts in zip(*(r.rows(x, g) for r, x, g in zip(rules, xs, gs))))
        in_shape = tuple(xs[0].shape[c + 1] for c in first.axes)
        out_shape = gs[0].shape[gs[0].ndim - first.out_ndim:]
        kernel = lambda m: m.reshape(m.shape[:-2] + in_shape + out_shape)
        return matmul_norms(a, g, first.use_bias, kernel_and_bias(kernel))


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
    def group_norms(rules, xs, gs, per_example_grads, names):
        """A dense layer on the unfolded patches A (the offsets' slices side by side, kernel layout). Ghost form:
        ``matmul_norms`` on A. Direct form: the per-example gradients offset by offset, ``A_k^T g`` (without
        building the patches, which cost more than the rest), their squares summed, and the clipped sum
        ``sum_i c_i G_i`` from them."""
        first = rules[0]
        parts = [r.rows(x, g) for r, x, g in zip(rules, xs, gs)]
        g = jnp.concatenate([p[1] for p in parts], axis=1)
        slices = [jnp.concatenate(per_call, axis=1) for per_call in zip(*(p[0] for p in parts))]
        t, q, c = g.shape[1], g.shape[-1], xs[0].shape[-1]
        kernel = lambda m: m.reshape(m.shape[:-2] + first.kernel_size + (c, q))
        if use_ghost(t, math.prod(first.kernel_size) * c + first.use_bias, q):
            return matmul_norms(jnp.concatenate(slices, axis=-1), g, first.use_bias, kernel_and_bias(kernel))
        grads = [jnp.einsum("btc,btq->bcq", a, g, precision=HIGHEST) for a in slices]
        bgrads = jnp.sum(g, axis=1) if first.use_bias else None
        sq = sum(jnp.sum(k ** 2, axis=(1, 2)) for k in grads) + (jnp.sum(bgrads ** 2, -1) if first.use_bias else 0.0)
        return Norms(sq, lambda scale: kernel_and_bias(kernel)(
            jnp.concatenate([jnp.sum(scaled(scale, k), axis=0) for k in grads]),
            jnp.sum(scaled(scale, bgrads), axis=0) if first.use_bias else None))


class EmbedRule(Rule):
    """``nnx.Embed``: token t's row gets ``R_t = sum_s [id_t = id_s] g_s``; the norm sums ``||R_t||^2`` over each
    row's first occurrence, and the clipped sum scatters ``c_i R_t`` from the same tensors."""

    def __init__(self, num_embeddings: int):
        self.num_embeddings = num_embeddings

    @staticmethod
    def group_norms(rules, xs, gs, per_example_grads, names):
        ids = jnp.concatenate([x.reshape(x.shape[0], -1) for x in xs], axis=1)
        g = jnp.concatenate([_rows(g, 1) for g in gs], axis=1)
        t = ids.shape[1]
        same = ids[:, :, None] == ids[:, None, :]
        rows = jnp.einsum("bts,bsq->btq", same.astype(jnp.float32), g, precision=HIGHEST)
        first = ~jnp.any(same & jnp.tril(jnp.ones((t, t), bool), -1), axis=-1)  # no earlier s with the same id
        rows = jnp.where(first[..., None], rows, 0.0)
        sq = jnp.sum(rows ** 2, axis=(1, 2))

        def sums(scale):
            table = jnp.zeros((rules[0].num_embeddings, g.shape[-1]), jnp.float32)
            return {names[0]: table.at[ids.reshape(-1)].add(scaled(scale, rows).reshape(-1, g.shape[-1]))}

        return Norms(sq, sums)


class DirectRule(Rule):
    """Small parameter sets (norm layers' scale and bias): the per-example gradients themselves."""

    @staticmethod
    def group_norms(rules, xs, gs, per_example_grads, names):
        grads = per_example_grads(xs, gs)
        sq = sum(jnp.sum(g.astype(jnp.float32).reshape(g.shape[0], -1) ** 2, -1) for g in grads)
        return Norms(sq, lambda scale: {n: jnp.sum(scaled(scale, g), axis=0) for n, g in zip(names, grads)})


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
        return DenseRule(tuple(a % x.ndim for a in layer.axis), len(layer.out_features), layer.use_bias)
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
        return EmbedRule(layer.num_embeddings)
    if getattr(layer, "axis_name", None) is not None:
        return f"{cls.__name__} with cross-device statistics"
    return DirectRule()
