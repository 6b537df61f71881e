"""How a variant of MetaCURE is run: ``iterations`` meta-training iterations on the env's training tasks
(resumable, ``core.loop.fit``; each iteration's meta-batch of tasks is drawn on the host from the seed and the
step, sharded over the mesh's ``data`` axis), then the meta-test on the held-out tasks.

Metrics per run: ``eval_success`` (primary: the fraction of the exploiter's held-out episodes, after exploration,
that enter the goal region), ``eval_return`` (their mean return), ``explore_success`` and
``exploit_success_when_explored`` (``train.evaluate``).
"""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.loop import fit
from jaxsuite.core.sharding import make_mesh
from jaxsuite.methods.metacure import train

NAME = "metacure"
TITLE = "MetaCURE: meta-RL with empowerment-driven exploration (Zhang et al., ICML 2021)"
REFERENCE = "metacure"

VARIANTS = {
    "metacure": ("explorer pi_e(a|s,b_t) on r + 0.2 r_int, exploiter pi(a|s,z), sequential belief", {}),
    "metacure_lambda0": ("the same without the intrinsic reward (lambda 0)", {"intrinsic.weight": 0.0}),
    "pearl": ("PEARL: posterior sampling with the exploiter, product-of-Gaussians encoder",
              {"explore.mode": "posterior_sampling", "model.encoder": "product_of_gaussians"}),
    "random_explorer": ("uniform random exploration, MetaCURE's exploiter and encoder", {"explore.mode": "random"}),
}


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    """The variant's config with the overlay of ``config.env.name`` (``config.overlays``) applied first."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    for key, value in _flatten(cfg.overlays.to_dict().get(cfg.env.name, {})):
        config_lib.set_key(cfg, key, value)
    return config_lib.variant_config(cfg, VARIANTS, variant, NAME)


def _flatten(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def results_meta(config) -> dict:
    return {"dataset": config.env.name, "primary_metric": "eval_success", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> None:
    """Simulated tasks need no data; a bad env name or setting fails here, before any run."""
    train.make_setup(variant_config(config, "metacure"))


def task_batches(num_tasks: int, meta_batch: int, seed: int):
    """``batch_fn`` of the loop: step -> {"tasks": [meta_batch] distinct training-task indices}, a function of
    (seed, step) only, so a resumed run draws the same tasks."""
    def batch_fn(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        return {"tasks": rng.choice(num_tasks, meta_batch, replace=False).astype(np.int32)}

    return batch_fn


# jitted once per process: the seeds of a variant share their compilations (the key is an argument, not a constant)
_init = jax.jit(train.init, static_argnums=0)
_evaluate = jax.jit(train.evaluate, static_argnames="rollouts")


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Meta-train ``variant`` with ``seed`` in ``workdir`` (resuming); its meta-test metrics, or None if stopped."""
    cfg = variant_config(config, variant)
    setup = train.make_setup(cfg)
    eval_tasks = jax.tree.map(jnp.asarray, setup.spec.eval_tasks)
    evaluate = functools.partial(_evaluate, key=jax.random.PRNGKey(seed + 10_000), tasks=eval_tasks,
                                 rollouts=cfg.eval.rollouts)
    result = fit(init_fn=lambda: _init(setup, jax.random.PRNGKey(seed)), jit_init=False,
                 train_step=train.train_step,
                 batch_fn=task_batches(setup.spec.num_train, cfg.train.meta_batch, seed),
                 num_steps=cfg.iterations, workdir=Path(workdir), evaluate_fn=evaluate,
                 checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                 log_every=cfg.log_every, desc=f"{variant} s{seed}", progress=progress, mesh=make_mesh())
    if result.interrupted:
        return None
    return {**result.eval_metrics, "train_seconds": result.train_seconds}


def data_status() -> dict[str, str]:
    return {"simulated tasks": "present"}
