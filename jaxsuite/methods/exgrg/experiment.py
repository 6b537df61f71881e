"""How a variant of ExGRG is run: self-supervised pre-training on each graph of ``config.datasets``
(full batch), then a linear probe of the frozen embeddings on the public split and on random 10/10/80
splits. Per data set, ``config.overlays.<dataset>`` overrides the shared config (CiteSeer's encoder
and budget differ, as in CCA-SSG). Metrics are stored as ``<dataset>/<metric>``; the first data set's
public-split accuracy is also ``test_accuracy``, the primary metric.

A user's own graph: ``run(config, variant, seed, workdir, graph=GraphData.from_...(...))`` (see
``graph_input``), or a path to an ``.npz`` graph file in ``datasets`` (``--set "datasets=('g.npz',)"``),
whose metrics are stored under the file's stem.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.config import set_key
from jaxsuite.core.errors import ConfigError, DataCorruptError, DataMissingError
from jaxsuite.core.loop import fit
from jaxsuite.core.sharding import make_mesh, replicate
from jaxsuite.data.cache import sha256_file
from jaxsuite.data.planetoid import PLANETOID, Graph
from jaxsuite.methods.exgrg import data as exgrg_data
from jaxsuite.methods.exgrg import train
from jaxsuite.methods.exgrg.probe import linear_probe

NAME = "exgrg"
TITLE = "ExGRG: explicitly-generated relation graph for graph SSL (Naseri & Biparva, 2024)"
REFERENCE = "exgrg"

PLUS_WEIGHT = 0.05
_ONLY_AUG = {f"relation.weights.{c}": 0.0 for c in train.COMPONENTS if c != "aug"}
VARIANTS = {
    "exgrg": ("the relation graph G = sum of the weighted components in relation.weights", {}),
    "vicreg_aug": ("same encoder and loss, G = augmentation pairs only (the implicit graph)", _ONLY_AUG),
    "bgrl": ("BGRL (Thakoor et al. 2021): EMA target, predictor, cosine loss", {"kind": "bgrl"}),
    "cca_ssg": ("CCA-SSG (Zhang et al. 2021): invariance + decorrelation of standardised embeddings",
                {"kind": "cca_ssg"}),
    "raw_features": ("linear probe on the (row-normalised) input features, no training", {"kind": "raw"}),
    "gcn_supervised": ("2-layer GCN trained on the split's labels (Kipf & Welling 2017)", {"kind": "supervised"}),
    **{f"exgrg_no_{c}": (f"ablation: exgrg without the {c} component", {f"relation.weights.{c}": 0.0})
       for c in train.COMPONENTS},
    **{f"exgrg_plus_{c}": (f"study: exgrg with the {c} component added at weight {PLUS_WEIGHT}",
                           {f"relation.weights.{c}": PLUS_WEIGHT}) for c in ("adj", "cluster", "lap", "rw")},
}


def _overlay(config: ml_collections.ConfigDict, overlay: dict, prefix: str = "") -> None:
    for key, value in overlay.items():
        if isinstance(value, dict):
            _overlay(config, value, f"{prefix}{key}.")
        else:
            set_key(config, prefix + key, value)


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def label(dataset: str | Graph) -> str:
    """The name metrics and work folders use: a built-in data set's name, a ``Graph``'s name, an .npz file's stem."""
    if isinstance(dataset, Graph):
        return dataset.name
    return Path(dataset).stem if exgrg_data.is_npz(dataset) else dataset


def dataset_config(config: ml_collections.ConfigDict, dataset: str | Graph) -> ml_collections.ConfigDict:
    """``config`` with ``config.overlays[dataset]`` applied and ``dataset`` set (a ``Graph``: its name; pass the
    graph itself to ``load_batch``, which sets ``data.*`` from it)."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    overlays = cfg.get("overlays", {}) or {}
    name = dataset.name if isinstance(dataset, Graph) else dataset
    if name in overlays:
        _overlay(cfg, overlays[name].to_dict())
    set_key(cfg, "dataset", name)
    return cfg


def results_meta(config) -> dict:
    return {"dataset": "+".join(label(d) for d in config.datasets), "primary_metric": "test_accuracy",
            "higher_is_better": True, "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    """Every data set present, its pinned files verified; their digests."""
    digests = {}
    for name in config.datasets:
        if exgrg_data.is_npz(name):  # a user's graph file: read and checked now, digested as a whole
            exgrg_data.load_graph(name)
            digests[f"user/{Path(name).name}"] = sha256_file(Path(name))
            continue
        if name not in exgrg_data.DATASETS:
            raise ConfigError(f"unknown dataset {name!r} for exgrg (known: {', '.join(exgrg_data.DATASETS)}, "
                              "or a path to an .npz graph file)")
        status = exgrg_data.data_status(name)
        if status.startswith("bad"):
            raise DataCorruptError(f"exgrg data set {name!r}: {status}")
        if name == "pubmed" and status != "present":
            raise DataMissingError(
                f"exgrg data set 'pubmed': {status} in {PLANETOID.folder}; `jaxsuite data fetch planetoid` fetches "
                "only Cora and CiteSeer: copy data/ind.pubmed.* of kimiyoung/planetoid (commit af6abf4, the same "
                "bytes as tkipf/gcn's gcn/data/) into that folder; `git hash-object ind.pubmed.allx` must print "
                "3b86bccf08111c37c632a9dd8ab63db25ea76361 (see SOURCE.md there)")
        if status != "present" and not status.startswith("embedded"):
            raise DataMissingError(f"exgrg data set {name!r}: {status}; see $JAXSUITE_DATA/planetoid/SOURCE.md "
                                   f"or run `jaxsuite data fetch planetoid`")
        digests.update(exgrg_data.digests(name))
    return digests


def load_batch(cfg, graph: Graph | None = None) -> dict:
    """The full-batch graph for ``cfg.dataset`` (or ``graph``, a user's ``GraphData``) with
    ``cfg.data.num_nodes/num_features/num_classes`` filled in."""
    weights = {c: float(w) for c, w in cfg.relation.weights.items()} if cfg.kind == "exgrg" else {}
    fixed = tuple(c for c in ("adj", "lap", "rw") if weights.get(c, 0.0) > 0)
    hops = cfg.relation.knn_hops if weights.get("knn", 0.0) > 0 else 0
    source = cfg.dataset if graph is None else graph
    batch = exgrg_data.full_batch(source, cfg.data.pe_dim, cfg.data.rw_steps, cfg.data.pe_k, hops, fixed)
    set_key(cfg, "data.num_nodes", int(batch["labels"].shape[0]))
    set_key(cfg, "data.num_features", int(batch["x"].shape[1]))
    set_key(cfg, "data.num_classes", int(np.asarray(batch["labels"]).max()) + 1)
    return batch


def train_one(cfg, seed: int, workdir: Path, *, progress: bool = True, graph: Graph | None = None) -> dict | None:
    """Pre-train (or train, for the supervised GCN) on ``cfg.dataset`` (or ``graph``) and evaluate; None if
    interrupted."""
    batch = load_batch(cfg, graph)
    if cfg.kind == "raw":
        t0 = time.perf_counter()
        out = linear_probe(batch["x"], batch["labels"], batch["train_mask"], batch["val_mask"],
                           batch["test_mask"], num_classes=cfg.data.num_classes,
                           num_random_splits=cfg.num_random_splits)
        return {**out, "train_seconds": time.perf_counter() - t0}
    steps = train.num_steps(cfg)
    select = select_period(cfg)
    mesh = make_mesh()
    batch = replicate(batch, mesh)  # one full-batch graph: placed once, the same every step
    result = fit(init_fn=lambda: train.init(cfg, jax.random.PRNGKey(seed)), train_step=train.train_step,
                 batch_fn=lambda step: batch, num_steps=steps, workdir=workdir,
                 evaluate_fn=lambda s: train.evaluate(s, batch, cfg.num_random_splits),
                 eval_every=select or cfg.eval_every, checkpoint_every=cfg.checkpoint_every,
                 keep_checkpoints=cfg.keep_checkpoints, log_every=cfg.log_every,
                 desc=f"{cfg.kind} {label(cfg.dataset)} s{seed}", progress=progress, shard_batches=False, mesh=mesh)
    if result.interrupted:
        return None
    rate = {"epochs_per_second": result.steps_per_second} if result.steps_per_second else {}
    out = {**result.eval_metrics, "train_seconds": result.train_seconds, **rate}
    if select:  # BGRL's own budget: the evaluation with the best public-split validation accuracy
        curve = eval_curve(Path(workdir) / "metrics.jsonl")
        best = pick_step(curve)
        out.update({k: v for k, v in curve[best].items() if k in result.eval_metrics})
        out["extra"] = {"selected_step": best, "val_curve": [[s, curve[s]["val_accuracy"]] for s in sorted(curve)]}
    return out


def select_period(cfg) -> int:
    """BGRL with ``bgrl.select_period`` > 0: evaluated every that many steps of its ``bgrl.steps`` budget, the
    evaluation with the best public-split validation accuracy reported (0: the last step's, as for every other
    variant)."""
    return int(cfg.bgrl.get("select_period", 0) or 0) if cfg.kind == "bgrl" else 0


def eval_curve(path: Path) -> dict[int, dict]:
    """The evaluations in a run's metrics.jsonl by step (a step written twice, by a resumed run: the last)."""
    curve: dict[int, dict] = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if record.get("split") == "eval" and "val_accuracy" in record:
            curve[int(record["step"])] = {k: v for k, v in record.items() if k not in ("step", "split")}
    if not curve:
        raise RuntimeError(f"no evaluation in {path}")
    return curve


def pick_step(curve: dict[int, dict]) -> int:
    """The step with the best validation accuracy, the earliest of ties (the test accuracy is not read)."""
    return min(curve, key=lambda s: (-curve[s]["val_accuracy"], s))


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True, graph: Graph | None = None) -> dict | None:
    """Run ``variant`` with ``seed`` on every graph of ``config.datasets`` (or on ``graph`` alone, a user's
    ``GraphData``); returns the metrics per data set (``cora/test_accuracy``, ...) and the first data set's
    ``test_accuracy``, or None if interrupted."""
    cfg = variant_config(config, variant)
    metrics: dict[str, float] = {}
    seconds = 0.0
    datasets = list(config.datasets) if graph is None else [graph]
    for dataset in datasets:
        name = label(dataset)
        out = train_one(dataset_config(cfg, dataset), seed, Path(workdir) / name, progress=progress,
                        graph=dataset if isinstance(dataset, Graph) else None)
        if out is None:
            return None
        seconds += out.pop("train_seconds")
        metrics.update({f"extra/{name}_{k}": v for k, v in out.pop("extra", {}).items()})
        metrics.update({f"{name}/{k}": float(v) for k, v in out.items()})
    metrics["test_accuracy"] = metrics[f"{label(datasets[0])}/test_accuracy"]
    metrics["train_seconds"] = seconds
    return metrics


def data_status() -> dict[str, str]:
    return {name: exgrg_data.data_status(name) for name in exgrg_data.DATASETS}


def format_paired(payload: dict) -> str:
    """results.md's paired section (the runner's hook): the generic one on the primary metric (the first graph's
    public split), then the same paired-by-seed 95% intervals for every graph's public and random-split accuracy."""
    from jaxsuite.core import results as results_lib
    from jaxsuite.core import stats

    text = results_lib.format_paired(payload)
    ref, variants, seeds = payload.get("reference"), payload.get("variants") or {}, payload.get("seeds") or []
    if ref not in variants:
        return text
    metrics = [k for k in variants[ref] if k.endswith(("/test_accuracy", "/random_split_accuracy"))]
    lines = ["", "Every graph and split, paired by seed the same way (reference - variant: mean [95% CI], verdict):",
             "", "| variant | " + " | ".join(f"`{m}`" for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for variant in variants:
        if variant == ref:
            continue
        cells = []
        for m in metrics:
            if not variants[variant].get(m):
                cells.append("—")
                continue
            p = stats.paired(stats.by_seed(variants[ref][m], seeds), stats.by_seed(variants[variant][m], seeds),
                             higher_is_better=True)
            cells.append(f"{stats.format_interval(p)} {p['verdict']}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return text + "\n" + "\n".join(lines)
