"""Matching and the training losses of SPAFormer (official models/encoder_abs_each_layer.py; Sec. 3.4 of the paper).

Matching: geometrically equivalent parts are interchangeable, so before any loss or metric each prediction is
assigned to a ground-truth part of its own group by the Hungarian algorithm on the part chamfer distance between
the part placed by the predicted and by the true pose (official ``linear_assignment``, 100 points there). One
assignment over the whole [P, P] matrix with a prohibitive cost across groups is the same as one per group. It is
solved on the host by scipy's ``linear_sum_assignment`` through ``jax.pure_callback``, so the train step stays one
jitted function. (``optax.assignment.hungarian_algorithm`` does it in JAX, but with the batch sharded over 4
simulated CPU devices its data-dependent while loop deadlocked the devices' collectives.)

Losses, with the official weights (1 / 10 / 1), each averaged over real parts (shapes for the shape term):

* translation: squared L2 between predicted and true translations;
* rotation chamfer: chamfer between the part's points rotated by the predicted and by the true rotation (a
  symmetric part is not penalised for a rotation that maps it onto itself);
* shape chamfer: chamfer between the whole shape assembled with the predicted and with the true poses.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from jaxsuite.methods.spaformer import geometry


def match(pred: jax.Array, batch: dict, num_points: int) -> jax.Array:
    """The predictions reordered to ground-truth order [B, P, 7]: entry j is the prediction assigned to true part j
    (padded parts keep their own). No gradient flows through the assignment itself."""
    return reorder(pred, assignment(pred, batch, num_points))


def reorder(pred: jax.Array, order: jax.Array) -> jax.Array:
    return jnp.take_along_axis(pred, order[..., None], axis=1)


def assignment(pred: jax.Array, batch: dict, num_points: int) -> jax.Array:
    """[B, P]: the prediction assigned to each true part (Hungarian, within equivalence groups)."""
    pcs = batch["part_pcs"][..., :num_points, :]
    valid, geo = batch["part_valid"], batch["geo_ids"]
    placed_pred = geometry.transform(pcs, jax.lax.stop_gradient(pred))      # [B, P, n, 3]
    placed_true = geometry.transform(pcs, batch["part_poses"])
    cost = geometry.chamfer(placed_pred[:, :, None], placed_true[:, None, :])  # [B, P(pred), P(true)]
    p = valid.shape[1]
    same = (geo[:, :, None] == geo[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    pad_diag = ~valid[:, :, None] & ~valid[:, None, :] & jnp.eye(p, dtype=bool)
    # costs clipped to 1 and cross-group pairs at P + 1: no within-group assignment (total <= P) costs as much as
    # one cross-group pair
    cost = jnp.where(same, jnp.minimum(cost, 1.0), jnp.where(pad_diag, 0.0, p + 1.0))
    return jax.pure_callback(_assign_on_host, jax.ShapeDtypeStruct(cost.shape[:-1], jnp.int32), cost,
                             vmap_method="expand_dims")


def _assign_on_host(cost: np.ndarray) -> np.ndarray:
    """[..., P, P] costs (prediction, true part) -> [..., P]: the prediction assigned to each true part
    (scipy's linear_sum_assignment per matrix)."""
    cost = np.asarray(cost)
    out = np.empty(cost.shape[:-1], np.int32)
    for idx in np.ndindex(cost.shape[:-2]):
        rows, cols = linear_sum_assignment(cost[idx])
        out[idx + (cols,)] = rows
    return out

def _part_mean(x: jax.Array, valid: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(valid, x, 0.0)) / jnp.maximum(valid.sum(), 1)


def shape_chamfer(pred: jax.Array, batch: dict, num_points: int | None = None) -> jax.Array:
    """[B]: chamfer between the whole shapes assembled with ``pred`` and the true poses (real parts only)."""
    pcs = batch["part_pcs"][..., :num_points, :]
    b, p, n, _ = pcs.shape
    point_valid = jnp.repeat(batch["part_valid"], n, axis=1)
    a = geometry.transform(pcs, pred).reshape(b, p * n, 3)
    t = geometry.transform(pcs, batch["part_poses"]).reshape(b, p * n, 3)
    return geometry.chamfer(a, t, point_valid, point_valid)


def assembly_losses(matched: jax.Array, batch: dict, num_points: int) -> dict[str, jax.Array]:
    """The three terms for predictions already in ground-truth order."""
    valid, true = batch["part_valid"], batch["part_poses"]
    pcs = batch["part_pcs"][..., :num_points, :]
    trans = jnp.sum((matched[..., :3] - true[..., :3]) ** 2, -1)
    rot = geometry.chamfer(geometry.rotate(pcs, matched[..., 3:]), geometry.rotate(pcs, true[..., 3:]))
    return {"trans": _part_mean(trans, valid), "rot_cd": _part_mean(rot, valid),
            "shape_cd": jnp.mean(shape_chamfer(matched, batch, num_points))}


def total(terms: dict[str, jax.Array], weights: dict[str, float]) -> jax.Array:
    """The weighted sum (official weights: trans 1, rot_cd 10, shape_cd 1)."""
    return sum(weights[k] * terms[k] for k in ("trans", "rot_cd", "shape_cd"))
