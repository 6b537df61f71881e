"""`jaxsuite run` and `jaxsuite reproduce`: run variants of a method and assemble the results contract."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax

from jaxsuite.core import registry, results, sharding
from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError


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
            progress: bool = True) -> dict:
    exp = registry.get(method)
    if variant not in exp.VARIANTS:
        raise ConfigError(f"unknown variant {variant!r} for {method} (known: {', '.join(exp.VARIANTS)})")
    exp.check_data(config)
    metrics = exp.run(config, variant, seed, workdir, shared_dir=shared_dir, progress=progress)
    if metrics is None:
        raise Interrupted(f"{method}/{variant} seed {seed} stopped; its checkpoint is in {workdir}: "
                          "run the same command again to resume")
    return metrics


def _claim_workdir(workdir: Path, config_dict: dict) -> None:
    """Keep a run's checkpoints only for the config they were made with: a stopped run of the same config resumes,
    a run of another config (or of a workdir without a stamp) starts from scratch instead of resuming its state."""
    stamp = workdir / "config.json"
    if workdir.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != config_dict):
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(config_dict, indent=1))


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
    config_dict = json.loads(json.dumps(config.to_dict()))  # as a summary / stamp reads back (tuples -> lists)
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
                _claim_workdir(workdir, config_dict)
                metrics = run_one(method, config, variant, seed, workdir, shared_dir=out_dir / "shared",
                                  progress=progress)
                workdir.mkdir(parents=True, exist_ok=True)
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
    paths = results.write(payload, out_dir)
    payload["_paths"] = {k: str(v) for k, v in paths.items()}
    return payload
