"""How a variant of MIM-Refiner is run.

Per seed, one MAE is pre-trained (``mae.steps``) and shared by every variant of that seed
(``<shared_dir>/mae/seed<N>``). Then:

* ``mae_last`` / ``mae_best_block`` -- the MAE's frozen features: the final output, or the block whose k-NN
  accuracy on the validation split is best (chosen without the test split);
* ``mae_continued`` -- MAE training continued for as many steps (same batch) as the refiner's stage 2 +
  stage 3, with a fresh warm-up + cosine schedule, as the refiner gets;
* ``refined_single`` / ``refined_multi`` -- MIM-Refiner from the MAE: stage 2 (heads only) then stage 3
  (end to end, layer-wise lr decay, EMA encoder evaluated), with one head on the final output or heads on
  ``refine.head_blocks``;
* ``raw_pixels`` -- the same probes on standardised pixels: how much any network adds at this scale.

Every variant reports, on the validation split (held out of the train split and of all training), k-NN
accuracy of every block (``extra/val_knn_block<i>``; index ``depth`` = the final output) and the evaluated
block's ``val_knn_accuracy`` / ``val_linear_accuracy`` / ``val_one_shot_accuracy``; then, reading the test
split once at the end, the same on test: ``extra/knn_block<i>``, ``knn_accuracy`` (the primary metric),
``linear_accuracy`` and ``one_shot_accuracy``.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxsuite.core import config as config_lib
from jaxsuite.core import identity
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.loop import fit_arrays
from jaxsuite.methods.mim_refiner import data as mr_data
from jaxsuite.methods.mim_refiner import mae, probe, train

NAME = "mim_refiner"
TITLE = "MIM-Refiner: contrastive NN heads on intermediate ViT blocks refine a MAE (Alkin et al., 2024)"
REFERENCE = "refined_multi"
KINDS = ("mae", "mae_continued", "refine", "raw")

VARIANTS = {
    "refined_multi": ("MIM-Refiner: NNA heads on refine.head_blocks (intermediate blocks + final output), "
                      "stage 2 then stage 3", {"kind": "refine"}),
    "refined_single": ("MIM-Refiner with one head on the final output", {"kind": "refine",
                                                                        "refine.head_blocks": (-1,)}),
    "mae_last": ("the MAE's final-output features", {"kind": "mae"}),
    "mae_best_block": ("the MAE's best block (chosen by k-NN on a validation part of the train split)",
                       {"kind": "mae", "eval.block": "best"}),
    "mae_continued": ("MAE training continued for the refiner's stage 2 + 3 steps", {"kind": "mae_continued"}),
    "raw_pixels": ("reference: the same probes on the standardised pixels (no network)", {"kind": "raw"}),
}


def variant_config(config, variant: str):
    return config_lib.variant_config(config, VARIANTS, variant, NAME, KINDS)


def results_meta(config) -> dict:
    return {"dataset": config.data.name, "primary_metric": "knn_accuracy", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    """The data files, and the shapes the config asks for (before any model is built); the data digests."""
    digests = mr_data.check(config)
    m, a = config.model, config.aug
    for key, size in (("data.image_size", config.data.image_size), ("aug.global_size", a.global_size),
                      ("aug.local_size", a.local_size if a.num_local else m.patch_size)):
        if size % m.patch_size:
            raise ConfigError(f"config key '{key}' ({size}) is not a multiple of model.patch_size ({m.patch_size})")
    for key, dim, heads in (("model", m.dim, m.heads), ("mae", config.mae.dim, config.mae.heads)):
        if dim % heads or dim % 4:
            raise ConfigError(f"config key '{key}.dim' ({dim}) must be divisible by {key}.heads ({heads}) and by 4 "
                              f"(sin-cos positions)")
    return digests


def data_status() -> dict[str, str]:
    return {name: mr_data.data_status(name) for name in mr_data.DATASETS}


def _fit(cfg, *, init_fn, step_fn, arrays, steps, seed, workdir, desc, progress):
    return fit_arrays(cfg, init_fn=init_fn, train_step=step_fn, arrays=arrays, num_steps=steps,
                      batch_size=cfg.batch_size, seed=seed, workdir=workdir, desc=desc, progress=progress)


def _mae_step(cfg):
    return functools.partial(mae.train_step, crop_scale=tuple(cfg.mae.crop_scale))


def _mae_spec(config, seed: int) -> dict:
    """What the shared MAE of a seed is a function of: the data, the encoder, the MAE's own settings and the
    batch; not the refiner's or the probes' settings, so runs that differ only there (variants, tuning trials)
    share it."""
    run = identity.run_config(config)
    return {"seed": seed, **{key: run.get(key) for key in ("data", "model", "mae", "batch_size")}}


def pretrain_mae(cfg, train_split, seed: int, workdir: Path, progress: bool):
    return _fit(cfg, init_fn=lambda: mae.init(cfg, jax.random.PRNGKey(seed)), step_fn=_mae_step(cfg),
                arrays={"image": train_split["image"]}, steps=cfg.mae.steps, seed=seed, workdir=workdir,
                desc=f"mae s{seed}", progress=progress)


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    cfg = variant_config(config, variant)
    workdir = Path(workdir)
    splits = mr_data.load(cfg)
    mae_dir = (identity.phase_dir(Path(shared_dir) / "mae", f"seed{seed}", _mae_spec(config, seed), NAME)
               if shared_dir else workdir / "mae")
    t0 = time.perf_counter()
    if cfg.kind == "raw":
        flat = {k: v["image"].reshape(1, len(v["image"]), -1) for k, v in splits.items()}
        return {**probe.evaluate_features(cfg.eval, flat, splits, seed=seed),
                "train_seconds": time.perf_counter() - t0}
    if cfg.mae.get("checkpoint"):  # a pre-trained MIM model (paper preset): refine it, no MAE training here
        if cfg.kind == "mae_continued":
            raise ConfigError("variant mae_continued needs the MAE's decoder: unavailable with mae.checkpoint")
        enc_params = mae.load_encoder_params(cfg, cfg.mae.checkpoint)
        metrics = {}
    else:
        pre = pretrain_mae(cfg, splits["train"], seed, mae_dir, progress)
        if pre.interrupted:
            return None
        enc_params = pre.state.params["encoder"]
        metrics = {"extra/mae_seconds": pre.train_seconds}
    arrays = {"image": splits["train"]["image"], "idx": splits["train"]["idx"]}
    extra_steps = cfg.refine.stage2_steps + cfg.refine.stage3_steps
    if cfg.kind == "mae":
        encoder = mae.make_encoder(cfg, nnx.Rngs(0))
        nnx.update(encoder, nnx.State(enc_params))
    elif cfg.kind == "mae_continued":
        fresh = lambda: mae.init(cfg, jax.random.PRNGKey(seed), steps=extra_steps).replace(  # noqa: E731
            params=pre.state.params, rng=jax.random.fold_in(pre.state.rng, 7))
        res = _fit(cfg, init_fn=fresh, step_fn=_mae_step(cfg), arrays=arrays, steps=extra_steps, seed=seed + 1000,
                   workdir=workdir / "mae_continued", desc=f"{variant} s{seed}", progress=progress)
        if res.interrupted:
            return None
        encoder = res.state.merge().encoder
    else:
        s2 = _fit(cfg, init_fn=lambda: train.init(cfg, jax.random.PRNGKey(seed + 1), stage=2,
                                                  encoder_params=enc_params),
                  step_fn=train.train_step, arrays=arrays, steps=cfg.refine.stage2_steps, seed=seed + 1000,
                  workdir=workdir / "stage2", desc=f"{variant} stage2 s{seed}", progress=progress)
        if s2.interrupted:
            return None
        s3 = _fit(cfg, init_fn=lambda: train.to_stage3(cfg, s2.state), step_fn=train.train_step, arrays=arrays,
                  steps=cfg.refine.stage3_steps, seed=seed + 2000, workdir=workdir / "stage3",
                  desc=f"{variant} stage3 s{seed}", progress=progress)
        if s3.interrupted:
            return None
        encoder = train.eval_encoder(s3.state)
    metrics.update(probe.evaluate_encoder(cfg.eval, encoder, splits, seed=seed))
    metrics["train_seconds"] = time.perf_counter() - t0
    return metrics


def plots(payload: dict, out_dir: Path) -> dict[str, Path]:
    """The paper's motivating figure: k-NN accuracy of every block (mean +- std over seeds) per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for variant in payload["variants"]:
        curves = []
        i = 0
        while (values := payload["extra"].get(f"knn_block{i}", {}).get(variant)) is not None:
            curves.append(values)
            i += 1
        if not curves:
            continue
        if len(curves) < 2:  # a single feature set (raw pixels): a horizontal reference line
            ax.axhline(np.mean(curves[0]), color="gray", linestyle="--", label=f"{variant} (final only)")
            continue
        arr = np.asarray(curves)  # [blocks, seeds]
        x = np.arange(len(arr))
        ax.errorbar(x, arr.mean(1), yerr=arr.std(1), marker="o", capsize=3, label=variant)
    ax.set_xlabel("block (last point: final output after the norm)")
    ax.set_ylabel("k-NN accuracy (k=20)")
    ax.set_title(f"{payload['method']} ({payload['preset']}, {payload['dataset']}): k-NN per block")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out_dir) / "knn_by_block.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {"knn_by_block": path}
