"""Pure train/predict/evaluate for SPAFormer and the DGL baseline.

``init(config, rng) -> TrainState``; ``train_step(state, batch) -> (state, metrics)`` (the official loss
settings; ``step_for(config)`` gives the one of a config's ``loss`` section): the model's poses (teacher
forcing and scheduled sampling in the autoregressive mode; every iteration's poses for DGL; the losses averaged over
those), Hungarian-matched within equivalence groups, then the weighted losses of
:mod:`losses`. Optimiser as the official train.py: Adam with L2 weight decay 1e-5, the learning rate x0.8 every
``optim.decay_every`` steps (StepLR), gradients clipped to norm 1 -- all optax. ``evaluate(state, data) -> metrics``
(PA, CA, SCD, SR); ``score`` gives the per-shape rows and matched poses behind them.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState, module_state
from jaxsuite.methods.spaformer import losses, metrics, networks


@functools.lru_cache(maxsize=None)
def _optimizer(lr: float, weight_decay: float, decay_every: int, decay_rate: float, clip: float):
    schedule = optax.exponential_decay(lr, decay_every, decay_rate, staircase=True)
    return optax.chain(optax.clip_by_global_norm(clip), optax.add_decayed_weights(weight_decay), optax.adam(schedule))


def optimizer(cfg) -> optax.GradientTransformation:
    o = cfg.optim
    return _optimizer(float(o.lr), float(o.weight_decay), int(o.decay_every), float(o.decay_rate), float(o.grad_clip))


def init(config, rng: jax.Array) -> TrainState:
    model_key, state_key = jax.random.split(rng)
    model = networks.build(config, nnx.Rngs(params=model_key))
    return TrainState.create(model, optimizer(config), state_key)


def poses_for_training(model, batch: dict, key, noise: float = 0.0, passes: int = 1) -> list[jax.Array]:
    """The poses the losses are computed on: one [B, P, 7] (parallel), one per iteration (DGL), or the last of
    ``passes`` decoder passes (autoregressive). Decoder pass 0 is teacher-forced with the true previous poses plus
    Gaussian ``noise``; pass k conditions on pass k-1's predictions (without gradient), as decoding at test does --
    parallel scheduled sampling (Duckworth et al. 2019): with teacher forcing alone the decoder learned to copy from
    the true previous pose and its errors compounded at test (part accuracy 0.71 teacher-forced, 0.08 decoded)."""
    if isinstance(model, networks.DGLBaseline):
        return model(batch, all_iterations=True)
    if not model.autoregressive:
        return [model(batch, key=key)]
    noise_key, enc_key, dec_key = jax.random.split(key, 3)
    memory = model.encode(batch, enc_key)
    prev = batch["part_poses"] + noise * jax.random.normal(noise_key, batch["part_poses"].shape)
    for k in range(passes - 1):
        prev = jax.lax.stop_gradient(model.decode(memory, batch, networks.shift_poses(prev),
                                                  jax.random.fold_in(dec_key, k)))
    return [model.decode(memory, batch, networks.shift_poses(prev), jax.random.fold_in(dec_key, passes - 1))]


def step_for(cfg):
    """The train step of a config's loss section (one function object per setting, so every seed reuses its
    compilation)."""
    lo = cfg.loss
    return _train_step(int(lo.match_points), int(lo.loss_points), float(lo.trans), float(lo.rot_cd),
                       float(lo.shape_cd), float(cfg.model.ar_pose_noise), int(cfg.model.ar_passes))


@functools.lru_cache(maxsize=None)
def _train_step(match_points: int, loss_points: int, w_trans: float, w_rot: float, w_shape: float,
                ar_pose_noise: float, ar_passes: int):
    weights = {"trans": w_trans, "rot_cd": w_rot, "shape_cd": w_shape}

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        def loss_fn(params):
            model = state.merge(params)
            outs = poses_for_training(model, batch, state.step_key(), ar_pose_noise, ar_passes)
            # one assignment, from the final poses, for every output (DGL's rounds share it)
            order = losses.assignment(outs[-1], batch, match_points)
            terms = [losses.assembly_losses(losses.reorder(o, order), batch, loss_points) for o in outs]
            mean = {k: sum(t[k] for t in terms) / len(terms) for k in terms[0]}
            return losses.total(mean, weights), (module_state(model), mean)

        (loss, (model_state, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        out = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}, "grad_norm": optax.global_norm(grads)}
        return state.apply_gradients(grads, model_state), out

    return train_step


# the official settings (train.py: matching on 100 points, losses on 1000, weights 1 / 10 / 1), for users'
# own loops; experiments take theirs from the config with ``step_for``
train_step = _train_step(100, 1000, 1.0, 10.0, 1.0, 0.02, 2)


def predict(state: TrainState, batch: dict) -> jax.Array:
    """Test-time poses [B, P, 7]: one pass (parallel, DGL) or part-by-part decoding (autoregressive)."""
    model = state.merge()
    if isinstance(model, networks.SPAFormer) and model.autoregressive:
        return networks.decode_autoregressive(model, batch)
    return model(batch)


@functools.partial(jax.jit, static_argnames=("pa_threshold", "ca_threshold"))
def predict_and_score(state: TrainState, batch: dict, *, pa_threshold: float, ca_threshold: float):
    pred = predict(state, batch)
    matched = losses.match(pred, batch, batch["part_pcs"].shape[2])
    return matched, metrics.per_shape(matched, batch, pa_threshold=pa_threshold, ca_threshold=ca_threshold)


def score(state: TrainState, arrays: dict[str, np.ndarray], *, batch_size: int = 64, pa_threshold: float = 0.01,
          ca_threshold: float = 0.01) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-shape metric rows (:func:`metrics.per_shape`) over ``arrays`` and the matched predicted poses [S, P, 7]
    (batches padded to ``batch_size``, so one compiled function serves every split)."""
    n = len(arrays["part_valid"])
    rows, poses = [], []
    for start in range(0, n, batch_size):
        chunk = {k: v[start:start + batch_size] for k, v in arrays.items()}
        m = len(chunk["part_valid"])
        if m < batch_size:
            chunk = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - m, 0)]) for k, v in chunk.items()}
        matched, r = jax.device_get(predict_and_score(state, chunk, pa_threshold=float(pa_threshold),
                                                      ca_threshold=float(ca_threshold)))
        rows.append({k: v[:m] for k, v in r.items()})
        poses.append(matched[:m])
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}, np.concatenate(poses)


def evaluate(state: TrainState, data: dict[str, np.ndarray], **kw) -> dict[str, float]:
    """PA, CA, SCD and SR over ``data`` (keyword arguments as :func:`score`)."""
    return metrics.summarise(score(state, data, **kw)[0])


def eval_options(cfg) -> dict:
    """:func:`score`'s keyword arguments from a config's ``eval`` section."""
    e = cfg.eval
    return {"batch_size": int(e.batch_size), "pa_threshold": float(e.pa_threshold),
            "ca_threshold": float(e.ca_threshold)}


def param_count(state: TrainState) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(state.params)))

