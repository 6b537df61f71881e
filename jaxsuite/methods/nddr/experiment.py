"""How a variant of NDDR-CNN is run: the paper's two-phase protocol (Sec. 3.3) and its baselines.

Phase 1 trains the single-task networks (T independent columns, ``fusion="none"``) from scratch.
Phase 2 builds the variant's network, copies the task columns from phase 1 and fine-tunes it for
``finetune_steps`` with the paper's optimiser. Phase 1 depends only on the seed, so `reproduce`
trains it once per seed and every variant starts from the same single-task networks.
``hard_sharing`` has no task columns to inherit: it is trained from scratch for the whole budget
(phase 1 + phase 2 steps) at ``hard_sharing_lr``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import ml_collections

from jaxsuite.core import config as config_lib
from jaxsuite.core import identity
from jaxsuite.core.config import set_key
from jaxsuite.core.loop import fit, host_batches
from jaxsuite.methods.nddr import data as nddr_data
from jaxsuite.methods.nddr import train

NAME = "nddr"
TITLE = "NDDR-CNN: layerwise multi-task feature fusion (Gao et al., CVPR 2019)"
REFERENCE = "nddr"

VARIANTS = {
    "nddr": ("NDDR layers after every stage, init (0.9, 0.1), NDDR lr x optim.fusion_lr_mult", {}),
    "nddr_shortcut": ("NDDR with the shortcut to the last stage (Sec. 3.4)", {"model.shortcut": True}),
    "single_task": ("the single-task networks trained on for the same extra budget", {"model.fusion": "none"}),
    "hard_sharing": ("shared trunk, split heads, trained from scratch for the total budget",
                     {"model.kind": "hard_sharing"}),
    "cross_stitch": ("cross-stitch units (Misra et al. 2016), init [[0.9, 0.1], [0.1, 0.9]]",
                     {"model.fusion": "cross_stitch"}),
    "nddr_xavier": ("ablation: NDDR weights Xavier-initialised", {"model.nddr_init": "xavier"}),
    "nddr_lr1": ("ablation: NDDR parameters at the base lr (multiplier 1)", {"optim.fusion_lr_mult": 1.0}),
}


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def results_meta(config) -> dict:
    dense = any(t.kind != "classification" for t in nddr_data.tasks(config.dataset))
    return {"dataset": config.dataset, "primary_metric": "miou" if dense else "mean_accuracy",
            "higher_is_better": True, "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    """Fail early (one line, naming the file and the fetch command) if the data set's files are absent or
    altered; returns their digests (the run identity's data)."""
    return nddr_data.check_files(config.dataset)


def check_build(config, variant: str) -> None:
    """Build the variant's network abstractly (shapes only, no compute): a config it cannot be built from fails
    here, before anything runs."""
    cfg = variant_config(config, variant)
    jax.eval_shape(lambda: train.init(cfg, jax.random.PRNGKey(0)))


@functools.lru_cache(maxsize=2)
def _load(config_json: str) -> dict:
    return nddr_data.load(ml_collections.ConfigDict(json.loads(config_json)))


def load_data(config) -> dict:
    return _load(json.dumps({"dataset": config.dataset, "data": config.data.to_dict()}, sort_keys=True))


def _scores(state, data: dict, batch_size: int, *, test: bool) -> dict[str, float]:
    """Validation metrics as ``val_*``, and with ``test`` the test metrics (unprefixed) -- read once, at the end
    of a run; nothing is selected on them."""
    out = {}
    if len(data["val"]["image"]):
        out.update({f"val_{k}": v for k, v in train.evaluate(state, data["val"], batch_size).items()})
    if test:
        out.update(train.evaluate(state, data["test"], batch_size))
    return out


def _phase(cfg, *, steps: int, lr: float, seed: int, phase: int, workdir: Path, data: dict, init_from=None,
           progress: bool, desc: str, test: bool = True):
    """Train (or resume, or just restore) one phase; returns (fit result, metrics, train seconds): validation
    metrics (``val_*``) and, where ``test`` (the end of a run, not the shared phase 1), test metrics -- at the
    last step only: evaluations every ``eval_every`` steps read validation.

    A finished phase leaves ``summary.json``; restoring it again (the shared single-task phase, once per
    variant) reads its metrics from there instead of evaluating the same state again."""
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    set_key(cfg, "optim.decay_steps", steps)
    set_key(cfg, "optim.lr", lr)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), phase)
    summary_path = Path(workdir) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    result = fit(
        init_fn=lambda: train.init(cfg, key, init_from=init_from),
        train_step=train.train_step,
        batch_fn=host_batches(data["train"], cfg.batch_size, seed * 1000 + phase),
        num_steps=steps, workdir=workdir,
        evaluate_fn=None if summary else (lambda s: _scores(s, data, cfg.eval_batch_size,
                                                                test=test and int(s.step) >= steps)),
        eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
        log_every=cfg.log_every, desc=desc, progress=progress)
    if summary is None and result.start_step < steps and not result.interrupted:
        summary = {"train_seconds": result.train_seconds, **result.eval_metrics}
        summary_path.write_text(json.dumps(summary))
    if summary is None:  # nothing trained now and no record: the metrics of this call stand
        return result, result.eval_metrics, result.train_seconds
    metrics = {k: v for k, v in summary.items() if k != "train_seconds"}
    return result, metrics, summary["train_seconds"]


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Train ``variant`` with ``seed`` in ``workdir`` (resuming), return its validation (``val_*``) and test
    metrics and seconds; the shared phase 1 reports validation metrics only (``pretrain_val_*``).

    Returns None if the run was stopped by a signal (its checkpoint is saved; run again to resume).
    """
    workdir = Path(workdir)
    cfg = variant_config(config, variant)
    data = load_data(cfg)
    total = config.pretrain.steps + config.finetune_steps
    if cfg.model.kind == "hard_sharing":
        result, metrics, seconds = _phase(cfg, steps=total, lr=config.hard_sharing_lr, seed=seed, phase=0,
                                          workdir=workdir / "train", data=data, progress=progress,
                                          desc=f"{variant} s{seed}")
        return None if result.interrupted else {**metrics, "train_seconds": seconds}

    single = variant_config(config, "single_task")
    set_key(single, "model.shortcut", False)
    # keyed by what produces it: the config (its fine-tuning length aside), the seed, the data and the code
    spec = {"config": identity.run_config(config), "seed": seed}
    spec["config"].pop("finetune_steps", None)
    pre_dir = identity.phase_dir(Path(shared_dir) / "pretrain", f"seed{seed}", spec, NAME) if shared_dir \
        else workdir / "pretrain"
    pre, pre_metrics, pre_seconds = _phase(single, steps=config.pretrain.steps, lr=config.pretrain.lr, seed=seed, phase=0,
                                           workdir=pre_dir, data=data, progress=progress,
                                           desc=f"single-task s{seed}", test=False)
    if pre.interrupted:
        return None
    result, metrics, seconds = _phase(cfg, steps=config.finetune_steps, lr=config.optim.lr, seed=seed, phase=1,
                                      workdir=workdir / "finetune", data=data, init_from=pre.state,
                                      progress=progress, desc=f"{variant} s{seed}")
    if result.interrupted:
        return None
    return {**metrics, **{f"pretrain_{k}": v for k, v in pre_metrics.items()},
            "train_seconds": pre_seconds + seconds}


def data_status() -> dict[str, str]:
    return {name: nddr_data.data_status(name) for name in nddr_data.DATASETS}
