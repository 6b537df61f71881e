"""DP-SGD's clipped gradient sum without per-example gradients: ghost norms (Li et al. 2022; mixed ghost
clipping for convolutions, Bu et al. 2022) and book-keeping (Bu et al. 2023, "Differentially Private
Optimization on Large Model at Small Cost", Alg. 1), for NNX models as they are, with a guarantee that holds for
every input: each example's contribution to the sum has L2 norm at most C (``ghost_rules`` says how).

``ghost_clipped_grad_sum(loss_fn, C)`` has the contract of ``dpsgd.clipped_grad_sum(loss_fn, C)`` (the vmap path,
its exact reference): ``loss_fn(params, example)`` on a batch of one, ``fn(params, batch) -> sum_i clip_C(g_i)``.

1. Discovery (``taps``): trace the loss once and find the calls of known layers (Dense, LinearGeneral, Conv,
   Embed, LayerNorm, RMSNorm) whose parameters are params leaves used nowhere else.
2. One pass under ``vmap``: the loss, with a zero probe added to each tapped layer's output. Its gradient with
   respect to the probes is each layer's per-example output gradient ``g``; the layers' inputs ``a`` are kept.
   Leaves that no tapped call covers (unknown layers, tied weights, calls inside nested transforms) get their
   per-example gradients here by plain ``vmap(grad)``, the reference path restricted to them.
3. Per-example norms: ``ghost_rules`` per tapped layer from (a, g), plus the fallback leaves' gradients;
   clip factors ``c_i = min(1, C / ||g_i||)``, zero for a non-finite norm (counted in the stats).
4. Book-keeping: each tapped layer forms its clipped sum from the tensors its norm was measured on (its
   per-example gradients, or ``A^T (c g)`` over the examples whose ghost norm is certified, plus the rerouted
   examples' own gradients), with no second backward pass through the network.

The per-example losses are independent by construction (each is traced on its own example under ``vmap``), so
a batch sharded over a mesh axis gives the same norms and sums as one device.
"""
from __future__ import annotations

import warnings
from typing import Callable

import jax
import jax.numpy as jnp

from jaxsuite.privacy import taps
from jaxsuite.privacy.ghost_rules import scaled as _scaled


def discover(loss_fn: Callable, params, example) -> tuple[list[taps.Call], set[int]]:
    """The known layers' calls of ``loss_fn(params, example)`` (example: a batch of one), each tapped or with the
    reason it is not, and the indices of the flat params leaves the loss uses outside tapped calls."""
    leaves, treedef = jax.tree.flatten(params)
    found: list[taps.Call] = []

    def traced(p_leaves, tap_leaves, ex):
        recorder = taps.Recorder(p_leaves, tap_leaves=tap_leaves)
        with taps.tapping(recorder):
            out = loss_fn(jax.tree.unflatten(treedef, p_leaves), ex)
        found.extend(recorder.calls)
        return out

    abstract = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in leaves]
    jaxpr = jax.make_jaxpr(traced)(abstract, abstract, example).jaxpr
    used = {id(v) for eqn in jaxpr.eqns for v in eqn.invars} | {id(v) for v in jaxpr.outvars}
    elsewhere = {i for i, v in enumerate(jaxpr.invars[:len(leaves)]) if id(v) in used}
    owners: dict[int, set] = {}
    for call in found:
        for i in call.leaf_ids or ():
            owners.setdefault(i, set()).add((call.cls, call.leaf_ids))
    for call in found:
        if call.leaf_ids is None:
            continue
        if elsewhere.intersection(call.leaf_ids):
            call.why_not = "a parameter is also used outside this layer's calls (tied or read directly)"
        elif any(len(owners[i]) > 1 for i in call.leaf_ids):
            call.why_not = "a parameter is shared with a different layer"
        else:
            continue
        call.leaf_ids = None
    return found, elsewhere


def _per_example_grads(apply: Callable, values: list) -> Callable:
    """(xs, gs) -> the layer's per-example parameter gradients, summed over its calls (the direct form)."""
    def one(xs, gs):
        _, vjp = jax.vjp(lambda v: [apply(v, x) for x in xs], values)
        return vjp(gs)[0]
    return lambda xs, gs: jax.vmap(one)(xs, gs)


def clip_stats(norms: jax.Array, rerouted: jax.Array, dropped: jax.Array) -> dict:
    """The step's counts of examples whose norm was not finite (contribution zero), that were rerouted to their own
    gradient in some ghost-form layer, and that found no fallback slot (contribution zero)."""
    return {"nonfinite": jnp.sum(~jnp.isfinite(norms) & ~dropped), "rerouted": jnp.sum(rerouted),
            "dropped": jnp.sum(dropped)}


def ghost_clipped_grad_sum(loss_fn: Callable[..., jax.Array], clip_norm: float, *, return_norms: bool = False,
                           return_stats: bool = False, warn_fallback: bool = True):
    """``fn(params, batch) -> sum_i clip_C(grad loss_fn(params, batch[i:i+1]))`` by ghost norms and book-keeping;
    with ``return_norms`` also the per-example norms the clip used (never below the true norms; inf for an example
    that contributes zero), with ``return_stats`` also ``clip_stats``' counts (in that order). Equal to
    ``dpsgd.clipped_grad_sum`` (the vmap path) up to float rounding and ``ghost_rules``' stated tolerance."""
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm}")

    def fn(params, batch):
        leaves, treedef = jax.tree.flatten(params)
        size = jax.tree.leaves(batch)[0].shape[0]
        example = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype), batch)
        calls, elsewhere = discover(loss_fn, params, example)
        tapped = [c for c in calls if c.leaf_ids is not None]
        groups: dict[tuple, list[int]] = {}
        for j, call in enumerate(tapped):
            groups.setdefault(call.leaf_ids, []).append(j)
        covered = {i for key in groups for i in key}
        fallback = sorted(elsewhere - covered)  # used, but by no tapped call: per-example gradients
        if warn_fallback and fallback:
            paths = [jax.tree_util.keystr(p, simple=True, separator="/").removesuffix("/value")
                     for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
            reasons = sorted({f"{c.cls.__name__} ({c.why_not})" for c in calls if c.why_not})
            warnings.warn(f"ghost clipping: per-example gradients (the vmap path) for {[paths[i] for i in fallback]}"
                          f"; untapped known layers: {reasons or 'none'}", stacklevel=2)

        def one(fallback_leaves, probes, ex):
            full = list(leaves)
            for i, leaf in zip(fallback, fallback_leaves):
                full[i] = leaf
            recorder = taps.Recorder([], calls=calls, probes=probes)
            with taps.tapping(recorder):
                loss = loss_fn(jax.tree.unflatten(treedef, full), ex)
            if recorder.count != len(calls):
                raise RuntimeError(f"ghost clipping: the loss called {recorder.count} known layers on its second "
                                   f"trace, {len(calls)} on its first; it must be a deterministic function of "
                                   f"(params, batch)")
            return loss, recorder.inputs

        def per_example(fallback_leaves, ex):  # probes made per example: they take the batch's sharding
            probes = [jnp.zeros(c.y_shape, c.y_dtype) for c in tapped]
            return jax.grad(one, argnums=(0, 1), has_aux=True)(fallback_leaves, probes, ex)

        singles = jax.tree.map(lambda x: x[:, None], batch)
        (fallback_grads, out_grads), inputs = jax.vmap(per_example, in_axes=(None, 0))(
            [leaves[i] for i in fallback], singles)
        sq = jnp.zeros((size,), jnp.float32)
        rerouted = dropped = jnp.zeros((size,), bool)
        layers = {}
        for key, js in groups.items():
            first = tapped[js[0]]
            layers[key] = first.rule.group_norms(
                [tapped[j].rule for j in js], [inputs[j] for j in js], [out_grads[j] for j in js],
                _per_example_grads(first.apply, [leaves[i] for i in key]), first.leaf_names)
            sq = sq + layers[key].sq
            rerouted, dropped = rerouted | layers[key].rerouted, dropped | layers[key].dropped
        for g in fallback_grads:
            sq = sq + jnp.sum(g.astype(jnp.float32).reshape(size, -1) ** 2, -1)
        norms = jnp.sqrt(sq)
        scale = jnp.where(jnp.isfinite(norms), jnp.minimum(1.0, clip_norm / norms), 0.0)

        out = [jnp.zeros_like(leaf) for leaf in leaves]  # a leaf the loss never uses has gradient 0
        for key, js in groups.items():
            named = layers[key].sums(scale)
            for i, name in zip(key, tapped[js[0]].leaf_names):
                out[i] = named[name].reshape(leaves[i].shape).astype(leaves[i].dtype)
        for i, g in zip(fallback, fallback_grads):
            out[i] = jnp.sum(_scaled(scale, g), axis=0)
        result = (jax.tree.unflatten(treedef, out),)
        if return_norms:
            result += (norms,)
        if return_stats:
            result += (clip_stats(norms, rerouted, dropped),)
        return result if len(result) > 1 else result[0]

    return fn
