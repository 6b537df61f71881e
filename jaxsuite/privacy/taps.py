"""Intercepting the calls of known NNX layers inside a traced loss, for ghost clipping (``ghost.py``).

While a ``Recorder`` is active (``with tapping(recorder):``), every call of an ``nnx.Linear``, ``LinearGeneral``,
``Conv``, ``Embed``, ``LayerNorm`` or ``RMSNorm`` instance (exactly those classes, not subclasses, which may
compute differently) goes through the recorder; outside it the layers are untouched. The model code is not
changed: the classes' ``__call__`` are swapped only for the duration of the ``with`` block.

Two passes use it. *Discovery* traces the per-example loss once (``jax.make_jaxpr``) and, for each layer call,
decides whether the call can be tapped: its layer's configuration has a rule (``ghost_rules``), all its
parameters are leaves of the params the loss was given (matched by identity after ``nnx.merge``), and the call
happens in the loss's own trace (not inside a nested ``vmap``/``scan``/``remat``, whose values cannot leave it).
During discovery a tapped layer computes with a *copy* of its parameters (``tap_leaves``), so that a leaf of
the original params still used by the jaxpr is used somewhere else too (tied weights, ``Embed.attend``, raw
reads): such leaves are not ghost-clippable and fall back to per-example gradients. *Replay* traces the loss
again under ``vmap`` and, for each tapped call, records the layer's input and adds a zero probe ``z`` to its
output, so that the gradient with respect to ``z`` is the layer's per-example output gradient.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from typing import Any, Callable

import jax
import jax.extend.core as jex
from flax import nnx

from jaxsuite.privacy import ghost_rules

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("jaxsuite_ghost_recorder", default=None)
_PATCH_LOCK = threading.Lock()
_PATCH_DEPTH = [0]
_ORIGINAL_CALLS: dict[type, Callable] = {}


@dataclasses.dataclass
class Call:
    """One call of a known layer in the loss's own trace, as discovery saw it."""
    cls: type
    x_shape: tuple
    y_shape: tuple = ()
    y_dtype: Any = None
    leaf_ids: tuple[int, ...] | None = None  # indices into the flat params; None: not tapped
    leaf_names: tuple[str, ...] = ()  # the layer's names of those leaves ("kernel", "bias", ...)
    rule: ghost_rules.Rule | None = None
    apply: Callable | None = None  # (param leaves, x) -> the layer's own output with those parameters
    why_not: str = ""


def _trace_state():
    return jex.get_opaque_trace_state(convention="nnx")


class Recorder:
    """Discovery (``tap_leaves`` given) or replay (``calls`` and ``probes`` given) of the known layers' calls."""

    def __init__(self, leaves: list, *, tap_leaves: list | None = None, calls: list[Call] | None = None,
                 probes: list | None = None):
        self.leaf_index = {id(leaf): i for i, leaf in enumerate(leaves)}
        self.tap_leaves, self.probes = tap_leaves, probes
        self.calls: list[Call] = [] if calls is None else calls
        self.discovering = calls is None
        self.inputs: list = []  # replay: the input of each tapped call, in call order
        self.count = 0
        self.trace = _trace_state()

    def __call__(self, layer, original: Callable, args: tuple, kwargs: dict):
        if _trace_state() != self.trace:  # inside a nested transform of the loss: leave it alone
            return original(layer, *args, **kwargs)
        k, self.count = self.count, self.count + 1
        if self.discovering:
            return self._discover(layer, original, args, kwargs)
        call = self.calls[k] if k < len(self.calls) else None
        x = args[0] if args else None
        if call is None or type(layer) is not call.cls or getattr(x, "shape", None) != call.x_shape:
            raise RuntimeError(f"ghost clipping: the loss called its layers differently on its second trace (call "
                               f"{k}: {type(layer).__name__}); the loss must be a deterministic function of "
                               f"(params, batch)")
        if call.leaf_ids is None:
            return original(layer, *args, **kwargs)
        self.inputs.append(x)
        return original(layer, *args, **kwargs) + self.probes[len(self.inputs) - 1]

    def _discover(self, layer, original, args, kwargs):
        call = Call(type(layer), getattr(args[0], "shape", None) if args else None)
        self.calls.append(call)
        rule = ghost_rules.rule_for(layer, args, kwargs)
        if isinstance(rule, str):
            call.why_not = rule
            return original(layer, *args, **kwargs)
        graphdef, state = nnx.split(layer)
        paths, treedef = jax.tree_util.tree_flatten_with_path(state)
        leaves = [leaf for _, leaf in paths]
        ids = tuple(self.leaf_index.get(id(leaf), -1) for leaf in leaves)
        if not leaves or -1 in ids:
            call.why_not = "its parameters are not leaves of the params given to the loss"
            return original(layer, *args, **kwargs)
        nnx.update(layer, jax.tree.unflatten(treedef, [self.tap_leaves[i] for i in ids]))
        y = original(layer, *args, **kwargs)
        nnx.update(layer, jax.tree.unflatten(treedef, leaves))  # (``state`` holds the live variables: not a copy)
        call.y_shape, call.y_dtype, call.leaf_ids, call.rule = y.shape, y.dtype, ids, rule
        call.leaf_names = tuple(jax.tree_util.keystr(p, simple=True, separator="/").removesuffix("/value")
                                for p, _ in paths)
        call.apply = lambda values, x: nnx.merge(graphdef, jax.tree.unflatten(treedef, list(values)))(x)
        return y


def _tapped(original: Callable) -> Callable:
    def call(self, *args, **kwargs):
        recorder = _ACTIVE.get()
        if recorder is None:
            return original(self, *args, **kwargs)
        return recorder(self, original, args, kwargs)

    call.__wrapped__ = original
    return call


@contextlib.contextmanager
def tapping(recorder: Recorder):
    """Route the known layers' calls through ``recorder`` for the duration of the block."""
    with _PATCH_LOCK:
        if _PATCH_DEPTH[0] == 0:
            for cls in ghost_rules.KNOWN_LAYERS:
                _ORIGINAL_CALLS[cls] = cls.__dict__["__call__"]
                cls.__call__ = _tapped(_ORIGINAL_CALLS[cls])
        _PATCH_DEPTH[0] += 1
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)
        with _PATCH_LOCK:
            _PATCH_DEPTH[0] -= 1
            if _PATCH_DEPTH[0] == 0:
                for cls, original in _ORIGINAL_CALLS.items():
                    cls.__call__ = original
