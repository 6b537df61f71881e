"""``proc_furniture``: procedurally built furniture for 3D part assembly (a PartNet-Assembly stand-in).

Every shape is built from parts -- boxes, cylinders, frusta, spheres, and composites of them (a chair back of posts
and slats, a drawer front with its handle) -- placed in a y-up world. Each part's points are sampled on its
surface in its own frame, then put in a canonical frame as PartNet-Assembly's parts are: centred on their bounding
box and rotated so the extents decrease along x, y, z (a proper rotation). The ground-truth pose maps canonical
points back into the shape: ``world = R(q) p + t``.

* Geometric equivalence: parts of the same primitive with the same dimensions (the four legs of a table, a
  shelf's boards) form one group and share the very same canonical points, as interchangeable parts should.
* Contacts: for every pair of parts whose surfaces come within squared distance ``contact_sq_dist`` (1e-3, as
  PartNet-Assembly's preparation; after normalisation, on a denser sampling), the midpoint of their closest points,
  stored as PartNet-Assembly's ``contact_points`` [P, P, 4]: (flag, x, y, z) with entry [i, j] in part i's own
  canonical frame.
* Each shape is centred and scaled so its largest half-extent is 0.5.

Categories: chair, table, shelf, cabinet, lamp, bed, bench (2..20 parts) and stool, kept for the held-out
category. Deterministic given (category, seed, index); the generated arrays are cached under
$JAXSUITE_DATA/generated when that folder is writable.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from jaxsuite.data.cache import generated_dir

CATEGORIES = ("chair", "table", "shelf", "cabinet", "lamp", "bed", "bench", "stool")
PART_TYPES = ("leg", "seat", "back", "arm", "top", "stretcher", "board", "panel", "door", "drawer", "handle",
              "base", "pole", "shade", "bulb", "mattress", "pillow", "frame")
MAX_PARTS = 20
VERSION = 1  # bump when the generator changes: the cache key includes it


def rotation(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> unit quaternion (w, x, y, z) with w >= 0."""
    r = np.asarray(r, np.float64)
    tr = np.trace(r)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = np.zeros(4)
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + k] = (r[k, i] + r[i, k]) / s
    return q * (1.0 if q[0] >= 0 else -1.0) / np.linalg.norm(q)


# ---- primitives: (kind, params), centred at the origin of their local frame, cylinders along local y ----------

def _area(kind: str, p: tuple) -> float:
    if kind == "box":
        a, b, c = p
        return 8 * (a * b + b * c + a * c)
    if kind == "cyl":
        r, h = p
        return 2 * np.pi * r * 2 * h + 2 * np.pi * r * r
    if kind == "frustum":
        r0, r1, h = p
        slant = np.hypot(r1 - r0, 2 * h)
        return np.pi * (r0 + r1) * slant + np.pi * (r0 * r0 + r1 * r1)
    if kind == "sphere":
        return 4 * np.pi * p[0] ** 2
    raise ValueError(kind)


def _sample(kind: str, p: tuple, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "box":
        half = np.asarray(p)
        areas = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]] * 2)
        face = rng.choice(6, n, p=areas / areas.sum())
        pts = rng.uniform(-1, 1, (n, 3))
        axis = face % 3
        pts[np.arange(n), axis] = np.where(face < 3, 1.0, -1.0)
        return pts * half
    if kind in ("cyl", "frustum"):
        r0, r1, h = (p[0], p[0], p[1]) if kind == "cyl" else p
        side = np.pi * (r0 + r1) * np.hypot(r1 - r0, 2 * h)
        areas = np.array([side, np.pi * r0 * r0, np.pi * r1 * r1])
        where = rng.choice(3, n, p=areas / areas.sum())
        theta = rng.uniform(0, 2 * np.pi, n)
        # side: height fraction with density proportional to the radius there (inverse CDF of a linear density)
        u = rng.uniform(0, 1, n)
        if abs(r1 - r0) < 1e-9:
            t = u
        else:
            t = (np.sqrt(r0 * r0 + (r1 * r1 - r0 * r0) * u) - r0) / (r1 - r0)
        rad = np.where(where == 0, r0 + (r1 - r0) * t,
                       np.where(where == 1, r0, r1) * np.sqrt(rng.uniform(0, 1, n)))
        y = np.where(where == 0, -h + 2 * h * t, np.where(where == 1, -h, h))
        return np.stack([rad * np.cos(theta), y, rad * np.sin(theta)], -1)
    if kind == "sphere":
        v = rng.normal(size=(n, 3))
        return p[0] * v / np.linalg.norm(v, axis=-1, keepdims=True)
    raise ValueError(kind)


@dataclass
class Part:
    """One part: sub-primitives (kind, params, offset in the part's frame), placed by rotation ``rot`` at
    ``centre`` in the shape."""
    ptype: str
    prims: list
    rot: np.ndarray
    centre: np.ndarray
    key: tuple = field(init=False)

    def __post_init__(self):
        self.key = tuple((k, tuple(np.round(p, 6)), tuple(np.round(o, 6))) for k, p, o in self.prims)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        areas = np.array([_area(k, p) for k, p, _ in self.prims])
        counts = rng.multinomial(n, areas / areas.sum())
        return np.concatenate([_sample(k, p, c, rng) + np.asarray(o) for (k, p, o), c in zip(self.prims, counts)])


def part(ptype, kind, params, centre, rot=None, offset=(0, 0, 0)) -> Part:
    return Part(ptype, [(kind, tuple(float(x) for x in params), offset)], np.eye(3) if rot is None else rot,
                np.asarray(centre, float))


# ---- categories ------------------------------------------------------------------------------------------------

def _legs(ptype, w, d, height, thick, inset, round_legs, splay=0.0, count=4) -> list[Part]:
    """``count`` legs of ``height`` under a w x d footprint, optionally splayed outwards by ``splay`` radians."""
    out = []
    angles = [np.pi / 4 + k * 2 * np.pi / count for k in range(count)] if count != 4 else None
    for k in range(count):
        if count == 4:
            sx, sz = (1, 1, -1, -1)[k], (1, -1, 1, -1)[k]
            x, z = sx * (w / 2 - inset), sz * (d / 2 - inset)
        else:
            x, z = (w / 2 - inset) * np.cos(angles[k]), (d / 2 - inset) * np.sin(angles[k])
        rot = np.eye(3)
        if splay:
            # tilt the leg's bottom outwards: rotate about the horizontal axis perpendicular to its radial direction
            radial = np.array([x, 0.0, z]) / max(np.hypot(x, z), 1e-9)
            axis = np.cross(np.array([0.0, 1.0, 0.0]), radial)
            rot = _axis_angle(axis, -splay)
        # the leg's top stays at (x, height, z): centre = top - rot @ (0, h/2, 0)
        centre = np.array([x, height, z]) - rot @ np.array([0, height / 2 / np.cos(splay), 0])
        params = (thick / 2, height / 2 / np.cos(splay)) if round_legs else (thick / 2, height / 2 / np.cos(splay),
                                                                              thick / 2)
        out.append(part(ptype, "cyl" if round_legs else "box", params, centre, rot))
    return out


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def chair(rng) -> list[Part]:
    w, d, t, h = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.1), rng.uniform(0.06, 0.12), rng.uniform(0.8, 1.1)
    lt = rng.uniform(0.05, 0.1)
    parts = _legs("leg", w, d, h, lt, lt / 2, rng.random() < 0.3)
    parts.append(part("seat", "box", (w / 2, t / 2, d / 2), (0, h + t / 2, 0)))
    bh, bt, tilt = rng.uniform(0.8, 1.2), rng.uniform(0.05, 0.1), rng.uniform(0.0, 0.25)
    rot = rotation("x", -tilt)
    base = np.array([0, h + t, -d / 2 + bt / 2])
    if rng.random() < 0.4:  # a composite back: two posts, a top rail and slats, one part
        post = (bt / 2, bh / 2, bt / 2)
        n_slats = int(rng.integers(2, 5))
        prims = [("box", post, (-w / 2 + bt / 2, 0, 0)), ("box", post, (w / 2 - bt / 2, 0, 0)),
                 ("box", (w / 2, bt, bt / 2), (0, bh / 2 - bt, 0))]
        for k in range(n_slats):
            x = -w / 2 + (k + 1) * w / (n_slats + 1)
            prims.append(("box", (bt / 4, bh / 2 * 0.8, bt / 4), (x, -bh * 0.1, 0)))
        back = Part("back", prims, rot, base + rot @ np.array([0, bh / 2, 0]))
    else:
        back = part("back", "box", (w / 2, bh / 2, bt / 2), base + rot @ np.array([0, bh / 2, 0]), rot)
    parts.append(back)
    if rng.random() < 0.4:
        ah, at = rng.uniform(0.25, 0.35), rng.uniform(0.05, 0.08)
        for sx in (1, -1):
            x = sx * (w / 2 - at / 2)
            parts.append(part("arm", "box", (at / 2, at / 2, d * 0.4), (x, h + t + ah + at / 2, 0.05 * d)))
            parts.append(part("arm", "box", (at / 3, ah / 2, at / 3), (x, h + t + ah / 2, d * 0.3)))
    return parts


def table(rng) -> list[Part]:
    w, d, t, h = rng.uniform(1.2, 2.0), rng.uniform(0.7, 1.2), rng.uniform(0.05, 0.1), rng.uniform(0.9, 1.2)
    lt = rng.uniform(0.06, 0.12)
    round_top = rng.random() < 0.3
    if round_top:
        d = w = rng.uniform(1.0, 1.5)
        parts = [part("top", "cyl", (w / 2, t / 2), (0, h + t / 2, 0))]
        inset = w / 2 * (1 - 1 / np.sqrt(2)) + lt
    else:
        parts = [part("top", "box", (w / 2, t / 2, d / 2), (0, h + t / 2, 0))]
        inset = lt / 2 + rng.uniform(0.0, 0.1)
    parts += _legs("leg", w, d, h, lt, inset, rng.random() < 0.4)
    if rng.random() < 0.5:
        sy, st = rng.uniform(0.15, 0.4) * h, lt * 0.6
        lx, lz = w / 2 - inset, d / 2 - inset
        for sz in (1, -1):
            parts.append(part("stretcher", "box", (lx, st / 2, st / 2), (0, sy, sz * lz)))
        for sx in (1, -1):
            parts.append(part("stretcher", "box", (st / 2, st / 2, lz), (sx * lx, sy, 0)))
    return parts


def shelf(rng) -> list[Part]:
    w, h, d, t = rng.uniform(0.8, 1.4), rng.uniform(1.2, 2.2), rng.uniform(0.3, 0.5), rng.uniform(0.03, 0.06)
    parts = [part("panel", "box", (t / 2, h / 2, d / 2), (sx * (w / 2 - t / 2), h / 2, 0)) for sx in (1, -1)]
    boards = int(rng.integers(2, 7))
    for k in range(boards):
        y = t / 2 + k * (h - t) / (boards - 1)
        parts.append(part("board", "box", (w / 2 - t, t / 2, d / 2), (0, y, 0)))
    if rng.random() < 0.6:
        parts.append(part("panel", "box", (w / 2, h / 2, t / 4), (0, h / 2, -d / 2 - t / 4)))
    return parts


def cabinet(rng) -> list[Part]:
    legs = rng.random() < 0.5
    w, h, d, t = rng.uniform(0.8, 1.4), rng.uniform(0.8, 1.6), rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.05)
    y0 = rng.uniform(0.1, 0.2) if legs else 0.0
    parts = [part("panel", "box", (t / 2, h / 2, d / 2), (sx * (w / 2 - t / 2), y0 + h / 2, 0)) for sx in (1, -1)]
    parts += [part("board", "box", (w / 2 - t, t / 2, d / 2), (0, y, 0)) for y in (y0 + t / 2, y0 + h - t / 2)]
    parts.append(part("panel", "box", (w / 2, h / 2, t / 4), (0, y0 + h / 2, -d / 2 - t / 4)))
    handle = (("box", (0.06, 0.015, 0.015), (0, 0, t / 2 + 0.03)), ("box", (0.012, 0.012, 0.015), (-0.05, 0, t / 2 + 0.012)),
              ("box", (0.012, 0.012, 0.015), (0.05, 0, t / 2 + 0.012)))
    if rng.random() < 0.5:  # drawers: fronts and their handles (composite)
        n = int(rng.integers(2, 6 if legs else 8))
        dh = (h - 2 * t) / n
        for k in range(n):
            y = y0 + t + (k + 0.5) * dh
            parts.append(part("drawer", "box", (w / 2 - t, dh / 2 * 0.96, t / 2), (0, y, d / 2 + t / 2)))
            parts.append(Part("handle", list(handle), np.eye(3), np.array([0, y, d / 2 + t])))
    else:  # two doors with a handle each
        for sx in (1, -1):
            parts.append(part("door", "box", ((w / 2 - t) / 2 * 0.98, (h - 2 * t) / 2, t / 2),
                              (sx * (w / 2 - t) / 2, y0 + h / 2, d / 2 + t / 2)))
            parts.append(Part("handle", list(handle), rotation("z", np.pi / 2),
                              np.array([sx * 0.12, y0 + h / 2, d / 2 + t])))
    if legs:
        parts += _legs("leg", w, d, y0, 0.05, 0.05, rng.random() < 0.5)
    elif rng.random() < 0.5:
        parts.append(part("base", "box", (w / 2, 0.03, d / 2), (0, -0.03, 0)))
    return parts


def lamp(rng) -> list[Part]:
    br, bh = rng.uniform(0.2, 0.35), rng.uniform(0.02, 0.05)
    parts = [part("base", "cyl", (br, bh), (0, bh, 0))]
    r0, r1, sh = rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.22), rng.uniform(0.12, 0.2)
    if rng.random() < 0.5:  # floor lamp: a straight pole, the shade on top
        ph, pr = rng.uniform(1.0, 1.6), rng.uniform(0.02, 0.04)
        parts.append(part("pole", "cyl", (pr, ph / 2), (0, 2 * bh + ph / 2, 0)))
        top = 2 * bh + ph
        parts.append(part("shade", "frustum", (r0, r1, sh), (0, top + sh * 0.5, 0)))
        if rng.random() < 0.5:
            parts.append(part("bulb", "sphere", (min(r1, 0.1),), (0, top, 0)))
    else:  # desk lamp: two tilted arms, a tilted shade
        l1, l2, at = rng.uniform(0.5, 0.8), rng.uniform(0.4, 0.7), rng.uniform(0.03, 0.05)
        a1, a2 = rng.uniform(-0.5, 0.5), rng.uniform(0.6, 1.3)
        p0 = np.array([0, 2 * bh, 0])
        rot1 = rotation("z", a1)
        p1 = p0 + rot1 @ np.array([0, l1, 0])
        parts.append(part("arm", "box", (at / 2, l1 / 2, at / 2), (p0 + p1) / 2, rot1))
        rot2 = rotation("z", a2 * np.sign(a1 if a1 else 1.0))
        p2 = p1 + rot2 @ np.array([0, l2, 0])
        parts.append(part("arm", "box", (at / 2, l2 / 2, at / 2), (p1 + p2) / 2, rot2))
        rot3 = rot2 @ rotation("z", np.pi)  # the shade opens downwards along the arm
        parts.append(part("shade", "frustum", (r0 * 0.6, r1 * 0.6, sh), p2 + rot3 @ np.array([0, sh, 0]),
                          rot3))
    return parts


def bed(rng) -> list[Part]:
    w, d, fh, lh = rng.uniform(1.2, 2.0), rng.uniform(1.9, 2.4), rng.uniform(0.15, 0.25), rng.uniform(0.1, 0.25)
    parts = [part("frame", "box", (w / 2, fh / 2, d / 2), (0, lh + fh / 2, 0))]
    mh = rng.uniform(0.15, 0.25)
    parts.append(part("mattress", "box", (w / 2 * 0.96, mh / 2, d / 2 * 0.96), (0, lh + fh + mh / 2, 0)))
    hh, ht = rng.uniform(0.6, 1.0), rng.uniform(0.05, 0.1)
    parts.append(part("panel", "box", (w / 2, hh / 2, ht / 2), (0, hh / 2, -d / 2 - ht / 2)))
    if rng.random() < 0.5:
        fb = rng.uniform(0.4, 0.6)
        parts.append(part("panel", "box", (w / 2, fb / 2, ht / 2), (0, fb / 2, d / 2 + ht / 2)))
    parts += _legs("leg", w, d, lh, 0.08, 0.05, rng.random() < 0.5)
    pillows = int(rng.integers(0, 3))
    for k in range(pillows):
        x = 0.0 if pillows == 1 else (k - 0.5) * w / 2
        parts.append(part("pillow", "box", (w / 4.5, 0.05, 0.15), (x, lh + fh + mh + 0.05, -d / 2 + 0.25)))
    return parts


def bench(rng) -> list[Part]:
    w, d, t, h = rng.uniform(1.6, 2.4), rng.uniform(0.4, 0.6), rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.5)
    parts = [part("seat", "box", (w / 2, t / 2, d / 2), (0, h + t / 2, 0))]
    if rng.random() < 0.5:
        parts += _legs("leg", w, d, h, rng.uniform(0.05, 0.09), 0.1, rng.random() < 0.3)
    else:  # two panel legs
        pt = rng.uniform(0.04, 0.08)
        parts += [part("leg", "box", (pt / 2, h / 2, d / 2 * 0.9), (sx * (w / 2 - 0.15), h / 2, 0)) for sx in (1, -1)]
    if rng.random() < 0.5:
        bh, bt = rng.uniform(0.3, 0.5), 0.05
        parts.append(part("back", "box", (w / 2, bh / 2 * 0.5, bt / 2), (0, h + t + bh * 0.75, -d / 2 + bt / 2)))
        parts += [part("back", "box", (bt / 2, bh / 2, bt / 2), (sx * (w / 2 - 0.2), h + t + bh / 2, -d / 2 - bt / 2))
                  for sx in (1, -1)]
    return parts


def stool(rng) -> list[Part]:
    h, sr, t = rng.uniform(0.5, 0.8), rng.uniform(0.18, 0.28), rng.uniform(0.04, 0.08)
    square = rng.random() < 0.3
    parts = [part("seat", "box", (sr, t / 2, sr), (0, h + t / 2, 0)) if square
             else part("seat", "cyl", (sr, t / 2), (0, h + t / 2, 0))]
    count = 4 if square else int(rng.integers(3, 5))
    splay = rng.uniform(0.0, 0.15) if rng.random() < 0.5 else 0.0
    legs = _legs("leg", 2 * sr, 2 * sr, h, rng.uniform(0.03, 0.05), 0.05, True, splay, count)
    parts += legs
    if rng.random() < 0.5:  # a footrest ring of rungs between neighbouring legs
        y = rng.uniform(0.2, 0.35) * h
        foot = [leg.centre + leg.rot @ np.array([0, (y - leg.centre[1]) / leg.rot[1, 1], 0]) for leg in legs]
        for k in range(count):
            a, b = foot[k], foot[(k + 1) % count] if count != 4 else foot[[1, 3, 0, 2][k]]
            v = b - a
            length = np.linalg.norm(v)
            yaw = np.arctan2(v[0], v[2])
            parts.append(part("stretcher", "box", (0.012, 0.012, length / 2), (a + b) / 2, rotation("y", yaw)))
    return parts


BUILDERS = {"chair": chair, "table": table, "shelf": shelf, "cabinet": cabinet, "lamp": lamp, "bed": bed,
            "bench": bench, "stool": stool}


# ---- from parts to arrays ----------------------------------------------------------------------------------------

def _canonical_rotation(points: np.ndarray) -> np.ndarray:
    """The signed axis permutation (det +1) that sorts the bounding-box extents in decreasing order."""
    extent = points.max(0) - points.min(0)
    order = np.argsort(-extent, kind="stable")
    perm = np.zeros((3, 3))
    perm[np.arange(3), order] = 1.0
    if np.linalg.det(perm) < 0:
        perm[2] *= -1
    return perm


def build_shape(parts: list[Part], num_points: int, rng: np.random.Generator, contact_sq_dist: float = 1e-3,
                contact_samples: int = 1500) -> dict:
    """Arrays of one shape (unpadded): part_pcs [P, N, 3] canonical, part_poses [P, 7], geo_ids [P], part_types [P],
    contact [P, P, 4]."""
    groups: dict[tuple, int] = {}
    canon, rots, centres, geo = [], [], [], []
    samples: dict[tuple, tuple] = {}
    for p in parts:
        if p.key not in samples:  # one point set per geometry: equivalent parts share it exactly
            local = p.sample(num_points, rng)
            mid = (local.max(0) + local.min(0)) / 2
            perm = _canonical_rotation(local)
            samples[p.key] = ((local - mid) @ perm.T, mid, perm)
        pts, mid, perm = samples[p.key]
        groups.setdefault(p.key, len(groups))
        canon.append(pts)
        rots.append(p.rot @ perm.T)
        centres.append(p.rot @ mid + p.centre)
        geo.append(groups[p.key])
    canon, rots, centres = np.stack(canon), np.stack(rots), np.stack(centres)
    world = np.einsum("pij,pnj->pni", rots, canon) + centres[:, None]
    lo, hi = world.reshape(-1, 3).min(0), world.reshape(-1, 3).max(0)
    shift, scale = (lo + hi) / 2, 0.5 / ((hi - lo).max() / 2)
    canon, centres, world = canon * scale, (centres - shift) * scale, (world - shift) * scale
    # contacts from a denser sampling of the placed parts (contact_samples points each, same normalisation)
    dense = [(p.sample(contact_samples, rng) @ p.rot.T + p.centre - shift) * scale for p in parts]
    count = len(parts)
    contact = np.zeros((count, count, 4))
    trees = [cKDTree(w) for w in dense]
    tol = np.sqrt(contact_sq_dist)
    lo = np.stack([d.min(0) for d in dense]) - tol
    hi = np.stack([d.max(0) for d in dense]) + tol
    for i in range(count):
        for j in range(i + 1, count):
            if np.any(lo[i] > hi[j]) or np.any(lo[j] > hi[i]):  # bounding boxes apart: no contact possible
                continue
            dist, idx = trees[j].query(dense[i], distance_upper_bound=tol)
            if np.isfinite(dist).any():
                k = int(np.argmin(dist))
                point = (dense[i][k] + dense[j][idx[k]]) / 2
                # as PartNet-Assembly: the contact point in each part's own (canonical) frame
                contact[i, j] = (1.0, *(rots[i].T @ (point - centres[i])))
                contact[j, i] = (1.0, *(rots[j].T @ (point - centres[j])))
    poses = np.concatenate([centres, np.stack([matrix_to_quat(r) for r in rots])], -1)
    return {"part_pcs": canon.astype(np.float32), "part_poses": poses.astype(np.float32),
            "geo_ids": np.asarray(geo, np.int32),
            "part_types": np.asarray([PART_TYPES.index(p.ptype) for p in parts], np.int32),
            "contact": contact.astype(np.float32)}


def pad(shapes: list[dict], max_parts: int = MAX_PARTS) -> dict[str, np.ndarray]:
    """Stack shapes, padding the part axis to ``max_parts`` (``part_valid`` marks real parts; geo_ids -1 there)."""
    n, pts = len(shapes), shapes[0]["part_pcs"].shape[1]
    out = {"part_pcs": np.zeros((n, max_parts, pts, 3), np.float32),
           "part_poses": np.tile(np.asarray([0, 0, 0, 1, 0, 0, 0], np.float32), (n, max_parts, 1)),
           "geo_ids": np.full((n, max_parts), -1, np.int32), "part_types": np.full((n, max_parts), -1, np.int32),
           "contact": np.zeros((n, max_parts, max_parts, 4), np.float32),
           "part_valid": np.zeros((n, max_parts), bool)}
    for s, shape in enumerate(shapes):
        p = len(shape["geo_ids"])
        if p > max_parts:
            raise ValueError(f"a shape has {p} parts, more than max_parts={max_parts}")
        for k in ("part_pcs", "part_poses", "geo_ids", "part_types"):
            out[k][s, :p] = shape[k]
        out["contact"][s, :p, :p] = shape["contact"]
        out["part_valid"][s, :p] = True
    return out


def generate(category: str, count: int, seed: int, num_points: int, max_parts: int = MAX_PARTS) -> dict:
    """``count`` shapes of ``category`` (shape k drawn from the generator seeded by (seed, category, k))."""
    if category not in BUILDERS:
        raise ValueError(f"unknown proc_furniture category {category!r} (known: {', '.join(CATEGORIES)})")
    cat = CATEGORIES.index(category)
    shapes = []
    for k in range(count):
        rng = np.random.default_rng([seed, cat, k])
        shapes.append(build_shape(BUILDERS[category](rng), num_points, rng))
    out = pad(shapes, max_parts)
    out["category"] = np.full(count, cat, np.int32)
    return out


def cached(category: str, count: int, seed: int, num_points: int, max_parts: int = MAX_PARTS) -> dict:
    """:func:`generate`, cached as .npz under $JAXSUITE_DATA/generated (when writable)."""
    spec = json.dumps([VERSION, category, count, seed, num_points, max_parts])
    folder = generated_dir()
    path = folder / f"proc_furniture_{hashlib.sha256(spec.encode()).hexdigest()[:16]}.npz" if folder else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return dict(z)
    data = generate(category, count, seed, num_points, max_parts)
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **data)
        tmp.replace(path)
    return data
