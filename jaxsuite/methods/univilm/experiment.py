"""How a variant of UniVL is run: pre-train (StagedP: stage I, then stage II), then fine-tune a copy for
text-to-video retrieval (FT-Joint; FT-Align too when ``finetune.align_steps`` > 0) and a copy for captioning
(video only), and score both on the validation clips (``val_*``) and then, once per run at its end, on the test
clips (both: clips with held-out colour-shape pairs; :mod:`data`).

Stage I depends on the seed, the data, the model and its own settings only, so every StagedP variant of a seed
shares it (``<shared_dir>/stage1-s<seed>-<digest>``); each variant then runs its own stage II.

Variants:

* ``univl_full`` -- StagedP + EnhancedV, all five objectives in stage II;
* ``no_pretrain`` -- fine-tuned from a random initialisation;
* ``stage1_only`` -- the joint objective alone in both stages (no cross encoder / decoder pre-training);
* ``no_enhanced_v`` -- EnhancedV off (text never dropped);
* ``no_cmlm``, ``no_cmfm``, ``no_align``, ``no_decoder`` -- one stage-II objective dropped.

Metrics: ``retrieval_r1`` (primary; text-to-video R@1 in percent, FT-Joint), ``retrieval_r5``, ``retrieval_r10``,
``retrieval_medr``, ``caption_bleu4``, ``caption_rouge_l``, ``caption_cider`` on the test split; the same on
validation as ``val_retrieval_r1`` etc.; ``params``; with FT-Align, ``extra/align_r1`` (``extra/val_align_r1``)
etc. Nothing is evaluated during training, so the test split is read only by the final scoring.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import jax

from jaxsuite.core import config as config_lib
from jaxsuite.core import identity
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.loop import fit_arrays
from jaxsuite.methods.univilm import data as univl_data
from jaxsuite.methods.univilm import train

NAME = "univilm"
TITLE = "UniVL: unified video-language pre-training for retrieval and captioning (Luo et al. 2020)"
REFERENCE = "univl_full"
METRICS = ("retrieval_r1", "retrieval_r5", "retrieval_r10", "retrieval_medr", "caption_bleu4", "caption_rouge_l",
           "caption_cider")

VARIANTS = {
    "univl_full": ("StagedP + EnhancedV, all five pre-training objectives", {}),
    "no_pretrain": ("no pre-training: fine-tuned from scratch", {"pretrain.enabled": False}),
    "stage1_only": ("the joint (MIL-NCE) objective alone in both pre-training stages",
                    {"pretrain.second_stage": "joint"}),
    "no_enhanced_v": ("EnhancedV off", {"pretrain.enhance_v": 0.0}),
    "no_cmlm": ("stage II without the conditioned masked language model", {"pretrain.weights.cmlm": 0.0}),
    "no_cmfm": ("stage II without the conditioned masked frame model", {"pretrain.weights.cmfm": 0.0}),
    "no_align": ("stage II without video-text alignment", {"pretrain.weights.align": 0.0}),
    "no_decoder": ("stage II without language reconstruction", {"pretrain.weights.decoder": 0.0}),
}


def variant_config(config, variant: str):
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def results_meta(config) -> dict:
    return {"dataset": config.data.name, "primary_metric": "retrieval_r1", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> None:
    univl_data.check(config)
    m, d, p, f, e = config.model, config.data, config.pretrain, config.finetune, config.eval
    if m.dim % m.heads:
        raise ConfigError(f"config key 'model.dim' ({m.dim}) must be divisible by model.heads ({m.heads})")
    if d.max_frames < 3 * d.frames_per_event:
        raise ConfigError(f"config key 'data.max_frames' ({d.max_frames}) must be at least 3 x data.frames_per_event "
                          f"({3 * d.frames_per_event}): a clip has up to 3 events")
    if not 1 <= e.max_len <= d.max_words - 1:
        raise ConfigError(f"config key 'eval.max_len' ({e.max_len}) must be in 1..data.max_words - 1 "
                          f"({d.max_words - 1})")
    if p.mil_anchors not in ("middle", "all"):
        raise ConfigError(f"config key 'pretrain.mil_anchors' must be 'middle' or 'all', got {p.mil_anchors!r}")
    if p.second_stage not in ("all", "joint"):
        raise ConfigError(f"config key 'pretrain.second_stage' must be 'all' or 'joint', got {p.second_stage!r}")
    unknown = set(p.weights.keys()) ^ set(train.PRETRAIN_LOSSES)
    if unknown:
        raise ConfigError(f"config key 'pretrain.weights' must name exactly {train.PRETRAIN_LOSSES}; "
                          f"differs in {sorted(unknown)}")
    if p.batch_videos > d.pretrain_videos or f.batch_size > d.train_clips:
        raise ConfigError("config keys 'pretrain.batch_videos' / 'finetune.batch_size' exceed the data "
                          f"({d.pretrain_videos} videos / {d.train_clips} clips)")
    if not (f.retrieval_steps > 0 and f.caption_steps > 0):
        raise ConfigError("config keys 'finetune.retrieval_steps' and 'finetune.caption_steps' must be positive")


def data_status() -> dict[str, str]:
    return {name: univl_data.data_status(name) for name in univl_data.DATASETS}


def digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _stage1_key(cfg, seed: int) -> str:
    p = cfg.pretrain
    own = {k: p[k] for k in ("stage1_steps", "batch_videos", "lr", "warmup", "weight_decay", "grad_clip",
                             "text_lr_mult", "joint_temperature", "mil_anchors")}
    return digest([cfg.data.to_dict(), cfg.model.to_dict(), own, seed, identity.provenance(NAME)])


def _phase(cfg, phase: str, step, arrays, batch_size: int, seed: int, workdir: Path, desc: str, progress: bool,
           vocab_size: int, params=None):
    """One resumable phase; its final parameters, or None if interrupted."""
    steps = train.phase_settings(cfg, phase)["steps"]
    key = jax.random.fold_in(jax.random.PRNGKey(seed), train.PHASES.index(phase))
    res = fit_arrays(cfg, init_fn=lambda: train.init_phase(cfg, phase, key, vocab_size=vocab_size, params=params),
                     train_step=step, arrays=arrays, num_steps=steps, batch_size=batch_size, seed=seed,
                     workdir=workdir, desc=desc, progress=progress, jit_init=False)
    return None if res.interrupted else res.state


def pretrain(cfg, splits: dict, seed: int, workdir: Path, shared: Path, progress: bool, name: str):
    """Stage I (shared by the seed's variants) then stage II; the pre-trained parameters (None if interrupted)."""
    p, sp, vocab = cfg.pretrain, train.specials_of(splits["codec"]), splits["codec"].vocab_size
    arrays = splits["pretrain"]
    joint = {"joint_temperature": float(p.joint_temperature), "mil_anchors": str(p.mil_anchors)}
    params = None
    if p.staged:
        state = _phase(cfg, "stage1", train.pretrain_step_for(1, sp, **joint), arrays, p.batch_videos, seed,
                       shared / f"stage1-s{seed}-{_stage1_key(cfg, seed)}", f"stage I s{seed}", progress, vocab)
        if state is None:
            return None
        params = state.params
    # stage1_only: the second stage is the joint objective again (the stage-I step, a fresh optimiser)
    stage = 1 if p.second_stage == "joint" else 2
    step = train.pretrain_step_for(stage, sp, bool(p.align_all_clips), **joint)
    state = _phase(cfg, "stage2", step, arrays, p.batch_videos, seed, workdir / "stage2", f"{name} stage II s{seed}",
                   progress, vocab, params)
    return None if state is None else state.params


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    cfg = variant_config(config, variant)
    workdir = Path(workdir)
    shared = Path(shared_dir) if shared_dir else workdir / "shared"
    splits = univl_data.load(cfg)
    codec, f, e = splits["codec"], cfg.finetune, cfg.eval
    sp, vocab = train.specials_of(codec), codec.vocab_size
    t0 = time.perf_counter()
    params = None
    if cfg.pretrain.enabled:
        params = pretrain(cfg, splits, seed, workdir, shared, progress, variant)
        if params is None:
            return None
    tasks = [("retrieval", "retrieval"), ("caption", "caption")] + ([("align", "extra/align")] if f.align_steps else [])
    finished = {}
    for task, _ in tasks:
        state = _phase(cfg, task, train.finetune_step_for(task, sp, float(f.margin)), splits["train"], f.batch_size,
                       seed, workdir / task, f"{variant} {task} s{seed}", progress, vocab, params)
        if state is None:
            return None
        finished[task] = state
    # every fine-tuned model scored on validation (val_*), then on the test split: once per run, at its end
    out = {}
    for split, tag in (("val", "val_"), ("test", "")):
        data = {**splits[split], "captions": splits["captions"][split]}
        for task, prefix in tasks:
            found = train.evaluate(finished[task], data, codec=codec, task=task, beam=int(e.beam),
                                   max_len=int(e.max_len), batch_size=int(e.batch_size))
            head, _, name = prefix.rpartition("/")
            for k, v in found.items():
                out[f"{head}/{tag}{name}_{k}" if head else f"{tag}{name}_{k}"] = v
    out["params"] = train.param_count(state.params)  # every task's model is the same network
    out["train_seconds"] = time.perf_counter() - t0
    return out
