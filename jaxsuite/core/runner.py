"""`jaxsuite run` and `jaxsuite reproduce`: run variants of a method and assemble the results contract."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax

from jaxsuite.core import registry, results, sharding
from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError, UserError


class Interrupted(Exception):
    """A run was stopped by SIGTERM/SIGINT after saving its checkpoint."""


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def run_one(method: str, config, variant: str, seed: int, workdir: Path, *, shared_dir: Path | None = None,
            progress: bool = True, on_config_change: str = "error") -> dict:
    """One run in ``workdir``, resuming its checkpoints only if they were made with this config; for a workdir of
    another config ``on_config_change`` says what happens: "error" (``jaxsuite run``: the folder is the user's) or
    "clear" (``reproduce``: the folder is its own)."""
    exp = registry.get(method)
    if variant not in exp.VARIANTS:
        raise ConfigError(f"unknown variant {variant!r} for {method} (known: {', '.join(exp.VARIANTS)})")
    exp.check_data(config)
    _claim_workdir(workdir, _plain(config), on_change=on_config_change)
    metrics = exp.run(config, variant, seed, workdir, shared_dir=shared_dir, progress=progress)
    if metrics is None:
        raise Interrupted(f"{method}/{variant} seed {seed} stopped; its checkpoint is in {workdir}: "
                          "run the same command again to resume")
    return metrics


def _plain(config) -> dict:
    """The config as a summary / stamp reads it back (tuples -> lists)."""
    return json.loads(json.dumps(config.to_dict()))


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _differing_keys(x, y, f"{prefix}{k}.")
        elif x != y:
            keys.append(prefix + k)
    return keys


def _claim_workdir(workdir: Path, config_dict: dict, *, on_change: str = "clear") -> None:
    """Keep a run's checkpoints only for the config they were made with: a stopped run of the same config resumes;
    a workdir of another config is cleared (``on_change="clear"``, also for a workdir without a stamp) or refused
    (``"error"``; a workdir without a stamp, from before stamps, is then taken as it is)."""
    stamp = workdir / "config.json"
    old = json.loads(stamp.read_text()) if stamp.exists() else None
    if workdir.exists() and old != config_dict:
        if on_change == "clear":
            shutil.rmtree(workdir)
        elif old is not None:
            raise UserError(f"{workdir} holds a run of another config (differing keys: "
                            f"{', '.join(_differing_keys(old, config_dict))}); resuming it would mix the two: "
                            "choose another --workdir or delete that one")
    workdir.mkdir(parents=True, exist_ok=True)
    if old != config_dict:  # written once, atomically: every process of a multi-host run reads it
        tmp = stamp.with_name(f"config.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(config_dict, indent=1))
        os.replace(tmp, stamp)


def reproduce(method: str, preset: str = "quick", overrides=(), seeds=None, out: str | Path = "results",
              progress: bool = True) -> dict:
    """Every variant of ``config.variants`` x every seed; writes OUT/METHOD/results.{json,md} and a plot.

    Finished runs (``summary.json`` with the same config) are reused, so a stopped reproduce resumes.
    """
    t0 = time.perf_counter()
    exp = registry.get(method)
    config = load_config(method, preset, overrides)
    exp.check_data(config)
    seeds = list(config.seeds) if seeds is None else list(seeds)
    variants = list(config.variants)
    unknown = [v for v in variants if v not in exp.VARIANTS]
    if unknown:
        raise ConfigError(f"config key 'variants' names unknown variants {unknown} (known: {', '.join(exp.VARIANTS)})")
    out_dir = Path(out) / method
    meta = exp.results_meta(config)
    config_dict = _plain(config)
    per_variant: dict[str, dict[str, list]] = {}
    pretrain_by_seed: dict[int, dict] = {}
    extra: dict[str, dict[str, list]] = {}  # "extra/<name>" metrics: results.json's extra.<name>.<variant>
    for variant in variants:
        for seed in seeds:
            workdir = out_dir / "runs" / variant / f"seed{seed}"
            summary = workdir / "summary.json"
            cached = json.loads(summary.read_text()) if summary.exists() else None
            if cached is not None and cached.get("config") == config_dict:
                metrics = cached["metrics"]
            else:
                print(f"[{method}] {variant} seed {seed}", file=sys.stderr, flush=True)
                metrics = run_one(method, config, variant, seed, workdir, shared_dir=out_dir / "shared",
                                  progress=progress, on_config_change="clear")
                summary.write_text(json.dumps({"config": config_dict, "metrics": metrics}, indent=1))
            for k, v in metrics.items():
                if k.startswith("pretrain_"):  # phase-1 networks, shared by the variants of a seed
                    pretrain_by_seed.setdefault(seed, {})[k[len("pretrain_"):]] = v
                elif k.startswith("extra/"):
                    extra.setdefault(k[len("extra/"):], {}).setdefault(variant, []).append(v)
                else:
                    per_variant.setdefault(variant, {}).setdefault(k, []).append(v)
    pretrain = {k: [pretrain_by_seed[s][k] for s in seeds if s in pretrain_by_seed]
                for k in next(iter(pretrain_by_seed.values()), {})}
    payload = {
        "method": method, "preset": Path(preset).stem if preset.endswith(".py") else preset,
        "dataset": meta["dataset"], "primary_metric": meta["primary_metric"],
        "higher_is_better": meta["higher_is_better"], "reference": meta["reference"],
        "variants": per_variant,
        "extra": {"variant_descriptions": {v: exp.VARIANTS[v][0] for v in variants},
                  **({"single_task_pretrain": pretrain} if pretrain else {}), **extra},
        "seeds": seeds, "config": config_dict, "git_commit": git_commit(), "jax_version": jax.__version__,
        "devices": sharding.describe_devices(), "wall_seconds": time.perf_counter() - t0,
    }
    if hasattr(exp, "finalize"):  # results across the variants (e.g. a correlation), and post-run stages
        payload["extra"].update(exp.finalize(payload, config, out_dir))
        payload["wall_seconds"] = time.perf_counter() - t0
    paths = results.write(payload, out_dir)
    if hasattr(exp, "plots"):  # a method's own figures (e.g. per-block curves), from the same payload
        paths.update(exp.plots(payload, out_dir))
    payload["_paths"] = {k: str(v) for k, v in paths.items()}
    return payload
