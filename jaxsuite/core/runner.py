"""`jaxsuite run` and `jaxsuite reproduce`: run variants of a method and assemble the results contract."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import jax

from jaxsuite.core import config as config_lib
from jaxsuite.core import identity, provenance, registry, results, sharding
from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError, UserError
from jaxsuite.core.schema import SEED_LIMIT


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


def check_seed(seed) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"seed must be an integer in [0, {SEED_LIMIT}), got {seed!r}")
    return seed


def _override_keys(overrides) -> str:
    keys = [o.split("=", 1)[0].strip() for o in overrides or ()]
    return f"config key{'s' if len(keys) > 1 else ''} {', '.join(repr(k) for k in keys)}" if keys else "the preset"


@contextlib.contextmanager
def _as_config_error(method: str, what: str, overrides):
    """Turn an error a method raises while checking or building from a config (a shape that does not fit, a value
    its code cannot use) into one ConfigError line naming the keys the user set."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 -- reported as one line; the config is what the user changed
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise ConfigError(f"{method}: {what} failed with this config ({type(err).__name__}: {detail}); "
                          f"check {_override_keys(overrides)}") from None


_BUILT: set[str] = set()


def prepare(method: str, config, variant: str, seed: int, workdir: Path | None, *, overrides=(),
            on_config_change: str = "error", data: dict | None = None) -> dict:
    """Every check made before a run, writing nothing but an empty ``workdir``: the variant and seed, the config's
    ranges and shapes, the data files (present, and the pinned ones verified), the model built abstractly
    (``exp.check_build``, where a method has it), and ``workdir`` usable and free of another run. Returns the run
    identity (:func:`identity.run_identity`); ``data`` skips the data check when the caller already made it."""
    exp = registry.get(method)
    if variant not in exp.VARIANTS:
        raise ConfigError(f"unknown variant {variant!r} for {method} (known: {', '.join(exp.VARIANTS)})")
    check_seed(seed)
    config_lib.validate(method, config)
    if data is None:
        with _as_config_error(method, "the data check", overrides):
            data = exp.check_data(config) or {}
    ident = identity.run_identity(method, variant, seed, config, data)
    if hasattr(exp, "check_build"):
        key = identity.digest([method, variant, ident["config"]])
        if key not in _BUILT:
            with _as_config_error(method, f"building variant {variant}", overrides):
                exp.check_build(config, variant)
            _BUILT.add(key)
    if workdir is not None:
        identity.check_workdir(Path(workdir), ident, on_change=on_config_change)
        identity.check_usable(Path(workdir))
    return ident


def run_one(method: str, config, variant: str, seed: int, workdir: Path, *, shared_dir: Path | None = None,
            progress: bool = True, on_config_change: str = "error", overrides=(), data: dict | None = None) -> dict:
    """One run in ``workdir``, resuming its checkpoints only if they were made by the same run identity (method,
    variant, seed, config, data, code); for a workdir of another identity ``on_config_change`` says what happens:
    "error" (``jaxsuite run``: the folder is the user's) or "clear" (``reproduce``: the folder is its own). The
    identity is stamped only after every check of :func:`prepare` passed."""
    exp = registry.get(method)
    ident = prepare(method, config, variant, seed, workdir, overrides=overrides, on_config_change=on_config_change,
                    data=data)
    identity.claim_workdir(Path(workdir), ident, on_change=on_config_change)
    with identity.current(ident):
        metrics = exp.run(config, variant, seed, workdir, shared_dir=shared_dir, progress=progress)
    if metrics is None:
        raise Interrupted(f"{method}/{variant} seed {seed} stopped; its checkpoint is in {workdir}: "
                          "run the same command again to resume")
    return metrics


def check_seeds(seeds) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("--seeds names no seed: give at least one, e.g. --seeds 0,1,2")
    for seed in seeds:
        check_seed(seed)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds names a seed twice: {seeds}")
    return seeds


def check_variants(exp, method: str, variants) -> list[str]:
    variants = list(variants)
    unknown = [v for v in variants if v not in exp.VARIANTS]
    if unknown:
        raise ConfigError(f"config key 'variants' names unknown variants {unknown} (known: {', '.join(exp.VARIANTS)})")
    if not variants or len(set(variants)) != len(variants):
        raise ConfigError(f"config key 'variants' must name each variant to run once, got {tuple(variants)}")
    return variants


def reproduce(method: str, preset: str = "quick", overrides=(), seeds=None, out: str | Path = "results",
              progress: bool = True, check_only: bool = False) -> dict | None:
    """Every variant of ``config.variants`` x every seed; writes OUT/METHOD/results.{json,md} and a plot.

    Every run is checked (:func:`prepare`) before the first one starts. Finished runs (``summary.json`` of the
    same run identity) are reused, so a stopped reproduce resumes. ``check_only``: check, run nothing, return None.
    """
    t0 = time.perf_counter()
    exp = registry.get(method)
    code = provenance.fingerprint_now(method)  # the code this process loaded, before any run
    config = load_config(method, preset, overrides)
    with _as_config_error(method, "the data check", overrides):
        data = exp.check_data(config) or {}
    seeds = check_seeds(config.seeds if seeds is None else seeds)
    variants = check_variants(exp, method, config.variants)
    out_dir = Path(out) / method
    identity.check_usable(out_dir)
    runs = {(v, s): prepare(method, config, v, s, out_dir / "runs" / v / f"seed{s}", overrides=overrides,
                            on_config_change="clear", data=data) for v in variants for s in seeds}
    if check_only:
        return None
    meta = exp.results_meta(config)
    per_variant: dict[str, dict[str, list]] = {}
    pretrain_by_seed: dict[int, dict] = {}
    extra: dict[str, dict[str, list]] = {}  # "extra/<name>" metrics: results.json's extra.<name>.<variant>
    for variant in variants:
        for seed in seeds:
            workdir = out_dir / "runs" / variant / f"seed{seed}"
            summary = workdir / "summary.json"
            try:
                cached = json.loads(summary.read_text()) if summary.is_file() else None
            except (OSError, ValueError):
                cached = None
            if isinstance(cached, dict) and cached.get("identity") == identity.plain(runs[variant, seed]):
                metrics = cached["metrics"]
            else:
                print(f"[{method}] {variant} seed {seed}", file=sys.stderr, flush=True)
                metrics = run_one(method, config, variant, seed, workdir, shared_dir=out_dir / "shared",
                                  progress=progress, on_config_change="clear", overrides=overrides, data=data)
                identity.write_json(summary, {"identity": runs[variant, seed], "metrics": metrics})
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
        "seeds": seeds, "config": identity.plain(config.to_dict()), "overrides": list(overrides),
        "variants_run": variants, "variants_known": list(exp.VARIANTS), "data": data,
        "code_version": identity.code_version(method), "git_commit": git_commit(), "jax_version": jax.__version__,
        "devices": sharding.describe_devices(), "wall_seconds": time.perf_counter() - t0,
        # command, machine (CPU model, cores, accelerator), library versions, code fingerprint (issue 35)
        **provenance.record(method, preset, seeds, overrides, out, fingerprint=code),
    }
    if hasattr(exp, "finalize"):  # results across the variants (e.g. a correlation), and post-run stages
        payload["extra"].update(exp.finalize(payload, config, out_dir))
        payload["wall_seconds"] = time.perf_counter() - t0
    if hasattr(exp, "paired"):  # a method that pairs by another unit than the seed (orbench: by prompt)
        payload["paired"] = exp.paired(payload)
    paths = results.write(payload, out_dir, paired_md=getattr(exp, "format_paired", None))
    if hasattr(exp, "plots"):  # a method's own figures (e.g. per-block curves), from the same payload
        paths.update(exp.plots(payload, out_dir))
    payload["_paths"] = {k: str(v) for k, v in paths.items()}
    return payload
