"""How a variant of MetaCURE is run: ``iterations`` meta-training iterations on the training part of the env's
training tasks (resumable, ``core.loop.fit``; each iteration's meta-batch of tasks is drawn on the host from the
seed and the step, sharded over the mesh's ``data`` axis), then the meta-test. ``rl2`` runs its own trainer
(``rl2_train``: PPO iterations with the same env-step budget, ``rl2_train.iterations_for``) through the same loop
and the same meta-test.

Three disjoint task sets (``goals``): training, validation (``val.tasks`` held out of the official training list)
and test (the official held-out list). Every evaluation during a run (every ``eval_every`` iterations, 0: none)
and every choice reads validation; the test tasks are read once, at the end of the run.

Metrics per run: on the test tasks ``eval_success`` (primary: the fraction of the exploiter's episodes, after
exploration, that enter the goal region), ``eval_return`` (their mean return), ``explore_success`` and
``exploit_success_when_explored`` (``train.evaluate``); the same on the validation tasks as ``val_*``.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.loop import fit
from jaxsuite.core.sharding import make_mesh
from jaxsuite.methods.metacure import goals, rl2_train, train

NAME = "metacure"
TITLE = "MetaCURE: meta-RL with empowerment-driven exploration (Zhang et al., ICML 2021)"
REFERENCE = "metacure"

VARIANTS = {
    "metacure": ("explorer pi_e(a|s,b_t) on r + 0.2 r_int, exploiter pi(a|s,z), sequential belief", {}),
    "metacure_lambda0": ("the same without the intrinsic reward (lambda 0)", {"intrinsic.weight": 0.0}),
    "pearl": ("PEARL: posterior sampling with the exploiter, product-of-Gaussians encoder",
              {"explore.mode": "posterior_sampling", "model.encoder": "product_of_gaussians"}),
    "random_explorer": ("uniform random exploration, MetaCURE's exploiter and encoder", {"explore.mode": "random"}),
    "rl2": ("RL² (Duan et al. 2016): a GRU policy over the whole K+1-episode trial, PPO, the same env steps",
            {"algorithm": "rl2"}),
}
ALGORITHMS = ("metacure", "rl2")


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
    for variant in config.variants:
        _trainer(variant_config(config, variant))


def _trainer(cfg):
    """(trainer module, its setup, iterations) of the variant's resolved config."""
    if cfg.algorithm not in ALGORITHMS:
        raise ConfigError(f"config key 'algorithm' must be one of {ALGORITHMS}, got {cfg.algorithm!r}")
    if cfg.algorithm == "rl2":
        return rl2_train, rl2_train.make_setup(cfg), rl2_train.iterations_for(cfg)
    return train, train.make_setup(cfg), cfg.iterations


def task_sets(cfg) -> dict:
    """{"val": validation tasks, "test": test tasks} of the resolved config, as device arrays (``goals``)."""
    return {"val": jax.tree.map(jnp.asarray, goals.validation_tasks(cfg.env.name, cfg.val.tasks, cfg.val.seed)),
            "test": jax.tree.map(jnp.asarray, goals.reported_tasks(cfg.env.name))}


def task_batches(num_tasks: int, meta_batch: int, seed: int):
    """``batch_fn`` of the loop: step -> {"tasks": [meta_batch] distinct training-task indices}, a function of
    (seed, step) only, so a resumed run draws the same tasks."""
    def batch_fn(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        return {"tasks": rng.choice(num_tasks, meta_batch, replace=False).astype(np.int32)}

    return batch_fn


# jitted once per process: the seeds of a variant share their compilations (the key is an argument, not a constant)
_JITTED = {mod.__name__: (jax.jit(mod.init, static_argnums=0), jax.jit(mod.evaluate, static_argnames="rollouts"))
           for mod in (train, rl2_train)}


def scores(trainer, state, seed: int, sets: dict, rollouts: int, *, test: bool) -> dict:
    """Validation metrics (``val_*``) and, where ``test``, the test metrics (unprefixed, the reported ones) of
    ``state``; each set has its own evaluation key, a function of the seed only."""
    evaluate = _JITTED[trainer.__name__][1]
    key = jax.random.PRNGKey(seed + 10_000)
    out = {f"val_{k}": v for k, v in evaluate(state, jax.random.fold_in(key, 1), tasks=sets["val"],
                                              rollouts=rollouts).items()}
    if test:
        out.update(evaluate(state, key, tasks=sets["test"], rollouts=rollouts))
    return out


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Meta-train ``variant`` with ``seed`` in ``workdir`` (resuming); its validation (``val_*``) and test
    metrics, or None if stopped. Evaluations before the last iteration read validation only."""
    cfg = variant_config(config, variant)
    trainer, setup, iterations = _trainer(cfg)
    sets = task_sets(cfg)
    init = _JITTED[trainer.__name__][0]
    batch_size = cfg.rl2.trials if trainer is rl2_train else cfg.train.meta_batch
    result = fit(init_fn=lambda: init(setup, jax.random.PRNGKey(seed)), jit_init=False,
                 train_step=trainer.train_step,
                 batch_fn=task_batches(setup.spec.num_train, batch_size, seed),
                 num_steps=iterations, workdir=Path(workdir),
                 evaluate_fn=lambda s: scores(trainer, s, seed, sets, cfg.eval.rollouts,
                                              test=int(s.step) >= iterations),
                 eval_every=cfg.eval_every,
                 checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                 log_every=cfg.log_every, desc=f"{variant} s{seed}", progress=progress, mesh=make_mesh())
    if result.interrupted:
        return None
    return {**result.eval_metrics, "train_seconds": result.train_seconds}


def data_status() -> dict[str, str]:
    return {"simulated tasks": "present"}
