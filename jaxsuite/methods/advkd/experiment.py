"""How a variant of Adv-KD is run.

Shared by every variant and seed (``<shared_dir>``), as the paper distils one given teacher; each name ends in a
digest of the config sections it depends on, so a changed config never reuses a stale one:

* ``teacher-<digest>/`` -- the DDPM teacher trained on the train part (``teacher.seed``);
* ``trajectories-<digest>.npz`` -- the teacher's ancestral trajectories of ``trajectories.num`` noises, recorded
  at the K checkpoints (K = the student's sub-modules), each resized to its stage's resolution: the distillation
  data;
* ``classifier-<digest>/`` -- the FD feature classifier trained on the real train part (``fd.seed``).

Per variant and seed, ``eval.num_samples`` samples from fresh noise of that seed are scored by FD against the
held-out real part:

* ``advkd_student`` -- the progressive student distilled adversarially, stage by stage (``distill.py``);
* ``regression_student`` -- the same student and stages, trained by L2 to the teacher's states only;
* ``teacher_full`` -- the teacher's T-step ancestral sampler;
* ``teacher_few_steps`` -- the teacher with DDIM and as many network evaluations as the student has sub-modules.

Besides ``fd`` (primary, lower is better), every variant reports ``sample_seconds_per_1000`` (jitted, warm: the
first chunk compiles and is not timed), ``params`` and ``extra/nfe`` (network evaluations per sample).
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
KINDS = ("adversarial", "regression", "teacher_full", "teacher_few_steps")

VARIANTS = {
    "advkd_student": ("Adv-KD: progressive student distilled stage-wise against noise-conditioned discriminators",
                      {"kind": "adversarial"}),
    "regression_student": ("the same student and stages trained by L2 to the teacher's states only",
                           {"kind": "regression"}),
    "teacher_full": ("the DDPM teacher, T-step ancestral sampling", {"kind": "teacher_full"}),
    "teacher_few_steps": ("the teacher with DDIM and as many evaluations as the student has sub-modules",
                          {"kind": "teacher_few_steps"}),
}


def variant_config(config, variant: str):
    return config_lib.variant_config(config, VARIANTS, variant, NAME, KINDS)


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


def make_trajectories(cfg, graphdef, params, path: Path) -> dict[str, np.ndarray]:
    """The distillation set (cached in ``path``): "z" (x_T at the student's input size) and "target<k>" (the
    teacher's state at checkpoint k, at stage k's resolution)."""
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    tr, s = cfg.trajectories, cfg.student
    k, sizes = num_stages(cfg), stage_sizes(s.input_size, s.upsample)
    key = jax.random.PRNGKey(cfg.teacher.seed + 10_000)
    shape = (cfg.data.image_size, cfg.data.image_size, cfg.data.channels)
    out: dict[str, list] = {"z": [], **{f"target{i}": [] for i in range(k)}}
    for start in range(0, tr.num, tr.chunk):
        ck = jax.random.fold_in(key, start)
        x_T = jax.random.normal(jax.random.fold_in(ck, 0), (min(tr.chunk, tr.num - start),) + shape)
        states = teacher.trajectories(graphdef, params, x_T, jax.random.fold_in(ck, 1),
                                      schedule=teacher.schedule(cfg), record_after=record_after(cfg))
        out["z"].append(np.asarray(resize(x_T, s.input_size)))
        for i in range(k):
            out[f"target{i}"].append(np.asarray(resize(states[i], sizes[i])))
    arrays = {name: np.concatenate(v).astype(np.float32) for name, v in out.items()}
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def distill_student(cfg, arrays: dict, adversarial: bool, seed: int, workdir: Path, progress: bool):
    """Stages 0..K-1 in turn, each a resumable ``fit`` in ``workdir/stage<k>``; None if interrupted."""
    state = None
    rng = jax.random.PRNGKey(seed)
    for k, (steps, batch_size) in enumerate(zip(cfg.distill.stage_steps, cfg.distill.batch_size)):
        previous = state
        res = fit_arrays(cfg, init_fn=lambda k=k, p=previous: distill.init_stage(cfg, k, rng, p),
                         train_step=distill.step_fn(distill.hyper(cfg, k, adversarial)),
                         arrays={"z": arrays["z"], "target": arrays[f"target{k}"]}, num_steps=steps,
                         batch_size=batch_size, seed=seed * 100 + k, workdir=workdir / f"stage{k}",
                         desc=f"{'advkd' if adversarial else 'regression'} stage{k} s{seed}", progress=progress,
                         jit_init=False)  # init_stage calls its own cached jit: one compile per stage, not per seed
        if res.interrupted:
            return None
        state = res.state
    return state


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
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 20_000)

    def noise(i):
        return jax.random.normal(jax.random.fold_in(key, i), (e.chunk,) + shape)

    metrics = {}
    if cfg.kind in ("adversarial", "regression"):
        path = shared / f"trajectories-{digest(cfg, 'data', 'teacher', 'trajectories', 'student')}.npz"
        arrays = make_trajectories(cfg, graphdef, ema, path)
        state = distill_student(cfg, arrays, cfg.kind == "adversarial", seed, workdir, progress)
        if state is None:
            return None
        sample_chunk = lambda i: distill.sample(state.g_graphdef, state.g_params, state.g_state,  # noqa: E731
                                                resize(noise(i), cfg.student.input_size))
        params, nfe = _param_count(state.g_params), 1
        metrics["extra/final_stage_mse"] = float(np.mean(
            (np.asarray(distill.sample(state.g_graphdef, state.g_params, state.g_state, jnp.asarray(arrays["z"][:500])))
             - arrays[f"target{k - 1}"][:500]) ** 2))
    elif cfg.kind == "teacher_full":
        sch = teacher.schedule(cfg)
        sample_chunk = lambda i: teacher.trajectories(  # noqa: E731
            graphdef, ema, noise(i), jax.random.fold_in(key, 10_000 + i), schedule=sch, record_after=(sch.steps,))[-1]
        params, nfe = _param_count(ema), cfg.teacher.steps
    else:
        sample_chunk = lambda i: teacher.ddim(graphdef, ema, noise(i), schedule=teacher.schedule(cfg),  # noqa: E731
                                              evaluations=k)
        params, nfe = _param_count(ema), k
    samples, per_1000 = timed_samples(sample_chunk, e.num_samples, e.chunk)
    real = fd.gaussian_stats(fd.features(cres.state, splits["test"]["image"]))
    metrics.update({
        "fd": fd.frechet_distance(fd.gaussian_stats(fd.features(cres.state, samples)), real),
        "sample_seconds_per_1000": per_1000,
        "params": params,
        "extra/nfe": nfe,
        # the floor FD can reach at this sample size: real train images against the same held-out images
        "extra/fd_real_train": fd.frechet_distance(
            fd.gaussian_stats(fd.features(cres.state, splits["train"]["image"][:e.num_samples])), real),
        "extra/classifier_test_accuracy": fd.accuracy(cres.state, splits["test"]["image"], splits["test"]["label"]),
        "train_seconds": time.perf_counter() - t0,
    })
    np.save(workdir / "samples.npy", samples[:100])
    return metrics


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
