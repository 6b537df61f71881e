"""Poses and point-cloud distances for part assembly (jnp; every function batches over leading axes).

A pose is 7 numbers: translation (x, y, z) then a unit quaternion (w, x, y, z), the layout of PartNet-Assembly's
``part_poses``; a part's canonical points p are placed at ``R(q) p + t``.

Chamfer distance, as in the official code (Generative-3D-Part-Assembly / SPAFormer): the mean over one set's
points of the squared distance to the nearest point of the other set, summed over both directions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

IDENTITY_POSE = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)  # no translation, the identity rotation


def quat_to_matrix(q: jax.Array) -> jax.Array:
    """[..., 4] (w, x, y, z), any norm -> [..., 3, 3] rotation of the normalised quaternion."""
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = jnp.moveaxis(q, -1, 0)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return jnp.stack(rows, -1).reshape(q.shape[:-1] + (3, 3))


def transform(points: jax.Array, pose: jax.Array) -> jax.Array:
    """points [..., N, 3] in the part's frame, pose [..., 7] -> [..., N, 3] placed."""
    return rotate(points, pose[..., 3:]) + pose[..., None, :3]


def rotate(points: jax.Array, quat: jax.Array) -> jax.Array:
    """points [..., N, 3] rotated by quat [..., 4] (no translation)."""
    return jnp.einsum("...ij,...nj->...ni", quat_to_matrix(quat), points)


def inverse_transform(points: jax.Array, pose: jax.Array) -> jax.Array:
    """World points [..., N, 3] -> the part frame of ``pose`` (R^T (x - t))."""
    r = quat_to_matrix(pose[..., 3:])
    return jnp.einsum("...ji,...nj->...ni", r, points - pose[..., None, :3])


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """[..., N, 3], [..., M, 3] -> [..., N, M] (one fused pass per coordinate: no [N, M, 3] intermediate)."""
    return sum((a[..., :, None, k] - b[..., None, :, k]) ** 2 for k in range(3))


def _masked_mean(x: jax.Array, valid: jax.Array | None) -> jax.Array:
    if valid is None:
        return x.mean(-1)
    return jnp.sum(jnp.where(valid, x, 0.0), -1) / jnp.maximum(valid.sum(-1), 1)


def chamfer(a: jax.Array, b: jax.Array, a_valid: jax.Array | None = None,
            b_valid: jax.Array | None = None) -> jax.Array:
    """Chamfer distance [...] between point sets a [..., N, 3] and b [..., M, 3]; ``*_valid`` [..., N] / [..., M]
    mark real points (padding is neither a nearest neighbour nor averaged over).

    The nearest neighbours are found without gradient, then the distances to them recomputed: the same value and
    (sub)gradient as differentiating through the min, without a backward pass over the [N, M] matrix."""
    d = squared_distances(jax.lax.stop_gradient(a), jax.lax.stop_gradient(b))
    if b_valid is not None:
        d = jnp.where(b_valid[..., None, :], d, jnp.inf)
    if a_valid is not None:
        d = jnp.where(a_valid[..., :, None], d, jnp.inf)
    batch = d.shape[:-2]
    a, b = jnp.broadcast_to(a, batch + a.shape[-2:]), jnp.broadcast_to(b, batch + b.shape[-2:])
    near_b = jnp.take_along_axis(b, d.argmin(-1)[..., None], axis=-2)  # [..., N, 3]
    near_a = jnp.take_along_axis(a, d.argmin(-2)[..., None], axis=-2)  # [..., M, 3]
    return (_masked_mean(jnp.sum((a - near_b) ** 2, -1), a_valid)
            + _masked_mean(jnp.sum((b - near_a) ** 2, -1), b_valid))
