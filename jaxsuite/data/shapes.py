"""``shapes_dense``: procedurally ray-cast scenes standing in for NYUv2's two dense tasks.

Each scene: a floor (y = -1), a back wall (slightly turned), and 1-4 objects resting on the floor:
spheres, boxes turned about the vertical axis, and vertical cylinders. A pinhole camera at the
origin looks down +z. Per pixel we record the class of the nearest surface (floor, wall, sphere,
box, cylinder) and its unit normal in camera coordinates; the RGB image is Lambert-shaded with a
random light and random albedos (colour does not give the class away), plus a little noise.
Deterministic given the seed; cached under $JAXSUITE_DATA/generated/ when that is writable.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from jaxsuite.data.cache import generated_dir

CLASSES = ("floor", "wall", "sphere", "box", "cylinder")
INF = np.float32(np.inf)


def _rays(size: int, fov_deg: float = 60.0) -> np.ndarray:
    f = 0.5 / np.tan(np.deg2rad(fov_deg) / 2)
    c = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(c, -c)
    d = np.stack([x, y, np.full_like(x, f)], -1).reshape(-1, 3)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _plane(d, normal, offset):
    """Plane {p: n.p = offset} seen from the origin: (t, normal facing the camera)."""
    denom = d @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(denom) > 1e-9, offset / denom, INF)
    t = np.where(t > 1e-6, t, INF)
    n = np.broadcast_to(normal if offset < 0 else -normal, d.shape)
    return t, n


def _sphere(d, center, radius):
    b = d @ center
    disc = b * b - (center @ center - radius * radius)
    t = np.where(disc >= 0, b - np.sqrt(np.maximum(disc, 0)), INF)
    t = np.where(t > 1e-6, t, INF)
    n = (t[:, None] * d - center) / radius
    return t, n


def _rot_y(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _box(d, center, half, theta):
    R = _rot_y(theta)
    o = R.T @ (-center)
    dl = d @ R  # ray directions in the box frame
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / dl, (half - o) / dl
    tnear, tfar = np.minimum(t1, t2), np.maximum(t1, t2)
    tmin, tmax = tnear.max(-1), tfar.min(-1)
    hit = (tmax >= tmin) & (tmin > 1e-6)
    axis = tnear.argmax(-1)
    nl = np.zeros_like(dl)
    nl[np.arange(len(d)), axis] = -np.sign(dl[np.arange(len(d)), axis])
    return np.where(hit, tmin, INF), nl @ R.T


def _cylinder(d, cx, cz, radius, y0, y1):
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = -2 * (d[:, 0] * cx + d[:, 2] * cz)
    c = cx * cx + cz * cz - radius * radius
    disc = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    y = ts * d[:, 1]
    ts = np.where((disc >= 0) & (ts > 1e-6) & (y >= y0) & (y <= y1), ts, INF)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = np.where(np.abs(d[:, 1]) > 1e-9, y1 / d[:, 1], INF)
    px, pz = tc * d[:, 0], tc * d[:, 2]
    tc = np.where((tc > 1e-6) & ((px - cx) ** 2 + (pz - cz) ** 2 <= radius * radius), tc, INF)
    p = ts[:, None] * d
    n_side = np.stack([(p[:, 0] - cx) / radius, np.zeros_like(ts), (p[:, 2] - cz) / radius], -1)
    n_cap = np.broadcast_to(np.array([0.0, 1.0, 0.0]), d.shape)
    use_cap = tc < ts
    return np.minimum(ts, tc), np.where(use_cap[:, None], n_cap, n_side)


def render_scene(rng: np.random.Generator, size: int = 64, noise: float = 0.02):
    """One scene: (rgb float32 [S,S,3] in [0,1], class int32 [S,S], normals float32 [S,S,3])."""
    d = _rays(size)
    surfaces = [(0, *_plane(d, np.array([0.0, 1.0, 0.0]), -1.0))]
    wall_turn = rng.uniform(-0.35, 0.35)
    wall_normal = np.array([np.sin(wall_turn), 0.0, np.cos(wall_turn)])
    surfaces.append((1, *_plane(d, wall_normal, rng.uniform(7.0, 9.0))))
    for _ in range(rng.integers(1, 5)):
        kind = rng.integers(2, 5)
        x, z, size_ = rng.uniform(-2.2, 2.2), rng.uniform(3.5, 6.5), rng.uniform(0.45, 1.0)
        if kind == 2:
            hit = _sphere(d, np.array([x, -1.0 + size_, z]), size_)
        elif kind == 3:
            half = np.array([size_, rng.uniform(0.4, 1.2), rng.uniform(0.4, 1.0)])
            hit = _box(d, np.array([x, -1.0 + half[1], z]), half, rng.uniform(0, np.pi))
        else:
            hit = _cylinder(d, x, z, size_ * 0.7, -1.0, -1.0 + rng.uniform(0.6, 2.2))
        surfaces.append((kind, *hit))
    ts = np.stack([s[1] for s in surfaces])
    nearest = ts.argmin(0)
    idx = np.arange(len(d))
    normals = np.stack([s[2] for s in surfaces])[nearest, idx]
    normals = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
    classes = np.array([s[0] for s in surfaces])[nearest]
    albedo = rng.uniform(0.15, 1.0, (len(surfaces), 3))[nearest]
    light = rng.normal(size=3) * np.array([1.0, 0.5, 1.0]) + np.array([0.0, 1.5, -1.0])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.clip(normals @ light, 0, None)
    rgb = np.clip(albedo * shade[:, None] + rng.normal(0, noise, (len(d), 3)), 0, 1)
    shape = (size, size)
    return (rgb.reshape(*shape, 3).astype(np.float32), classes.reshape(shape).astype(np.int32),
            normals.reshape(*shape, 3).astype(np.float32))


def _render_many(n: int, seed: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    scenes = [render_scene(rng, size) for _ in range(n)]
    return {"image": np.stack([s[0] for s in scenes]), "segmentation": np.stack([s[1] for s in scenes]),
            "normals": np.stack([s[2] for s in scenes])}


def shapes_dense(n_train: int = 2000, n_test: int = 500, *, size: int = 64, seed: int = 0):
    """Train/test splits drawn from disjoint seeds; cached as .npz when $JAXSUITE_DATA is writable."""
    key = hashlib.sha256(json.dumps([n_train, n_test, size, seed, 1]).encode()).hexdigest()[:16]
    folder = generated_dir()
    path = folder / f"shapes_dense_{key}.npz" if folder else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return {split: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(split + "/")}
                    for split in ("train", "test")}
    data = {"train": _render_many(n_train, seed * 2, size), "test": _render_many(n_test, seed * 2 + 1, size)}
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **{f"{s}/{k}": v for s, d in data.items() for k, v in d.items()})
        tmp.replace(path)
    return data
