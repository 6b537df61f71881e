"""How a variant of Adv-KD is run.

Shared by every variant and seed (``<shared_dir>``), as the paper distils one given teacher; each name ends in a
digest of the config sections it depends on, so a changed config never reuses a stale one:

* ``teacher-<digest>/`` -- the DDPM teacher trained on the train part (``teacher.seed``);
* ``trajectories-<target>-<digest>.npz`` -- the teacher's trajectories of ``trajectories.num`` noises
  (``target`` = ``ancestral``: its stochastic T-step sampler; ``ddim``: T-step DDIM with eta = 0, deterministic;
  both from the same noises), recorded at the K checkpoints (K = the student's sub-modules), each resized to its
  stage's resolution: the distillation data; and ``trajectories.val_num`` more from other noises (``val_*``),
  held out of distillation;
* ``classifier-<digest>/`` -- the FD feature classifier trained on the real train part (``fd.seed``).

Variants:

* ``advkd_student`` -- the progressive student distilled adversarially, stage by stage (``distill.py``), onto the
  ancestral trajectories;
* ``regression_student`` -- the same student and stages trained by L2 to the same *stochastic* ancestral states
  (the adversarial loss ablated; L2 can only reach their conditional mean given the noise);
* ``regression_ddim`` -- the fair regression baseline of Luhman & Luhman (2021, "Knowledge distillation in
  iterative generative models for improved sampling speed", arXiv 2101.02388, Eq. 11: the student objective, as
  the official tcl9876/Denoising_Student ``training.py`` numbers it): the same student, stages and step budget
  trained by L2 to the teacher's *deterministic* DDIM (eta = 0, Song et al. 2021 Eq. 12 with sigma = 0) map from
  the same noise, with as many teacher steps (T) as the ancestral trajectories, recorded at the same checkpoints;
* ``teacher_full`` -- the teacher's T-step ancestral sampler;
* ``teacher_few_steps`` -- the teacher with DDIM and as many network evaluations as the student has sub-modules.

Evaluation (issue 35's protocol), per variant and seed, from noise of that seed:

* validation, what every choice is made on: ``val_fd`` of ``eval.val_samples`` samples (validation noise)
  against the real validation part (held out of the train part), ``extra/val_final_stage_mse`` (students: the
  last stage's mean squared error to the *held-out* trajectories of its own target kind), the FD floor
  ``extra/val_fd_real_train`` and ``extra/classifier_val_accuracy``;
* test, read once, at the end of the run: ``fd`` (primary, lower is better) of ``eval.num_samples`` samples
  (test noise, disjoint from the validation noise) against the real test part, ``extra/fd_real_train`` and
  ``extra/classifier_test_accuracy``.

Every variant also reports ``sample_seconds_per_1000`` (jitted, warm: the first chunk of the test samples is not
timed), ``params`` and ``extra/nfe`` (network evaluations per sample). No checkpoint is selected: each stage
ends at its last step.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core import identity
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.loop import fit_arrays
from jaxsuite.methods.advkd import data as advkd_data
from jaxsuite.methods.advkd import diffusion, distill, fd, teacher
from jaxsuite.methods.advkd.networks import resize, stage_sizes

NAME = "advkd"
TITLE = "Adv-KD: adversarial distillation of a diffusion teacher into a few-step GAN student (Mekonnen et al., 2024)"
REFERENCE = "advkd_student"
KINDS = ("adversarial", "regression", "regression_ddim", "teacher_full", "teacher_few_steps")
STUDENT_KINDS = ("adversarial", "regression", "regression_ddim")
# the seed streams of the evaluation noise: the test noise is the one the results before issue 42 used
EVAL_STREAMS = {"test": 20_000, "val": 40_000}
TRAJECTORY_STREAMS = {"train": 10_000, "val": 30_000}  # added to teacher.seed

VARIANTS = {
    "advkd_student": ("Adv-KD: progressive student distilled stage-wise against noise-conditioned discriminators",
                      {"kind": "adversarial"}),
    "regression_student": ("the same student and stages trained by L2 to the teacher's stochastic ancestral states "
                           "only (the adversarial loss ablated)", {"kind": "regression"}),
    "regression_ddim": ("Luhman & Luhman 2021's baseline: the same student, stages and steps trained by L2 to the "
                        "teacher's deterministic DDIM (eta = 0, T steps) trajectory from the same noise",
                        {"kind": "regression_ddim"}),
    "teacher_full": ("the DDPM teacher, T-step ancestral sampling", {"kind": "teacher_full"}),
    "teacher_few_steps": ("the teacher with DDIM and as many evaluations as the student has sub-modules",
                          {"kind": "teacher_few_steps"}),
}


def variant_config(config, variant: str):
    """The variant's config; a regression student's generator lr is ``distill.optim.regression_g_lr.<kind>``
    (chosen on val_fd for each regression kind), where given (> 0), instead of the adversarial ``g_lr``."""
    cfg = config_lib.variant_config(config, VARIANTS, variant, NAME, KINDS)
    own = cfg.distill.optim.get("regression_g_lr", None)
    if cfg.kind in ("regression", "regression_ddim") and own is not None and float(own.get(cfg.kind, 0.0)) > 0:
        cfg.distill.optim.g_lr = float(own[cfg.kind])
    return cfg


def results_meta(config) -> dict:
    return {"dataset": config.data.name, "primary_metric": "fd", "higher_is_better": False, "reference": REFERENCE}


def num_stages(config) -> int:
    return len(config.student.channels)


def record_after(config) -> tuple[int, ...]:
    """The teacher step counts after which its state is recorded: ``trajectories.record_after``, or every T/K."""
    given = tuple(config.trajectories.record_after)
    return given or diffusion.even_checkpoints(config.teacher.steps, num_stages(config))


def check_data(config) -> dict[str, str]:
    """The data files and the shapes the config asks for (before any network is built); the data digests."""
    digests = advkd_data.check(config)
    s, t = config.student, config.teacher
    k = num_stages(config)
    if len(s.upsample) != k:
        raise ConfigError(f"config keys 'student.channels' ({k} entries) and 'student.upsample' "
                          f"({len(s.upsample)}) must have one entry per sub-module")
    for key, value in (("trajectories.val_num", config.trajectories.val_num),
                       ("eval.val_samples", config.eval.val_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigError(f"config key '{key}' must be an integer >= 2, got {value!r}")
    for key in ("stage_steps", "batch_size"):
        if len(config.distill[key]) != k:
            raise ConfigError(f"config key 'distill.{key}' needs one entry per sub-module ({k}), "
                              f"got {len(config.distill[key])}")
    given = tuple(config.trajectories.record_after)
    if given and (len(given) != k or given[-1] != t.steps or any(b <= a for a, b in zip((0,) + given, given))):
        raise ConfigError(f"config key 'trajectories.record_after' {given} must hold one increasing step count per "
                          f"sub-module ({k}), the last = teacher.steps ({t.steps})")
    if not given and t.steps % k:
        raise ConfigError(f"config key 'teacher.steps' ({t.steps}) must be divisible by the student's {k} "
                          f"sub-modules (one teacher checkpoint every T/K steps; or set trajectories.record_after)")
    final = stage_sizes(s.input_size, s.upsample)[-1]
    if final != config.data.image_size:
        raise ConfigError(f"config key 'student.input_size' ({s.input_size}) doubled at 'student.upsample' gives "
                          f"{final}, not data.image_size ({config.data.image_size})")
    if not 0 <= t.optim.warmup_steps < t.train_steps:
        raise ConfigError(f"config key 'teacher.optim.warmup_steps' ({t.optim.warmup_steps}) must be below "
                          f"teacher.train_steps ({t.train_steps})")
    down = t.unet.patch * 2 ** (len(t.unet.mults) - 1)
    if config.data.image_size % down:
        raise ConfigError(f"config key 'data.image_size' ({config.data.image_size}) must be divisible by "
                          f"teacher.unet.patch x 2^(len(mults) - 1) = {down}")
    return digests


def data_status() -> dict[str, str]:
    return {name: advkd_data.data_status(name) for name in advkd_data.DATASETS}


def digest(config, *sections: str) -> str:
    """A short hash of the named config sections (what a shared artifact depends on)."""
    text = json.dumps({**{k: config_lib.to_dict(config[k]) for k in sections}, "_run": identity.provenance(NAME)},
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def train_teacher(cfg, train_images: np.ndarray, workdir: Path, progress: bool):
    t = cfg.teacher
    step = functools.partial(teacher.train_step, schedule=teacher.schedule(cfg))
    return fit_arrays(cfg, init_fn=lambda: teacher.init(cfg, jax.random.PRNGKey(t.seed)), train_step=step,
                      arrays={"image": train_images}, num_steps=t.train_steps, batch_size=t.batch_size, seed=t.seed,
                      workdir=workdir, desc="teacher", progress=progress)


def train_classifier(cfg, split: dict, workdir: Path, progress: bool):
    c = cfg.fd
    return fit_arrays(cfg, init_fn=lambda: fd.init(cfg, jax.random.PRNGKey(c.seed)), train_step=fd.train_step,
                      arrays={"image": split["image"], "label": split["label"]}, num_steps=c.train_steps,
                      batch_size=c.batch_size, seed=c.seed, workdir=workdir, desc="fd classifier", progress=progress)


def trajectory_target(cfg) -> str:
    """What the student variant regresses onto: "ddim" (regression_ddim) or "ancestral" (the others)."""
    return "ddim" if cfg.kind == "regression_ddim" else "ancestral"


def teacher_states(cfg, graphdef, params, x_T: jax.Array, key: jax.Array, target: str) -> jax.Array:
    """The teacher's states from x_T after the step counts :func:`record_after`, [K, B, H, W, C] at full
    resolution: its ancestral sampler (``key`` draws the fresh noise of every step) or, for ``target="ddim"``,
    T-step DDIM with eta = 0 (``key`` unused: a deterministic function of x_T)."""
    sch = teacher.schedule(cfg)
    if target == "ddim":
        return teacher.ddim_trajectories(graphdef, params, x_T, schedule=sch, record_after=record_after(cfg))
    if target != "ancestral":
        raise ValueError(f"unknown trajectory target {target!r} (ancestral or ddim)")
    return teacher.trajectories(graphdef, params, x_T, key, schedule=sch, record_after=record_after(cfg))


def _record(cfg, graphdef, params, key: jax.Array, num: int, target: str) -> dict[str, np.ndarray]:
    """``num`` trajectories from the noise stream ``key``, in chunks of ``trajectories.chunk``: "z" (x_T at the
    student's input size) and "target<k>" (the state at checkpoint k, at stage k's resolution)."""
    tr, s = cfg.trajectories, cfg.student
    k, sizes = num_stages(cfg), stage_sizes(s.input_size, s.upsample)
    shape = (cfg.data.image_size, cfg.data.image_size, cfg.data.channels)
    out: dict[str, list] = {"z": [], **{f"target{i}": [] for i in range(k)}}
    for start in range(0, num, tr.chunk):
        ck = jax.random.fold_in(key, start)
        x_T = jax.random.normal(jax.random.fold_in(ck, 0), (min(tr.chunk, num - start),) + shape)
        states = teacher_states(cfg, graphdef, params, x_T, jax.random.fold_in(ck, 1), target)
        out["z"].append(np.asarray(resize(x_T, s.input_size)))
        for i in range(k):
            out[f"target{i}"].append(np.asarray(resize(states[i], sizes[i])))
    return {name: np.concatenate(v).astype(np.float32) for name, v in out.items()}


def make_trajectories(cfg, graphdef, params, path: Path, target: str = "ancestral") -> dict[str, np.ndarray]:
    """The distillation set (cached in ``path``): "z" and "target<k>" of ``trajectories.num`` noises, and the
    held-out "val_z" and "val_target<k>" of ``trajectories.val_num`` other noises (a different stream), for
    ``target`` "ancestral" or "ddim". Both targets draw the same noises x_T."""
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    tr = cfg.trajectories
    arrays = {}
    for split, num in (("train", tr.num), ("val", tr.val_num)):
        key = jax.random.PRNGKey(cfg.teacher.seed + TRAJECTORY_STREAMS[split])
        part = _record(cfg, graphdef, params, key, num, target)
        arrays.update({(k if split == "train" else f"val_{k}"): v for k, v in part.items()})
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def distill_student(cfg, arrays: dict, adversarial: bool, seed: int, workdir: Path, progress: bool,
                    name: str | None = None):
    """Stages 0..K-1 in turn, each a resumable ``fit`` in ``workdir/stage<k>``; None if interrupted."""
    state = None
    rng = jax.random.PRNGKey(seed)
    name = name or ("advkd" if adversarial else "regression")
    for k, (steps, batch_size) in enumerate(zip(cfg.distill.stage_steps, cfg.distill.batch_size)):
        previous = state
        res = fit_arrays(cfg, init_fn=lambda k=k, p=previous: distill.init_stage(cfg, k, rng, p),
                         train_step=distill.step_fn(distill.hyper(cfg, k, adversarial)),
                         arrays={"z": arrays["z"], "target": arrays[f"target{k}"]}, num_steps=steps,
                         batch_size=batch_size, seed=seed * 100 + k, workdir=workdir / f"stage{k}",
                         desc=f"{name} stage{k} s{seed}", progress=progress,
                         jit_init=False)  # init_stage calls its own cached jit: one compile per stage, not per seed
        if res.interrupted:
            return None
        state = res.state
    return state


def eval_key(seed: int, split: str) -> jax.Array:
    """The key of a run's evaluation noise: ``split`` "val" or "test", disjoint streams of the seed."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAMS[split])


def timed_samples(sample_chunk, num: int, chunk: int) -> tuple[np.ndarray, float]:
    """``sample_chunk(i)`` for i = 0, 1, ... until ``num`` samples; seconds per 1000 samples measured on every
    chunk after the first (which compiles)."""
    n_chunks = -(-num // chunk)
    if n_chunks < 2:
        raise ConfigError(f"config keys 'eval.num_samples' ({num}) / 'eval.chunk' ({chunk}) must give at least 2 "
                          "chunks (the first compiles and is not timed)")
    out = [np.asarray(jax.block_until_ready(sample_chunk(0)))]
    t0 = time.perf_counter()
    for i in range(1, n_chunks):
        out.append(np.asarray(jax.block_until_ready(sample_chunk(i))))
    seconds = time.perf_counter() - t0
    timed = sum(len(o) for o in out[1:])
    return np.concatenate(out)[:num], 1000.0 * seconds / timed


def draw_samples(sample_chunk, num: int, chunk: int) -> np.ndarray:
    """``sample_chunk(i)`` for i = 0, 1, ... until ``num`` samples (untimed)."""
    return np.concatenate([np.asarray(sample_chunk(i)) for i in range(-(-num // chunk))])[:num]


def _fd(cstate, samples: np.ndarray, real_stats) -> float:
    return fd.frechet_distance(fd.gaussian_stats(fd.features(cstate, samples)), real_stats)


def _param_count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    cfg = variant_config(config, variant)
    workdir = Path(workdir)
    shared = Path(shared_dir) if shared_dir else workdir / "shared"
    splits = advkd_data.load(cfg)
    t0 = time.perf_counter()
    tres = train_teacher(cfg, splits["train"]["image"], shared / f"teacher-{digest(cfg, 'data', 'teacher')}", progress)
    cres = train_classifier(cfg, splits["train"], shared / f"classifier-{digest(cfg, 'data', 'fd')}", progress)
    if tres.interrupted or cres.interrupted:
        return None
    graphdef, ema = tres.state.graphdef, tres.state.aux["ema"]
    k, e = num_stages(cfg), cfg.eval
    shape = (cfg.data.image_size, cfg.data.image_size, cfg.data.channels)

    def noise(key, i):
        return jax.random.normal(jax.random.fold_in(key, i), (e.chunk,) + shape)

    metrics = {}
    if cfg.kind in STUDENT_KINDS:
        target = trajectory_target(cfg)
        path = shared / f"trajectories-{target}-{digest(cfg, 'data', 'teacher', 'trajectories', 'student')}.npz"
        arrays = make_trajectories(cfg, graphdef, ema, path, target)
        state = distill_student(cfg, arrays, cfg.kind == "adversarial", seed, workdir, progress, name=cfg.kind)
        if state is None:
            return None

        def sampler(key):
            return lambda i: distill.sample(state.g_graphdef, state.g_params, state.g_state,
                                            resize(noise(key, i), cfg.student.input_size))

        params, nfe = _param_count(state.g_params), 1
        # the last stage against held-out trajectories (validation noise) of the variant's own target kind
        metrics["extra/val_final_stage_mse"] = float(np.mean(
            (draw_samples(lambda i: distill.sample(state.g_graphdef, state.g_params, state.g_state,
                                                   jnp.asarray(arrays["val_z"][i * e.chunk:(i + 1) * e.chunk])),
                          len(arrays["val_z"]), e.chunk) - arrays[f"val_target{k - 1}"]) ** 2))
    elif cfg.kind == "teacher_full":
        sch = teacher.schedule(cfg)

        def sampler(key):
            return lambda i: teacher.trajectories(graphdef, ema, noise(key, i), jax.random.fold_in(key, 10_000 + i),
                                                  schedule=sch, record_after=(sch.steps,))[-1]

        params, nfe = _param_count(ema), cfg.teacher.steps
    else:
        def sampler(key):
            return lambda i: teacher.ddim(graphdef, ema, noise(key, i), schedule=teacher.schedule(cfg), evaluations=k)

        params, nfe = _param_count(ema), k

    # validation: what every choice is made on
    val_real = fd.gaussian_stats(fd.features(cres.state, splits["val"]["image"]))
    metrics.update({
        "val_fd": _fd(cres.state, draw_samples(sampler(eval_key(seed, "val")), e.val_samples, e.chunk), val_real),
        "extra/val_fd_real_train": _fd(cres.state, splits["train"]["image"][:e.val_samples], val_real),
        "extra/classifier_val_accuracy": fd.accuracy(cres.state, splits["val"]["image"], splits["val"]["label"]),
    })
    # test: read once, here, at the end of the run
    samples, per_1000 = timed_samples(sampler(eval_key(seed, "test")), e.num_samples, e.chunk)
    metrics.update(test_metrics(cres.state, samples, splits))
    metrics.update({"sample_seconds_per_1000": per_1000, "params": params, "extra/nfe": nfe,
                    "train_seconds": time.perf_counter() - t0})
    np.save(workdir / "samples.npy", samples[:100])
    return metrics


def test_metrics(cstate, samples: np.ndarray, splits: dict) -> dict:
    """The only reader of the test part: ``fd`` of ``samples`` against it, the floor FD of as many real train
    images against it, and the FD classifier's accuracy on it."""
    test = splits["test"]
    real = fd.gaussian_stats(fd.features(cstate, test["image"]))
    return {
        "fd": _fd(cstate, samples, real),
        # the floor FD can reach at this sample size: real train images against the same test images
        "extra/fd_real_train": _fd(cstate, splits["train"]["image"][:len(samples)], real),
        "extra/classifier_test_accuracy": fd.accuracy(cstate, test["image"], test["label"]),
    }


def _grid(x: np.ndarray) -> np.ndarray:
    """[N, H, W, C] in [-1, 1] -> one [n H, n W, C] canvas in [0, 1] of the first n x n samples."""
    n = int(np.sqrt(len(x)))
    h, w, c = x.shape[1:]
    tiles = (np.clip(x[:n * n], -1, 1) + 1) / 2
    return tiles.reshape(n, n, h, w, c).transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, c)


def plots(payload: dict, out_dir: Path) -> dict[str, Path]:
    """Sample grids of the first seed (10 x 10 samples): ``samples_<variant>.png`` per variant and
    ``samples.png`` with every variant side by side, titled with its FD (mean over the seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    seed = payload["seeds"][0]
    grids, paths = {}, {}
    for variant in payload["variants"]:
        path = out_dir / "runs" / variant / f"seed{seed}" / "samples.npy"
        if path.exists():
            grids[variant] = _grid(np.load(path))
            paths[f"samples_{variant}"] = out_dir / f"samples_{variant}.png"
            canvas = grids[variant]
            plt.imsave(paths[f"samples_{variant}"], canvas[..., 0] if canvas.shape[-1] == 1 else canvas,
                       cmap="gray", vmin=0.0, vmax=1.0)
    if not grids:
        return {}
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.7))
    for ax, (variant, canvas) in zip(np.atleast_1d(axes), grids.items()):
        ax.imshow(canvas[..., 0] if canvas.shape[-1] == 1 else canvas, cmap="gray", vmin=0, vmax=1)
        fds = payload["variants"][variant]["fd"]
        ax.set_title(f"{variant}\nFD {np.mean(fds):.1f} (mean of {len(fds)} seeds)", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{payload['method']} ({payload['preset']}, {payload['dataset']}): samples of seed {seed}",
                 fontsize=10)
    fig.tight_layout()
    paths["samples"] = out_dir / "samples.png"
    fig.savefig(paths["samples"], dpi=120)
    plt.close(fig)
    return paths
