"""MIM-Refiner's pure training functions (paper Sec. 3 and 4.1).

``init(config, rng, stage=2, encoder_params=...)`` builds the encoder (loaded with the MIM model's weights)
and one NNCLR head per ``refine.head_blocks`` entry, their queues, and the optimiser of the stage;
``to_stage3(config, state2)`` continues from the end of stage 2 with stage 3's optimiser (end to end,
layer-wise lr decay) and an EMA copy of the encoder; ``train_step(state, batch)`` is one step of either
stage: multi-crop views, one encoder pass per crop size, every head's NNA loss (``losses.nna_loss``) summed
over heads (the official ``ContrastiveTrainer``), then the queue of each head is pushed with the first global
view's projections. ``batch``: {"image": [B, H, W, C] in [0, 1], "idx": [B] dataset indices}.
``evaluate(state, data, eval_cfg)``: k-NN per block and the probes of the (EMA) encoder.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.train_state import TrainState, module_state, split_module
from jaxsuite.methods.mim_refiner import probe
from jaxsuite.methods.mim_refiner.augment import multi_crop
from jaxsuite.methods.mim_refiner.heads import Refiner, pool
from jaxsuite.methods.mim_refiner.losses import nna_loss
from jaxsuite.methods.mim_refiner.mae import make_encoder
from jaxsuite.methods.mim_refiner.optim import refiner_optimizer
from jaxsuite.methods.mim_refiner.queue import enqueue, init_queues, lookup


class Augment(NamedTuple):
    num_global: int
    global_size: int
    global_scale: tuple[float, float]
    num_local: int
    local_size: int
    local_scale: tuple[float, float]
    strength: float


class Hyper(NamedTuple):
    stage: int
    topk: int
    temperature: float
    local_indexing: str
    ema: float
    aug: Augment


def hyper(config, stage: int) -> Hyper:
    r, a = config.refine, config.aug
    if stage not in (2, 3):
        raise ConfigError(f"MIM-Refiner stages are 2 and 3, got {stage}")
    if r.local_indexing not in ("fixed", "official"):
        raise ConfigError(f"config key 'refine.local_indexing' must be 'fixed' or 'official', got {r.local_indexing!r}")
    if a.num_global < 2:
        raise ConfigError(f"config key 'aug.num_global' must be >= 2 (the loss pairs global views), got {a.num_global}")
    if r.queue_size < config.batch_size:
        raise ConfigError(f"config key 'refine.queue_size' ({r.queue_size}) must be at least the batch size "
                          f"({config.batch_size})")
    topk = r.stage2_topk if stage == 2 else r.stage3_topk
    return Hyper(stage=stage, topk=int(topk), temperature=float(r.temperature), local_indexing=r.local_indexing,
                 ema=float(r.ema) if stage == 3 else 0.0,
                 aug=Augment(a.num_global, a.global_size, tuple(a.global_scale), a.num_local, a.local_size,
                             tuple(a.local_scale), float(a.strength)))


class RefinerModel(Refiner):
    """The refiner with its static hyper-parameters (part of the graph definition, so ``train_step`` is pure)."""

    def __init__(self, config, stage: int, rngs: nnx.Rngs):
        super().__init__(make_encoder(config, rngs), tuple(config.refine.head_blocks), config.refine.head, rngs=rngs)
        self.hp = hyper(config, stage)


def _stage_steps(config, stage: int) -> int:
    return int(config.refine.stage2_steps if stage == 2 else config.refine.stage3_steps)


def init(config, rng: jax.Array, *, stage: int = 2, encoder_params=None) -> TrainState:
    """A refiner state at the start of ``stage``; ``encoder_params``: the MIM encoder's parameters."""
    if not config.refine.head_blocks:
        raise ConfigError("config key 'refine.head_blocks' is empty: give at least one block (-1 = final output)")
    k_model, k_queue, k_state = jax.random.split(rng, 3)
    model = RefinerModel(config, stage, nnx.Rngs(k_model))
    graphdef, params, rest = split_module(model)
    if encoder_params is not None:
        params = {**params, "encoder": encoder_params}
    tx = refiner_optimizer(config.refine.optim, depth=model.encoder.depth, steps=_stage_steps(config, stage),
                           freeze_encoder=stage == 2)
    aux = {"queues": init_queues(k_queue, len(model.heads), config.refine.queue_size, config.refine.head.out_dim)}
    if model.hp.ema > 0:
        aux["ema"] = params["encoder"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=rest, opt_state=tx.init(params),
                      rng=k_state, graphdef=graphdef, tx=tx, aux=aux)


def to_stage3(config, state2: TrainState) -> TrainState:
    """Stage 3 from the end of stage 2: same parameters, BN statistics and queues; new optimiser and EMA."""
    fresh = jax.eval_shape(lambda: init(config, jax.random.PRNGKey(0), stage=3))
    tx = fresh.tx
    aux = {"queues": state2.aux["queues"]}
    if "ema" in fresh.aux:
        aux["ema"] = state2.params["encoder"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=state2.params, model_state=state2.model_state,
                      opt_state=tx.init(state2.params), rng=jax.random.fold_in(state2.rng, 3),
                      graphdef=fresh.graphdef, tx=tx, aux=aux)


def _views_first(x: jax.Array, views: int) -> jax.Array:
    """[V*B, D] stacked view-major -> [B, V, D]."""
    return x.reshape(views, -1, x.shape[-1]).swapaxes(0, 1)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    hp: Hyper = state.merge().hp
    k_aug, k_nn = jax.random.split(state.step_key())
    globals_, locals_ = multi_crop(k_aug, batch["image"], hp.aug)
    n_g, b = globals_.shape[:2]
    queues = state.aux["queues"]

    def loss_fn(params):
        model = state.merge(params)
        enc = model.encoder
        outs = [enc(globals_.reshape((n_g * b,) + globals_.shape[2:]))]
        if locals_ is not None:
            outs.append(enc(locals_.reshape((-1,) + locals_.shape[2:])))
        total, metrics, teachers = 0.0, {}, []
        for h, (block, head) in enumerate(zip(model.head_blocks, model.heads)):
            x = jnp.concatenate([pool(o, block) for o in outs]).astype(jnp.float32)
            if hp.stage == 2:  # frozen encoder: no backward pass through it
                x = jax.lax.stop_gradient(x)
            z, p = head(x, train=True)
            teacher = jax.lax.stop_gradient(z[:n_g * b])
            nn, sim = lookup(queues["x"][h], queues["idx"][h], teacher, batch["idx"], hp.topk,
                             jax.random.fold_in(k_nn, h))
            views = x.shape[0] // b
            loss, m = nna_loss(_views_first(teacher, n_g), _views_first(nn, n_g), _views_first(p, views),
                               hp.temperature, hp.local_indexing)
            total = total + loss
            metrics.update({f"head{h}_loss": loss, f"head{h}_nn_similarity": sim.mean(),
                            f"head{h}_alignment": m["global_alignment"]})
            teachers.append(teacher[:b])
        return total, (module_state(model), metrics, jnp.stack(teachers))

    (loss, (model_state, metrics, teachers)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    new = state.apply_gradients(grads, model_state)
    qx, qi, ptr = jax.vmap(enqueue, (0, 0, 0, 0, None))(queues["x"], queues["idx"], queues["ptr"], teachers,
                                                         batch["idx"])
    aux = {**state.aux, "queues": {"x": qx, "idx": qi, "ptr": ptr}}
    if "ema" in aux:
        aux["ema"] = optax.incremental_update(new.params["encoder"], aux["ema"], 1.0 - hp.ema)
    return new.replace(aux=aux), {"loss": loss, **metrics}


def eval_encoder(state: TrainState):
    """The encoder to evaluate: the EMA copy in stage 3 (as the official ema_callback), else the live one."""
    params = state.params if "ema" not in (state.aux or {}) else {**state.params, "encoder": state.aux["ema"]}
    return state.merge(params).encoder


def evaluate(state: TrainState, data: dict, eval_cfg, *, seed: int = 0) -> dict:
    """Frozen-feature metrics of the state's evaluation encoder (``probe.evaluate_encoder``): ``data`` is
    {"train": {"image", "label"}, "val": {...}, "test": {...}}; ``eval_cfg`` the config's ``eval`` section.
    Host-side (k-NN and the probes run jitted per chunk / per fit, the block choice in numpy)."""
    return probe.evaluate_encoder(eval_cfg, eval_encoder(state), data, seed=seed)
