"""Ranges and shapes of config values, checked by one validator before anything runs.

A method declares its rules next to its presets, in ``configs/<method>/_schema.py``::

    from jaxsuite.core.schema import Check, Choice, Int, Tuple
    SCHEMA = {"model.channels": Tuple(Int(min=1), same_len_as="model.depths"), "model.kind": Choice("a", "b")}
    CHECKS = [Check(("pretrain.steps", "finetune_steps"), lambda c: c.pretrain.steps + c.finetune_steps > 0,
                    "must not both be 0: nothing would be trained")]

Rules by key name hold for every method (``DEFAULTS``): batch sizes are positive, step / iteration / epoch /
round counts non-negative, ``*_every`` cadences at least 1 (0 where it means "off": ``ZERO_MEANS_OFF``), seeds
in [0, 2**31), ``keep_checkpoints`` at least 1, floats finite. A method's own rule for a key replaces the default one.
Every violation is a :class:`ConfigError` naming the key, the expectation and the value.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from typing import Any, Callable

from jaxsuite.core.errors import ConfigError

SEED_LIMIT = 2 ** 31
ZERO_MEANS_OFF = ("checkpoint_every", "eval_every", "decay_every")  # cadences where 0 turns the thing off


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None

    def problem(self, value, config) -> str | None:
        text = "an integer" + _range(self.min, self.max)
        if not _is_int(value) or (self.min is not None and value < self.min) or \
                (self.max is not None and value > self.max):
            return text
        return None


@dataclasses.dataclass(frozen=True)
class Float:
    min: float | None = None
    max: float | None = None
    above: float | None = None  # strictly greater than

    def problem(self, value, config) -> str | None:
        text = "a finite number" + (f" > {self.above}" if self.above is not None else "") + _range(self.min, self.max)
        if not _is_num(value) or not math.isfinite(value) or (self.min is not None and value < self.min) or \
                (self.max is not None and value > self.max) or (self.above is not None and value <= self.above):
            return text
        return None


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", values)

    def problem(self, value, config) -> str | None:
        return None if value in self.values else "one of " + ", ".join(map(repr, self.values))


@dataclasses.dataclass(frozen=True)
class Tuple:
    of: Any = None  # the rule every element obeys
    len: int | None = None
    min_len: int = 0
    same_len_as: str | None = None  # a dotted key of another tuple

    def problem(self, value, config) -> str | None:
        if not isinstance(value, (tuple, list)):
            return "a tuple"
        want = self.len if self.same_len_as is None else len(_get(config, self.same_len_as))
        if want is not None and len(value) != want:
            whose = f" (one per entry of {self.same_len_as})" if self.same_len_as else ""
            return f"a tuple of {want} entries{whose}"
        if len(value) < self.min_len:
            return f"a tuple of at least {self.min_len} entries"
        if self.of is not None:
            for v in value:
                inner = self.of.problem(v, config)
                if inner:
                    return f"a tuple of {inner}s" if not inner.startswith("one of") else f"a tuple of ({inner})"
        return None


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule across keys: ``predicate(config)`` must hold; ``message`` says what the keys must satisfy."""
    keys: tuple[str, ...]
    predicate: Callable[[Any], bool]
    message: str


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    return f" <= {hi}" if hi is not None else ""


def _default_rule(key: str, value) -> Any:
    """The rule the key's name implies (see the module docstring), or None."""
    leaf = key.rsplit(".", 1)[-1]
    if re.search(r"(^|_)batch(_size)?$|^batch_|batch_size$", leaf):
        base = Int(min=1) if _is_int(value) or isinstance(value, (tuple, list)) else Float(above=0)
    elif leaf in ("seed", "seeds") or leaf.endswith("_seed"):
        base = Int(min=0, max=SEED_LIMIT - 1)
    elif leaf.endswith("_every") and leaf not in ZERO_MEANS_OFF or leaf == "keep_checkpoints":
        base = Int(min=1)
    elif re.search(r"(^|_)(steps|iterations|epochs|rounds)$|^num_|_every_", leaf) or leaf in ZERO_MEANS_OFF:
        base = Int(min=0)
    else:
        return None
    if isinstance(value, (tuple, list)):
        return Tuple(base, min_len=1 if leaf == "seeds" else 0)
    return base if _is_num(value) else None


def _leaves(config, prefix: str = ""):
    for k, v in config.items():
        if hasattr(v, "items"):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def validate(config, schema: dict | None = None, checks=()) -> None:
    """Raise :class:`ConfigError` for the first value that breaks its rule (the method's or the default)."""
    schema = schema or {}
    for key in schema:
        try:
            _get(config, key)
        except (KeyError, AttributeError, TypeError):
            raise ConfigError(f"schema names config key {key!r}, which the config does not have") from None
    for key, value in _leaves(config):
        rule = schema.get(key) or _default_rule(key, value)
        problem = rule.problem(value, config) if rule is not None else None
        if problem is None and isinstance(value, float) and not math.isfinite(value):
            problem = "a finite number"
        if problem:
            raise ConfigError(f"config key {key!r} must be {problem}, got {value!r}")
    for check in checks:
        if not check.predicate(config):
            values = ", ".join(f"{k}={_get(config, k)!r}" for k in check.keys)
            names = " and ".join(repr(k) for k in check.keys)
            raise ConfigError(f"config key{'s' if len(check.keys) > 1 else ''} {names} {check.message} ({values})")


def load_schema(path) -> tuple[dict, list]:
    """(SCHEMA, CHECKS) of a ``_schema.py`` file; ({}, []) when there is none."""
    if path is None or not path.is_file():
        return {}, []
    spec = importlib.util.spec_from_file_location(f"jaxsuite_schema_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(getattr(module, "SCHEMA", {})), list(getattr(module, "CHECKS", []))
