"""How a variant of PATE-TripleGAN is run: plan the privacy budget, train the GAN (resumable, ``core.loop.fit``),
then score it by CAS (a CNN trained only on 10k generated labelled samples, tested on the real held-out set) and
save a sample grid. ``real_data`` trains the CAS CNN on the real private set itself (no GAN, no privacy).

Metrics per run: ``cas_accuracy`` (primary), ``classifier_accuracy`` (C's own test accuracy, Triple-GAN kinds),
and for a private kind its privacy (``epsilon_spent``: the smaller of the RDP and PLD accountants' epsilons of the
planned run, both recorded; data-independent); ``extra/epsilon_spent`` is collected by ``reproduce`` into
results.json's ``extra.epsilon_spent`` (private variants only). A private run writes only what ``released.py``
lists.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.errors import DataMissingError
from jaxsuite.core.loop import fit
from jaxsuite.core.sharding import make_mesh, replicate
from jaxsuite.methods.pate_triplegan import budget, released, train
from jaxsuite.methods.pate_triplegan import data as ptg_data
from jaxsuite.methods.pate_triplegan.cas import cas_accuracy, predict
from jaxsuite.methods.pate_triplegan.grid import save_grid

NAME = "pate_triplegan"
TITLE = "PATE-TripleGAN: private conditional image synthesis with PATE + DP-SGD (Jiang, Ni, Zhang, 2024)"
REFERENCE = "pate_triplegan"

VARIANTS = {
    "pate_triplegan": ("Triple-GAN; D by DP-SGD over every private image (C pre-labels the unlabelled), C by DP-SGD "
                       "on the labels plus a PATE student term (GNMax labels of generated images)", {}),
    "no_pate": ("control: pate_triplegan without teachers or GNMax; their share of the budget goes to D's and C's "
                "DP-SGD (less noise, same iterations)", {"kind": "no_pate"}),
    "dp_cgan": ("conditional GAN, D by DP-SGD on the labelled private pairs (DP-CGAN)", {"kind": "dp_cgan"}),
    "pate_gan": ("conditional PATE-GAN: teachers on labelled pairs + GNMax-taught student D, no classifier",
                 {"kind": "pate_gan"}),
    "triplegan_nonprivate": ("Triple-GAN without privacy (upper bound)", {"kind": "triplegan"}),
    "real_data": ("CAS CNN trained on the real private set with its labels (upper bound)", {"kind": "real_data"}),
}
VARIANTS.update({f"{name}_eps1": (f"{desc}; epsilon 1, every noise x privacy.eps1_noise_scale",
                                   {**over, "privacy.epsilon": 1.0})
                 for name, (desc, over) in list(VARIANTS.items()) if name not in ("triplegan_nonprivate", "real_data")})


def variant_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    cfg = config_lib.variant_config(config, VARIANTS, variant, NAME)
    if variant.endswith("_eps1"):  # a 10x smaller budget needs more noise per step to afford any steps
        config_lib.set_key(cfg, "privacy.noise_scale", cfg.privacy.eps1_noise_scale)
    if cfg.kind == "dp_cgan" and "cgan_expected_batch" in cfg.dp:  # its D samples the labelled pairs only
        config_lib.set_key(cfg, "dp.expected_batch", cfg.dp.cgan_expected_batch)
    if cfg.kind == "triplegan" and "nonprivate_steps" in cfg:  # private kinds stop on their budget
        config_lib.set_key(cfg, "steps", min(cfg.steps, cfg.nonprivate_steps))
    return cfg


def results_meta(config) -> dict:
    return {"dataset": config.data.dataset, "primary_metric": "cas_accuracy", "higher_is_better": True,
            "reference": REFERENCE}


def check_data(config) -> None:
    status = ptg_data.data_status(config.data.dataset)
    if status != "present" and not status.startswith("embedded"):
        raise DataMissingError(f"pate_triplegan data set {config.data.dataset!r}: {status}; "
                               f"run `jaxsuite data fetch mnist`")


@functools.lru_cache(maxsize=2)
def _load(data_json: str) -> dict:
    d = json.loads(data_json)
    return ptg_data.load(d["dataset"], test_size=d["test_size"], labeled_fraction=d["labeled_fraction"],
                         num_private=d["num_private"])


def load_data(cfg) -> dict:
    return _load(json.dumps(cfg.data.to_dict(), sort_keys=True))


def teacher_of(ids: np.ndarray, num_teachers: int, seed: int) -> np.ndarray:
    """Each example's teacher: a keyed hash of its id (splitmix64's finaliser of id + key, the key drawn from the
    seed) mod T. It depends on the example alone, so adding or removing one example changes one teacher's shard
    and no other: the teachers' votes are then add/remove-one neighbours, the relation DP-SGD is accounted in."""
    key = np.random.default_rng([seed, 11]).integers(0, 2 ** 63, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.asarray(ids, np.uint64) + key + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(num_teachers)).astype(np.int32)


def private_batch(private: dict, num_teachers: int, seed: int, with_shards: bool) -> dict:
    """The private set and its fixed index tables (see ``train``). Teachers' shards are disjoint: example i goes to
    ``teacher_of(id_i)``; each teacher's labelled and unlabelled rows are listed first in its row of the table,
    padded with index 0 to the longest shard, and their counts are given (a padded draw weighs nothing)."""
    labeled = np.flatnonzero(private["labeled"]).astype(np.int32)
    unlabeled = np.flatnonzero(~private["labeled"]).astype(np.int32)
    batch = {"x": private["x"], "y": private["y"], "labeled": private["labeled"], "labeled_idx": labeled,
             "unlabeled_idx": unlabeled}
    if with_shards:
        owner = teacher_of(private["id"], num_teachers, seed)
        for name, idx in (("shard_labeled", labeled), ("shard_unlabeled", unlabeled)):
            members = [idx[owner[idx] == t] for t in range(num_teachers)]
            sizes = np.array([len(m) for m in members], np.int32)
            table = np.zeros((num_teachers, max(1, sizes.max())), np.int32)
            for t, m in enumerate(members):
                table[t, :len(m)] = m
            batch[name], batch[f"{name}_size"] = table, sizes
    return batch


def generate(state, count: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """``count`` generated pairs, labels cycling through the classes (balanced)."""
    players = state.merge()
    g, hp = players.g, players.hyper
    y = jnp.arange(count) % hp.num_classes
    z = jax.random.normal(key, (count, hp.latent))
    make = jax.jit(lambda z, y: g(z, y))
    x = np.concatenate([np.asarray(make(z[i:i + 2000], y[i:i + 2000])) for i in range(0, count, 2000)])
    return x, np.asarray(y)


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Train ``variant`` with ``seed`` in ``workdir`` (resuming); its CAS and privacy metrics, or None if stopped."""
    workdir = Path(workdir)
    cfg = variant_config(config, variant)
    d = load_data(cfg)
    priv, test, k = d["private"], d["test"], d["num_classes"]
    cas_kw = dict(num_classes=k, seed=seed, steps=cfg.cas.steps, batch_size=cfg.cas.batch_size, lr=cfg.cas.lr,
                  channels=tuple(cfg.cas.get("channels", cfg.model.c_channels)),
                  hidden=cfg.cas.get("hidden", cfg.model.c_hidden))
    if cfg.kind == "real_data":
        acc = cas_accuracy(priv["x"], priv["y"], test["x"], test["y"], **cas_kw)
        return {"cas_accuracy": acc}

    plan = budget.plan(cfg, len(priv["y"]), int(priv["labeled"].sum()))
    hyper = train.make_hyper(cfg, k, plan)
    mesh = make_mesh()
    batch = replicate(private_batch(priv, cfg.model.num_teachers, seed, cfg.kind in budget.PATE_KINDS), mesh)
    result = fit(init_fn=lambda: train.init(cfg, hyper, d["image_shape"], len(priv["y"]), jax.random.PRNGKey(seed)),
                 train_step=train.train_step, batch_fn=lambda step: batch, num_steps=plan.steps, workdir=workdir,
                 checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                 log_every=cfg.log_every, desc=f"{variant} s{seed}", progress=progress, shard_batches=False, mesh=mesh,
                 place_state=train.shard_teachers)
    if result.interrupted:
        return None
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 10 ** 6)
    x_gen, y_gen = generate(result.state, cfg.cas.samples, key)
    save_grid(x_gen, y_gen, k, workdir / "samples.png", per_class=10)
    metrics = {"cas_accuracy": cas_accuracy(x_gen, y_gen, test["x"], test["y"], **cas_kw),
               **plan.as_metrics(), "train_seconds": result.train_seconds}
    if plan.private:
        metrics["extra/epsilon_spent"] = plan.epsilon
    if hyper.kind in train.WITH_CLASSIFIER:
        metrics["classifier_accuracy"] = float(np.mean(predict(result.state.merge().c, test["x"]) == test["y"]))
    if plan.private:
        released.check(metrics, released.RESULT_KEYS, "results")
    return metrics


def data_status() -> dict[str, str]:
    return {name: ptg_data.data_status(name) for name in ptg_data.DATASETS}
