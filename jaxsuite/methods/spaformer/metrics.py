"""The official test script's metrics (test_paper.py / encoder_abs_each_layer.py), per shape, on matched poses.

* part accuracy (PA): a real part is correct when the chamfer distance between it placed by the predicted and by
  the true pose is below ``pa_threshold`` (0.01); PA = correct parts / real parts over the whole set;
* success rate (SR): the fraction of shapes whose every part is correct;
* shape chamfer (SCD): chamfer between the whole predicted and true assemblies, averaged over shapes. Fixed quirk:
  the official code includes padded parts (at the origin in both) and divides by the padded point count, so a shape
  with fewer parts gets a smaller SCD; here only real parts' points count;
* connectivity accuracy (CA): for every ordered pair (i, j) of parts in contact, the contact point (given in each
  part's own frame) is placed by part i's and by part j's predicted pose; the pair is connected when the squared
  distance is below ``ca_threshold`` (0.01), taking the smallest over the point's 8 sign flips in part i's frame
  (the official code means these flips for symmetric parts; its in-place flipping reaches only 5 of them).
  CA = connected pairs / contact pairs over the whole set.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsuite.methods.spaformer import geometry
from jaxsuite.methods.spaformer.losses import shape_chamfer

FLIPS = np.asarray(list(itertools.product((1.0, -1.0), repeat=3)), np.float32)  # [8, 3]


def per_shape(matched: jax.Array, batch: dict, *, pa_threshold: float = 0.01,
              ca_threshold: float = 0.01) -> dict[str, jax.Array]:
    """Counts and sums per shape [B]: parts, correct_parts, contacts, connected, shape_cd."""
    valid, pcs = batch["part_valid"], batch["part_pcs"]
    part_cd = geometry.chamfer(geometry.transform(pcs, matched), geometry.transform(pcs, batch["part_poses"]))
    correct = (part_cd < pa_threshold) & valid
    contact = batch["contact"]                                     # [B, P, P, 4]
    flag = (contact[..., 0] > 0) & valid[:, :, None] & valid[:, None, :]
    local_i = contact[..., 1:][:, :, :, None, :] * FLIPS           # [B, P(i), P(j), 8, 3] in part i's frame
    local_j = jnp.swapaxes(contact[..., 1:], 1, 2)                 # [B, P(i), P(j), 3]: entry [j, i], j's frame
    b, p = valid.shape
    pose_i = jnp.broadcast_to(matched[:, :, None, :], (b, p, p, 7))
    pose_j = jnp.broadcast_to(matched[:, None, :, :], (b, p, p, 7))
    world_i = geometry.transform(local_i, pose_i)                  # [B, P, P, 8, 3]
    world_j = geometry.transform(local_j[..., None, :], pose_j)    # [B, P, P, 1, 3]
    dist = jnp.min(jnp.sum((world_i - world_j) ** 2, -1), -1)
    connected = flag & (dist < ca_threshold)
    return {"parts": valid.sum(-1), "correct_parts": correct.sum(-1), "all_correct": correct.sum(-1) == valid.sum(-1),
            "contacts": flag.sum((1, 2)), "connected": connected.sum((1, 2)),
            "shape_cd": shape_chamfer(matched, batch)}


def summarise(rows: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """PA, CA, SCD, SR over the shapes selected by ``mask`` (all by default) from :func:`per_shape` outputs."""
    sel = np.ones(len(rows["parts"]), bool) if mask is None else np.asarray(mask)
    if not sel.any():
        return {}

    def total(key):
        return float(np.sum(rows[key][sel]))

    return {"part_accuracy": total("correct_parts") / max(total("parts"), 1.0),
            "connectivity_accuracy": total("connected") / max(total("contacts"), 1.0),
            "shape_chamfer": float(np.mean(rows["shape_cd"][sel])),
            "success_rate": float(np.mean(rows["all_correct"][sel]))}
