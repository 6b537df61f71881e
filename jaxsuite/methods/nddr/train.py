"""Pure, jittable ``init`` / ``train_step`` / ``evaluate`` of NDDR-CNN and its baselines.

``config.model.kind`` picks the network: "multi_column" (``fusion`` = "nddr" | "cross_stitch" |
"none", optional ``shortcut``) or "hard_sharing". The optimiser is the paper's SGD with momentum
and poly learning rate, built from optax transformations (Sec. 4.1; ops/create_train_ops.py):

    add_decayed_weights (every conv / dense kernel, NDDR included)
    -> multi_transform: x100 NDDR (and cross-stitch, shortcut) parameters, x10 last-layer weights,
       x20 last-layer biases, x1 the rest
    -> sgd(poly schedule, momentum)
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.train_state import TrainState, module_state, split_module
from jaxsuite.methods.nddr import data as nddr_data
from jaxsuite.methods.nddr import metrics as M
from jaxsuite.methods.nddr.losses import task_loss
from jaxsuite.methods.nddr.model import HardSharingNet, MultiTaskNet


def build_model(config, rngs: nnx.Rngs) -> nnx.Module:
    m = config.model
    n = len(m.channels)
    for key in ("depths", "pool_strides", "dilations"):
        if len(m[key]) != n:
            raise ConfigError(f"config key 'model.{key}' needs one entry per stage: model.channels has {n}, "
                              f"model.{key} is {tuple(m[key])}")
    tasks = tuple(dataclasses.replace(t, loss_weight=config.loss.normals_weight) if t.kind == "normals" else t
                  for t in nddr_data.tasks(config.dataset))
    h, w, c = nddr_data.image_shape(config)
    if m.kind == "hard_sharing":
        return HardSharingNet(tasks, m, c, (h, w), rngs=rngs)
    if m.kind != "multi_column":
        raise ConfigError(f"config key 'model.kind' must be 'multi_column' or 'hard_sharing', got {m.kind!r}")
    return MultiTaskNet(tasks, m, c, (h, w), fusion=m.fusion, shortcut=m.shortcut, nddr_init=m.nddr_init,
                        init_weights=tuple(m.init_weights), nddr_bn_epsilon=m.nddr_bn_epsilon,
                        same_column_init=m.same_column_init, rngs=rngs)


def _names(path) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]


def param_group(path) -> str:
    """The lr-multiplier group of a parameter: "fusion", "head_w", "head_b" or "base"."""
    names = _names(path)
    if "fusions" in names or "shortcut" in names:
        return "fusion"
    if "fc8" in names:
        return "head_w" if names[-1] == "kernel" else "head_b"
    return "base"


def make_optimizer(optim, params: Any) -> optax.GradientTransformation:
    """SGD + momentum with the paper's poly schedule, weight decay and lr multipliers (all optax)."""
    schedule = optax.polynomial_schedule(optim.lr, 0.0, optim.poly_power, max(optim.decay_steps, 1))
    labels = jax.tree_util.tree_map_with_path(lambda p, _: param_group(p), params)
    decay_mask = jax.tree_util.tree_map_with_path(lambda p, _: _names(p)[-1] == "kernel", params)
    multipliers = {"base": 1.0, "fusion": optim.fusion_lr_mult, "head_w": optim.head_w_lr_mult,
                   "head_b": optim.head_b_lr_mult}
    return optax.chain(
        # official code: loss += 0.5 * wd * tf.nn.l2_loss(W) = 0.25 wd ||W||^2, i.e. gradient 0.5 wd W
        optax.add_decayed_weights(0.5 * optim.weight_decay, mask=decay_mask),
        optax.multi_transform({k: optax.scale(v) for k, v in multipliers.items()}, labels),
        optax.sgd(schedule, momentum=optim.momentum),
    )


def init(config, rng: jax.Array, *, init_from: TrainState | None = None) -> TrainState:
    """A fresh state; with ``init_from`` (trained single-task networks, fusion "none") every task
    column's parameters and batch statistics are copied from it (the paper's protocol, Sec. 3.3)."""
    model_key, state_key = jax.random.split(rng)
    model = build_model(config, nnx.Rngs(params=model_key))
    graphdef, params, rest = split_module(model)
    if init_from is not None:
        if "columns" not in params or "columns" not in init_from.params:
            raise ConfigError("initialising from single-task networks needs model.kind='multi_column'")
        src_p, src_s = init_from.params["columns"], init_from.model_state["columns"]
        if jax.tree.structure(src_p) != jax.tree.structure(params["columns"]):
            raise ConfigError("the single-task networks do not match this model's task columns")
        params = {**params, "columns": src_p}
        rest = {**rest, "columns": src_s}
    tx = make_optimizer(config.optim, params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=rest, opt_state=tx.init(params),
                      rng=state_key, graphdef=graphdef, tx=tx)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One SGD step on the summed task losses (Eq. (5)); BN statistics update; dropout keyed by the step."""

    def loss_fn(params):
        model = state.merge(params)
        outputs = model(batch["image"], train=True, rngs=nnx.Rngs(dropout=state.step_key()))
        losses = {t.name: task_loss(t.kind, o, batch[t.name]) for t, o in zip(model.tasks, outputs)}
        total = sum(t.loss_weight * losses[t.name] for t in model.tasks)
        return total, (module_state(model), losses)

    (loss, (model_state, losses)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, **{f"loss_{k}": v for k, v in losses.items()}, "grad_norm": optax.global_norm(grads)}
    return state.apply_gradients(grads, model_state), metrics


@jax.jit
def predict(state: TrainState, images: jax.Array) -> tuple[jax.Array, ...]:
    """The networks' outputs in inference mode (BN running statistics, no dropout)."""
    return state.merge()(images, train=False)


def evaluate(state: TrainState, data: dict[str, np.ndarray], batch_size: int = 256) -> dict[str, float]:
    """Test metrics over ``data`` (padded to whole batches so one compiled ``predict`` serves all)."""
    tasks = state.merge().tasks
    n = len(data["image"])
    logits = {t.name: [] for t in tasks}
    conf, angles = None, []
    for start in range(0, n, batch_size):
        chunk = data["image"][start:start + batch_size]
        m = len(chunk)
        if m < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - m, *chunk.shape[1:]), chunk.dtype)])
        outs = jax.device_get(predict(state, chunk))
        for t, o in zip(tasks, outs):
            o, target = o[:m], data[t.name][start:start + m]
            if t.kind == "classification":
                logits[t.name].append(o)
            elif t.kind == "segmentation":
                c = M.confusion(o.argmax(-1).ravel(), target.ravel(), t.num_outputs)
                conf = c if conf is None else conf + c
            else:
                angles.append(M.normal_angles(o, target))
    out = {}
    accs = []
    for t in tasks:
        if t.kind == "classification":
            accs.append(M.accuracy(np.concatenate(logits[t.name]), data[t.name]))
            out[f"{t.name}_accuracy"] = accs[-1]
    if accs:
        out["mean_accuracy"] = float(np.mean(accs))
    if conf is not None:
        out.update(M.segmentation_metrics(conf))
    if angles:
        out.update(M.normal_metrics(np.concatenate(angles)))
    return out
