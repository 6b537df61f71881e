"""How a variant of SPAFormer is run: train on the training categories, evaluate on unseen instances of them and on
the held-out categories.

Variants:

* ``spaformer_parallel`` -- the released model: all parts posed at once, group and sequence encodings;
* ``spaformer_autoregressive`` -- causal attention along the assembly sequence, each part conditioned on the poses
  placed before it (teacher forcing in training, sequential decoding at test);
* ``no_sequence`` -- no sequence encoding, parts in a shuffled order (isolates the weak sequence constraint);
* ``no_knowledge`` -- no geometric-equivalence group encoding (nor part-type attributes);
* ``dgl_baseline`` -- the dynamic graph learning baseline (Huang et al. 2020), small scale (``networks.py``).

Metrics (``metrics.py``): ``part_accuracy`` (primary), ``connectivity_accuracy``, ``shape_chamfer``,
``success_rate`` over the test shapes of the training categories; in ``extra``: the same per category
(``<metric>/<category>``) and on the held-out categories (``heldout/<metric>``, ``heldout/<metric>/<category>``).
"""
from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.loop import fit_arrays
from jaxsuite.data import proc_furniture
from jaxsuite.data.cache import manifest_digest
from jaxsuite.methods.spaformer import data as spa_data
from jaxsuite.methods.spaformer import metrics, train

NAME = "spaformer"
TITLE = "SPAFormer: sequential 3D part assembly with transformers (Xu et al., 3DV 2025)"
REFERENCE = "spaformer_parallel"
METRICS = ("part_accuracy", "connectivity_accuracy", "shape_chamfer", "success_rate")

VARIANTS = {
    "spaformer_parallel": ("SPAFormer, parallel: every part at once, group + sequence encodings", {}),
    "spaformer_autoregressive": ("SPAFormer, autoregressive: causal along the sequence, conditioned on placed poses",
                                 {"model.autoregressive": True}),
    "no_sequence": ("no sequence encoding, parts shuffled", {"model.use_sequence": False, "data.order": "random"}),
    "no_knowledge": ("no geometric-equivalence (or part-type) encodings",
                     {"model.use_groups": False, "model.part_type_dims": 0}),
    "dgl_baseline": ("dynamic graph learning baseline (Huang et al. 2020), small scale", {"model.kind": "dgl"}),
}


def variant_config(config, variant: str):
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def results_meta(config) -> dict:
    return {"dataset": config.data.name, "primary_metric": "part_accuracy", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    spa_data.check(config)
    m = config.model
    if m.kind not in ("spaformer", "dgl"):
        raise ConfigError(f"config key 'model.kind' must be 'spaformer' or 'dgl', got {m.kind!r}")
    if m.part_type_dims not in (0, len(proc_furniture.PART_TYPES)):
        raise ConfigError(f"config key 'model.part_type_dims' must be 0 (off) or {len(proc_furniture.PART_TYPES)} "
                          f"(one-hot proc_furniture part types), got {m.part_type_dims}")
    if m.dim % m.heads:
        raise ConfigError(f"config key 'model.dim' ({m.dim}) must be divisible by model.heads ({m.heads})")
    if m.dim <= 2 * config.data.max_parts + m.part_type_dims:
        raise ConfigError(f"config key 'model.dim' ({m.dim}) must exceed the encoding dims "
                          f"(2 x data.max_parts + model.part_type_dims = "
                          f"{2 * config.data.max_parts + m.part_type_dims})")
    if not (config.train.steps > 0 or config.train.epochs > 0):
        raise ConfigError("config key 'train.steps' or 'train.epochs' must be positive")
    if not (config.optim.decay_every > 0 or config.optim.decay_every_epochs > 0):
        raise ConfigError("config key 'optim.decay_every' or 'optim.decay_every_epochs' must be positive")
    for key in ("match_points", "loss_points"):
        if not 1 <= config.loss[key] <= config.data.num_points:
            raise ConfigError(f"config key 'loss.{key}' ({config.loss[key]}) must be in 1..data.num_points "
                              f"({config.data.num_points})")
    if config.data.name == "partnet":  # a user folder: its manifest (relative paths and sizes)
        return {f"partnet:{config.data.root}": manifest_digest(Path(config.data.root))}
    return {}


def data_status() -> dict[str, str]:
    return {name: spa_data.data_status(name) for name in spa_data.DATASETS}


def with_schedule(cfg, num_train: int):
    """``train.epochs`` / ``optim.decay_every_epochs`` (when set) turned into steps for ``num_train`` shapes."""
    cfg = cfg.copy_and_resolve_references()
    per_epoch = max(num_train // cfg.train.batch_size, 1)
    if cfg.train.epochs:
        cfg.train.steps = cfg.train.epochs * per_epoch
    if cfg.optim.decay_every_epochs:
        cfg.optim.decay_every = cfg.optim.decay_every_epochs * per_epoch
    return cfg


def category_names(config, split: str) -> tuple[str, ...]:
    return tuple(config.data.heldout if split == "heldout" else config.data.categories)


def split_metrics(rows: dict, category: np.ndarray, names) -> dict[str, float]:
    """Overall and per-category metrics of one split: {"<metric>": v, "<metric>/<category>": v}."""
    out = dict(metrics.summarise(rows))
    for c, name in enumerate(names):
        for k, v in metrics.summarise(rows, category == c).items():
            out[f"{k}/{name}"] = v
    return out


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    cfg = variant_config(config, variant)
    workdir = Path(workdir)
    splits = spa_data.load(cfg)
    cfg = with_schedule(cfg, len(splits["train"]["part_valid"]))
    t0 = time.perf_counter()
    res = fit_arrays(cfg, init_fn=lambda: train.init(cfg, jax.random.PRNGKey(seed)), train_step=train.step_for(cfg),
                     arrays=splits["train"], num_steps=cfg.train.steps, batch_size=cfg.train.batch_size, seed=seed,
                     workdir=workdir, desc=f"{variant} s{seed}", progress=progress, jit_init=False)
    if res.interrupted:
        return None
    out = {"train_seconds": time.perf_counter() - t0, "params": train.param_count(res.state)}
    figure = {}
    for split in ("test", "heldout"):
        if split not in splits:
            continue
        arrays = splits[split]
        rows, poses = train.score(res.state, arrays, **train.eval_options(cfg))
        found = split_metrics(rows, arrays["category"], category_names(cfg, split))
        for k, v in found.items():
            if split == "test" and k in METRICS:
                out[k] = v
            else:
                out[f"extra/{k}" if split == "test" else f"extra/heldout/{k}"] = v
        first = [int(np.argmax(arrays["category"] == c)) for c in np.unique(arrays["category"])]
        figure.update({f"{split}_{k}": arrays[k][first] for k in ("part_pcs", "part_poses", "part_valid")})
        figure[f"{split}_pred"] = poses[first]
        figure[f"{split}_names"] = np.asarray([category_names(cfg, split)[arrays["category"][i]] for i in first])
    np.savez_compressed(workdir / "assemblies.npz", **figure)
    return out


def plots(payload: dict, out_dir: Path) -> dict[str, Path]:
    """``assemblies.png``: one test shape per category (and the held-out ones), ground truth above the reference
    variant's prediction (seed of the first run), each part its own colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxsuite.methods.spaformer.geometry import transform

    path = Path(out_dir) / "runs" / payload["reference"] / f"seed{payload['seeds'][0]}" / "assemblies.npz"
    if not path.exists():
        return {}
    with np.load(path) as z:
        fig_data = dict(z)
    columns = []
    for split in ("test", "heldout"):
        if f"{split}_pred" in fig_data:
            for i, name in enumerate(fig_data[f"{split}_names"]):
                columns.append((split, i, str(name) + (" (held out)" if split == "heldout" else "")))
    fig = plt.figure(figsize=(2.2 * len(columns), 4.6))
    cmap = plt.get_cmap("tab20")
    for col, (split, i, title) in enumerate(columns):
        pcs, valid = fig_data[f"{split}_part_pcs"][i], fig_data[f"{split}_part_valid"][i]
        for row, poses in enumerate((fig_data[f"{split}_part_poses"][i], fig_data[f"{split}_pred"][i])):
            ax = fig.add_subplot(2, len(columns), row * len(columns) + col + 1, projection="3d")
            placed = np.asarray(transform(pcs[valid], poses[valid]))
            for p, pts in enumerate(placed):
                ax.scatter(pts[:, 0], pts[:, 2], pts[:, 1], s=4, color=cmap(p % 20))
            ax.set_xlim(-0.5, 0.5), ax.set_ylim(-0.5, 0.5), ax.set_zlim(-0.5, 0.5)
            ax.view_init(20, -60)
            ax.set_axis_off()
            ax.set_title(f"{title}\n{'ground truth' if row == 0 else 'predicted'}", fontsize=8)
    fig.suptitle(f"{payload['method']} ({payload['preset']}): {payload['reference']}, seed {payload['seeds'][0]}",
                 fontsize=10)
    fig.tight_layout()
    out = Path(out_dir) / "assemblies.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {"assemblies": out}
