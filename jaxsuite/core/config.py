"""Configs: ``configs/<method>/<preset>.py`` define ``get_config() -> ml_collections.ConfigDict``.

``load_config`` returns a locked ConfigDict with ``--set key=value`` overrides applied and checked against
the method's ranges and shapes (``configs/<method>/_schema.py``, :mod:`jaxsuite.core.schema`). An unknown
key, a value of the wrong type (a tuple's elements included), a value out of range, an unknown preset or a
preset file that does not load raises :class:`ConfigError` with a one-line message that names it.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
from typing import Any, Iterable

import ml_collections

from jaxsuite.core import schema as schema_lib
from jaxsuite.core.errors import ConfigError


def configs_root() -> Path:
    """The ``configs/`` folder of the checkout (``$JAXSUITE_CONFIGS`` overrides it)."""
    env = os.environ.get("JAXSUITE_CONFIGS")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "configs"
    if not root.is_dir():
        raise ConfigError(
            f"configs folder {root} not found: install jaxsuite from a clone with `pip install -e .` "
            "or set JAXSUITE_CONFIGS")
    return root


def presets(method: str) -> list[str]:
    """Names of the presets shipped for ``method`` (the .py files in configs/<method>/)."""
    folder = configs_root() / method
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")) if folder.is_dir() else []


def preset_path(method: str, preset: str) -> Path:
    """Resolve a preset name or a path to a config file."""
    if preset.endswith(".py") or os.sep in preset:
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"config file {preset!r} does not exist")
        return path
    path = configs_root() / method / f"{preset}.py"
    if not path.is_file():
        raise ConfigError(
            f"unknown preset {preset!r} for method {method!r} (known: {', '.join(presets(method)) or 'none'})")
    return path


def load_config(method: str, preset: str = "quick", overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """Load a preset and apply ``key=value`` overrides; the result is locked against new keys."""
    path = preset_path(method, preset)
    config = _exec_preset(path, method)
    config.lock()
    for item in overrides:
        apply_override(config, item)
    validate(method, config)
    return config


def _exec_preset(path: Path, method: str) -> ml_collections.ConfigDict:
    """Run a preset file's ``get_config()``; whatever goes wrong in it is one line naming the file."""
    try:
        spec = importlib.util.spec_from_file_location(f"jaxsuite_config_{method}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ConfigError(f"config file {path} has a syntax error at line {err.lineno}: {err.msg}") from None
    except Exception as err:  # noqa: BLE001 -- a user's file: any failure is reported as one line
        raise ConfigError(f"config file {path} failed to load: {type(err).__name__}: {err}") from None
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path} defines no get_config()")
    try:
        config = module.get_config()
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"get_config() of {path} failed: {type(err).__name__}: {err}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"get_config() of {path} returned a {type(config).__name__}, expected a ConfigDict")
    return config


def validate(method: str, config: ml_collections.ConfigDict) -> None:
    """Check ``config`` against ``configs/<method>/_schema.py`` and the rules every method shares."""
    folder = configs_root() / method
    table, checks = schema_lib.load_schema(folder / "_schema.py")
    schema_lib.validate(config, table, checks)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def _coerce(key: str, old: Any, raw: str) -> Any:
    value = _parse_value(raw)
    if old is None:
        return value
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(old, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(old, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(old, str):
        return raw
    elif isinstance(old, (tuple, list)):
        if isinstance(value, (tuple, list)):
            return type(old)(_coerce_items(key, old, value, raw))
    else:
        raise ConfigError(f"config key {key!r} holds a {type(old).__name__} and cannot be set from the command line")
    raise ConfigError(f"config key {key!r} expects {type(old).__name__}, got {raw!r}")


def _coerce_items(key: str, old, value, raw: str) -> list:
    """A tuple's new elements typed as the preset's (when they all have one of bool, int, float, str)."""
    kinds = {type(v) for v in old}
    if len(kinds) != 1 or (kind := kinds.pop()) not in (bool, int, float, str):
        return list(value)
    out = []
    for v in value:
        if kind is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif type(v) is kind:
            out.append(v)
        else:
            raise ConfigError(f"config key {key!r} expects a tuple of {kind.__name__}, got {raw!r}")
    return out


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
    """Apply one ``dotted.key=value`` override in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    *parents, leaf = key.split(".")
    node = config
    for i, part in enumerate(parents):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise ConfigError(f"unknown config key {'.'.join(parents[:i + 1])!r}")
        node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        known = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else ""
        raise ConfigError(f"unknown config key {key!r} (known: {known})")
    old = node[leaf]
    if isinstance(old, ml_collections.ConfigDict):
        raise ConfigError(f"config key {key!r} is a group; set one of its keys ({', '.join(sorted(old.keys()))})")
    with node.unlocked():
        node[leaf] = _coerce(key, old, raw)


def set_key(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    """Set ``dotted`` (its parent groups must exist; the leaf may be new) to ``value`` in place, typed as given."""
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
        if not isinstance(node, ml_collections.ConfigDict) or p not in node:
            raise ConfigError(f"config key {dotted!r} does not exist")
        node = node[p]
    with node.unlocked():
        node[leaf] = value


def variant_config(config: ml_collections.ConfigDict, variants: dict, variant: str,
                   method: str, kinds: tuple[str, ...] | None = None) -> ml_collections.ConfigDict:
    """A copy of ``config`` with the overrides of ``variants[variant]`` = (description, {key: value}) applied;
    with ``kinds``, its ``kind`` key must be one of them."""
    if variant not in variants:
        raise ConfigError(f"unknown variant {variant!r} for {method} (known: {', '.join(variants)})")
    cfg = ml_collections.ConfigDict(config.to_dict())
    for key, value in variants[variant][1].items():
        set_key(cfg, key, value)
    if kinds is not None and cfg.kind not in kinds:
        raise ConfigError(f"config key 'kind' must be one of {kinds}, got {cfg.kind!r}")
    return cfg


def to_dict(config: ml_collections.ConfigDict) -> dict:
    """A JSON-friendly plain dict of the config (tuples become lists)."""
    return config.to_dict()
