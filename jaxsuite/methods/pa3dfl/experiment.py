"""How a variant of Pa3dFL is run: partition the data over clients, give each client its width, train
``rounds`` communication rounds (resumable, ``core.loop.fit``; ``clients.fraction`` of each width group takes part
in a round; width groups sharded over the mesh by client), then evaluate every client's personalised network on
its local test set.

Metrics per run: ``mean_local_accuracy`` (primary: mean over clients), and collected by ``reproduce`` into
results.json's extra: ``accuracy_by_capacity`` (mean per width), ``bytes_per_round``, ``params_by_capacity``,
``flops_by_capacity`` (one image's forward pass) and, for Pa3dFL, ``compose_flops_by_capacity``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.errors import DataCorruptError, DataMissingError
from jaxsuite.core.loop import fit
from jaxsuite.core.sharding import make_mesh
from jaxsuite.methods.pa3dfl import costs, train
from jaxsuite.methods.pa3dfl import data as fl_data

NAME = "pa3dfl"
TITLE = "Pa3dFL: personalised FL under capacity heterogeneity (Wang et al., 2024)"
REFERENCE = "pa3dfl"

VARIANTS = {
    "pa3dfl": ("theta = theta_u theta_v; theta_u averaged, theta_v from the attention hyper-network, pruned", {}),
    "fedavg_smallest": ("FedAvg, every client at the smallest width", {"kind": "fedavg_smallest"}),
    "heterofl": ("HeteroFL: first-p channel sub-models, per-entry averaging", {"kind": "heterofl"}),
    "fedrolex": ("FedRolex: rolling channel window, per-entry averaging", {"kind": "fedrolex"}),
    "fjord": ("FjORD: ordered dropout over the widths <= p, per-entry averaging", {"kind": "fjord"}),
    "pfedhn": ("pFedHN: hyper-network generates every weight, cut to the client's width", {"kind": "pfedhn"}),
    "lg_fedavg": ("LG-FedAvg: own feature layers, global classifier", {"kind": "lg_fedavg"}),
    "local_only": ("every client trains alone", {"kind": "local_only"}),
}


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    return config_lib.variant_config(config, VARIANTS, variant, NAME, kinds=train.KINDS)


def results_meta(config) -> dict:
    return {"dataset": config.data.dataset, "primary_metric": "mean_local_accuracy", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    status = fl_data.data_status(config.data.dataset)
    if status.startswith("bad"):
        raise DataCorruptError(f"pa3dfl data set {config.data.dataset!r}: {status}")
    if status != "present" and not status.startswith("embedded"):
        how = ("run `jaxsuite data fetch mnist`" if config.data.dataset == "mnist" else
               "see jaxsuite/methods/pa3dfl/README.md for where to put it")
        raise DataMissingError(f"pa3dfl data set {config.data.dataset!r}: {status}; {how}")
    return fl_data.digests(config.data.dataset)


@functools.lru_cache(maxsize=2)
def _build(key: str) -> dict:
    d = json.loads(key)
    return fl_data.build(ml_collections.ConfigDict(d["cfg"]), d["seed"])


def load_data(cfg, seed: int) -> dict:
    return _build(json.dumps({"cfg": {"data": cfg.data.to_dict(), "clients": cfg.clients.to_dict()}, "seed": seed},
                             sort_keys=True))


@functools.lru_cache(maxsize=8)
def _evaluate_fn():
    return jax.jit(train.evaluate)


def summarize(setup: train.Setup, per_client: dict, image_size: int) -> dict:
    """The run's metrics from the per-group client accuracies of ``train.evaluate``."""
    groups = {k.split("/", 1)[1]: np.asarray(v) for k, v in per_client.items()}
    every = np.concatenate(list(groups.values()))
    levels = {fl_data.group_key(p): p for p in setup.levels}
    out = {"mean_local_accuracy": float(every.mean()),
           "extra/accuracy_by_capacity": {str(levels[k]): float(v.mean()) for k, v in sorted(groups.items())},
           "extra/bytes_per_round": float(costs.bytes_per_round(setup.kind, setup.specs, setup.p_min,
                                                                  setup.round_widths())),
           "extra/params_by_capacity": {str(p): costs.params(setup.kind, setup.specs, setup.p_min, p)
                                        for p in setup.levels},
           "extra/flops_by_capacity": {str(p): costs.flops(setup.specs, setup.p_min, p, image_size)
                                       for p in setup.levels}}
    if setup.kind == "pa3dfl":
        out["extra/compose_flops_by_capacity"] = {str(p): costs.compose_flops(setup.specs, setup.p_min, p)
                                                  for p in setup.levels}
    return out


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Train ``variant`` with ``seed`` in ``workdir`` (resuming); its metrics, or None if stopped."""
    cfg = variant_config(config, variant)
    built = load_data(cfg, seed)
    setup = train.make_setup(cfg, built["widths"], built["num_classes"], built["in_channels"])
    widths = train.trained_widths(cfg.kind, built["widths"])
    mesh = make_mesh()
    train_groups = train.shard_clients(fl_data.width_groups(built, widths, "train"), mesh)
    result = fit(init_fn=lambda: train.init(setup, jax.random.PRNGKey(seed)), train_step=train.train_step,
                 batch_fn=lambda step: train_groups, num_steps=cfg.rounds, workdir=Path(workdir),
                 checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                 log_every=cfg.log_every, desc=f"{variant} s{seed}", progress=progress, shard_batches=False,
                 mesh=mesh, jit_init=False, place_state=train.place_state)
    if result.interrupted:
        return None
    data = {"test": train.shard_clients(fl_data.width_groups(built, widths, "test"), mesh)}
    if cfg.eval.local_update:
        data["train"] = train_groups
    per_client = _evaluate_fn()(result.state, data)
    return {**summarize(setup, per_client, built["image_size"]), "train_seconds": result.train_seconds}


def data_status() -> dict[str, str]:
    return {name: fl_data.data_status(name) for name in fl_data.DATASETS}
