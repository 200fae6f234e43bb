"""Analytic ray-primitive intersection, vectorised over pixels.

Every primitive answers two questions for a bundle of rays ``o + t * d`` (world frame,
metres): `distance` gives the ray parameter t of the first hit (inf = miss) and `surface`
gives the surface data of chosen rays. The ray parameter is preserved by the affine maps
used below, so t stays the depth when d has optical z = 1 (see camera.py).

Rays come in two forms: primary rays share one origin (three Python floats) and differ in
direction (three float32 arrays); shadow rays differ in origin (arrays) and share one
direction (floats). The formulas broadcast, so both forms go through the same code.

Primitives: `Box` (any rotation; `inside=True` makes a room seen from within),
`Ellipsoid`, `Cylinder` (capped, any axis), `Convex` (intersection of half-spaces: wedges,
cabins, roofs), `Capsule` (limbs). `Part` bundles a primitive's class label and material.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

NEAR_M = 0.02          # hits closer than this to the ray origin are ignored
Vec3 = tuple            # three floats or three arrays of one shape


class Hit:
    """Surface data of M rays, each array (M,) float32 unless noted.

    px, py, pz: world point (metres). normal: (M, 3) unit world normal facing the ray.
    local: (M, 3) point in the primitive's own frame (metres from its centre, its own axes;
    for boxes +z is the box's up axis). face: (M,) int8, boxes 0..5 = -x, +x, -y, +y, -z, +z
    faces, cylinders 0 side, 4 bottom cap, 5 top cap, convex shapes the plane index, else 0.
    footprint: (M,) metres one pixel covers there (computed on first use, for textures).
    """
    __slots__ = ('px', 'py', 'pz', 'normal', 'local', 'face', '_footprint', 'footprint_fn',
                 '_memo')

    def __init__(self, px, py, pz, normal, local, face):
        self.px, self.py, self.pz = px, py, pz
        self.normal, self.local, self.face = normal, local, face
        self._footprint = None
        self.footprint_fn: Callable[[], np.ndarray] | None = None
        self._memo: dict = {}

    def memo(self, key, compute: Callable[['Hit'], object]):
        """compute(self), once per key: lets albedo, gloss and emission of one material share
        their masks."""
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]

    @property
    def footprint(self) -> np.ndarray | None:
        if self._footprint is None and self.footprint_fn is not None:
            self._footprint = self.footprint_fn()
        return self._footprint


ColorFn = Callable[[Hit], np.ndarray]
Color = Union[np.ndarray, ColorFn]


@dataclass
class Material:
    """How a surface looks. albedo: (3,) RGB in [0, 1] or a function of the Hit returning
    (M, 3). gloss: mirror reflection weight in [0, 1] (float, or function -> (M,)).
    emission: None, (3,) or function -> (M, 3), linear radiance added after lighting."""
    albedo: Color
    gloss: float | Callable[[Hit], np.ndarray] = 0.0
    emission: Color | None = None

    def evaluate(self, hit: Hit):
        """(albedo (3,) or (M, 3), gloss float or (M,), emission None, (3,) or (M, 3))."""
        albedo = self.albedo(hit) if callable(self.albedo) else self.albedo
        gloss = self.gloss(hit) if callable(self.gloss) else self.gloss
        emission = self.emission(hit) if callable(self.emission) else self.emission
        return albedo, gloss, emission


def _combine(matrix: list[list[float]], vector: Vec3) -> Vec3:
    """matrix (3x3 nested floats) times a 3-vector of floats or arrays, skipping zeros."""
    out = []
    for row in matrix:
        total = None
        for coefficient, component in zip(row, vector):
            if coefficient == 0.0:
                continue
            term = component * coefficient if coefficient != 1.0 else component
            total = term if total is None else total + term
        out.append(0.0 if total is None else total)
    return tuple(out)


def _shift(origin: Vec3, center: np.ndarray) -> Vec3:
    return tuple(o - float(c) for o, c in zip(origin, center))


def _select(value, index):
    """value[index] for an array, the value itself for a float (shared by all rays)."""
    return value[index] if isinstance(value, np.ndarray) else value


def _point(origin: Vec3, direction: Vec3, t: np.ndarray, index) -> tuple:
    return tuple(_select(o, index) + t * _select(d, index) for o, d in zip(origin, direction))


def _cross(a, b) -> list[float]:
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def rotation_from_axis(axis) -> np.ndarray:
    """(3, 3) rotation whose third column is the unit vector along `axis`."""
    ax, ay, az = (float(value) for value in axis)
    norm = math.sqrt(ax * ax + ay * ay + az * az)
    z = [ax / norm, ay / norm, az / norm]
    helper = [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0]
    x = _cross(helper, z)
    norm = math.sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2])
    x = [value / norm for value in x]
    y = _cross(z, x)
    return np.array([[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]])


def yaw_rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(3, 3) local-to-world rotation: roll about local y (forward), pitch about local x,
    then yaw about Z; radians."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    if not pitch and not roll:
        return np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    yaw_m = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    roll_m = np.array([[cr, 0, sr], [0, 1, 0], [-sr, 0, cr]])
    return yaw_m @ pitch_m @ roll_m


class Primitive:
    """Base: `center` (3,) and `rotation` (3, 3, local-to-world) place the local frame."""
    center: np.ndarray
    rotation: np.ndarray

    def _frame(self, rotation: np.ndarray, center) -> None:
        self.center = np.asarray(center, float)
        self.rotation = np.asarray(rotation, float)
        self._to_local = self.rotation.T.tolist()
        self._rotation32 = self.rotation.astype(np.float32)

    def _local_points(self, point: tuple) -> np.ndarray:
        rel = np.stack([p - np.float32(c) for p, c in zip(point, self.center)], axis=1)
        return rel @ self._rotation32

    _bounds: np.ndarray | None = None

    def bounds(self) -> np.ndarray:
        """(8, 3) world corners of a box enclosing the primitive (computed once)."""
        if self._bounds is None:
            self._bounds = self._compute_bounds()
        return self._bounds

    def _compute_bounds(self) -> np.ndarray:
        raise NotImplementedError

    def distance(self, origin: Vec3, direction: Vec3) -> tuple[np.ndarray, object]:
        """(t, state): t of the first hit per ray (inf = miss) and data for `surface`."""
        raise NotImplementedError

    def surface(self, state, index, origin: Vec3, direction: Vec3, t: np.ndarray) -> Hit:
        """Hit of the rays `index` (a numpy index into the ray arrays) at parameters t."""
        raise NotImplementedError


class _Scaled(Primitive):
    """A unit shape (cube, sphere, cylinder of radius 1 and |z| <= 1) scaled by `half`."""

    def __init__(self, center, half, rotation=None):
        rotation = np.eye(3) if rotation is None else rotation
        self._frame(rotation, center)
        self.half = np.asarray(half, float)
        to_unit = (self.rotation / self.half).T            # diag(1 / half) @ R^T
        self._to_unit = to_unit.tolist()
        self._half32 = self.half.astype(np.float32)

    def _compute_bounds(self) -> np.ndarray:
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return (signs * self.half) @ self.rotation.T + self.center

    def _unit_ray(self, origin: Vec3, direction: Vec3) -> tuple[Vec3, Vec3]:
        return (_combine(self._to_unit, _shift(origin, self.center)),
                _combine(self._to_unit, direction))

    def _unit_point(self, ray: tuple[Vec3, Vec3], index, t: np.ndarray) -> np.ndarray:
        """(M, 3) hit points of rays `index` at parameters t, in the unit shape's frame."""
        o, d = ray
        return np.stack([_select(oc, index) + t * _select(dc, index) for oc, dc in zip(o, d)],
                        axis=1)

    def _world_normal(self, unit_normal: np.ndarray) -> np.ndarray:
        """(M, 3) unit-shape normals -> unit world normals (inverse transpose of the scale)."""
        normal = (unit_normal / self._half32) @ self._rotation32.T
        return normal / np.sqrt((normal * normal).sum(axis=1, keepdims=True))


class Box(_Scaled):
    """Box of half extents `half` (metres, local x, y, z) at `center`, turned by `rotation`.

    inside=True: the camera is inside and sees the walls from within (rooms, halls).
    cutout: optional function (local (M, 3) metres, face (M,)) -> keep (M,) bool; rays whose
    hit is not kept pass through the whole box (thin panels: fences, railings, grilles).
    """

    def __init__(self, center, half, rotation=None, inside: bool = False,
                 cutout: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        super().__init__(center, half, rotation)
        self.inside = inside
        self.cutout = cutout
        self._axes32 = self._rotation32.T.copy()   # row i: world direction of local axis i

    def distance(self, origin, direction):
        ray = self._unit_ray(origin, direction)
        o, d = ray
        with np.errstate(divide='ignore', invalid='ignore'):
            for axis in range(3):
                inverse = 1.0 / d[axis]
                t1 = (-1.0 - o[axis]) * inverse
                t2 = (1.0 - o[axis]) * inverse
                low, high = np.minimum(t1, t2), np.maximum(t1, t2)
                if axis == 0:
                    t_near, t_far = low, high
                    hit_axis = np.zeros(np.shape(low), np.int8)
                    continue
                if self.inside:
                    hit_axis[high < t_far] = axis
                else:
                    hit_axis[low > t_near] = axis
                t_near = np.maximum(t_near, low)
                t_far = np.minimum(t_far, high)
        if self.inside:
            t = np.where((t_near < NEAR_M) & (t_far > NEAR_M), t_far, np.inf)
        else:
            t = np.where((t_near <= t_far) & (t_near > NEAR_M), t_near, np.inf)
        state = (hit_axis, ray)
        if self.cutout is not None:
            hit = np.nonzero(t < np.inf)
            if hit[0].size:
                local, face, _ = self._faces(state, hit, t[hit])
                t[tuple(h[~self.cutout(local, face)] for h in hit)] = np.inf
        return t, state

    def _faces(self, state, index, t):
        """(local (M, 3) metres, face (M,), axis (M,)) of the rays `index` hit at t."""
        hit_axis, ray = state
        axis = hit_axis[index]
        unit = self._unit_point(ray, index, t)
        along = np.take_along_axis(unit, axis[:, None].astype(np.int64), axis=1)[:, 0]
        face = (2 * axis + (along > 0)).astype(np.int8)
        return unit * self._half32, face, axis

    def surface(self, state, index, origin, direction, t):
        local, face, axis = self._faces(state, index, t)
        sign = (face % 2).astype(np.float32) * 2 - 1
        if self.inside:
            sign = -sign
        normal = self._axes32[axis] * sign[:, None]
        return Hit(*_point(origin, direction, t, index), normal, local, face)


class Ellipsoid(_Scaled):
    """Ellipsoid of semi-axes `half` (metres). cutout: optional function (local (M, 3)
    metres) -> keep (M,) bool; a cut-out front hit falls through to the back surface
    (ragged tree crowns with holes), a cut-out back surface to the next object."""

    def __init__(self, center, half, rotation=None,
                 cutout: Callable[[np.ndarray], np.ndarray] | None = None):
        super().__init__(center, half, rotation)
        self.cutout = cutout

    def distance(self, origin, direction):
        ray = self._unit_ray(origin, direction)
        o, d = ray
        a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
        c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0
        disc = b * b - a * c
        with np.errstate(invalid='ignore'):
            root = np.sqrt(disc)
        near = (-b - root) / a
        t = np.where(near > NEAR_M, near, np.inf)     # NaN (a miss) compares False
        if self.cutout is not None:
            far = (-b + root) / a
            for _ in range(2):
                hit = np.nonzero(t < np.inf)
                if not hit[0].size:
                    break
                keep = self.cutout(self._unit_point(ray, hit, t[hit]) * self._half32)
                dropped = tuple(h[~keep] for h in hit)
                far_dropped = far[dropped] if np.ndim(far) else np.full(dropped[0].size, far)
                t[dropped] = np.where(far_dropped > t[dropped], far_dropped, np.inf)
        return t, ray

    def surface(self, state, index, origin, direction, t):
        """face 0: the outside; face 1: the inside seen through a cut-out (normal flipped
        to face the ray)."""
        unit = self._unit_point(state, index, t)
        normal = self._world_normal(unit)
        facing = (normal[:, 0] * _select(direction[0], index) + normal[:, 1] * _select(
            direction[1], index) + normal[:, 2] * _select(direction[2], index))
        inside = facing > 0
        normal[inside] *= -1
        return Hit(*_point(origin, direction, t, index), normal, unit * self._half32,
                   inside.astype(np.int8))


class Cylinder(_Scaled):
    """Capped elliptic cylinder: radii half[0], half[1] across, half length half[2] along the
    local z axis."""

    @classmethod
    def between(cls, start, end, radius: float) -> 'Cylinder':
        """Round cylinder of `radius` (metres) from point `start` to point `end`."""
        start, end = np.asarray(start, float), np.asarray(end, float)
        length = float(np.linalg.norm(end - start))
        return cls((start + end) / 2, (radius, radius, length / 2), rotation_from_axis(end - start))

    def distance(self, origin, direction):
        o, d = self._unit_ray(origin, direction)
        a = d[0] * d[0] + d[1] * d[1]
        b = o[0] * d[0] + o[1] * d[1]
        c = o[0] * o[0] + o[1] * o[1] - 1.0
        disc = b * b - a * c
        with np.errstate(invalid='ignore', divide='ignore'):
            t_side = (-b - np.sqrt(disc)) / a
            inverse = 1.0 / d[2]
            t_bottom = (-1.0 - o[2]) * inverse
            t_top = (1.0 - o[2]) * inverse
            z_side = o[2] + t_side * d[2]
            side = (disc >= 0) & (t_side > NEAR_M) & (np.abs(z_side) <= 1.0)
            t_cap = np.minimum(np.where(t_bottom > NEAR_M, t_bottom, np.inf),
                               np.where(t_top > NEAR_M, t_top, np.inf))
            cap_x, cap_y = o[0] + t_cap * d[0], o[1] + t_cap * d[1]
            cap = np.isfinite(t_cap) & (cap_x * cap_x + cap_y * cap_y <= 1.0)
        t = np.where(side, t_side, np.inf)
        use_cap = cap & (t_cap < t)
        return np.where(use_cap, t_cap, t), (use_cap, (o, d))

    def surface(self, state, index, origin, direction, t):
        use_cap, ray = state
        unit = self._unit_point(ray, index, t)
        cap = use_cap[index]
        normal = unit.copy()
        normal[:, 2] = 0
        normal[cap] = (0, 0, 1)
        normal[cap, 2] = np.sign(unit[cap, 2])
        face = np.where(cap, np.where(unit[:, 2] > 0, 5, 4), 0).astype(np.int8)
        return Hit(*_point(origin, direction, t, index), self._world_normal(normal),
                   unit * self._half32, face)


class Convex(Primitive):
    """Convex polyhedron: local points p (metres) with normals @ p <= offsets, placed by
    rotation and center. normals: (P, 3) outward unit normals; offsets: (P,)."""

    def __init__(self, center, normals, offsets, corners: np.ndarray, rotation=None):
        self._frame(np.eye(3) if rotation is None else rotation, center)
        normals = np.asarray(normals, float)
        self.normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        self.offsets = np.asarray(offsets, float) / np.linalg.norm(normals, axis=1)
        self._local_corners = np.asarray(corners, float)
        self._normals32 = self.normals.astype(np.float32)
        self._offsets32 = self.offsets.astype(np.float32)

    @classmethod
    def prism(cls, center, profile_yz, half_width: float, rotation=None) -> 'Convex':
        """Extrusion along local x (+-half_width) of a convex polygon in the local (y, z)
        plane given counter-clockwise as (N, 2) metres: wedges, cabins, gabled roofs."""
        profile = np.asarray(profile_yz, float)
        edges = np.roll(profile, -1, axis=0) - profile
        outward = np.stack([np.zeros(len(profile)), edges[:, 1], -edges[:, 0]], axis=1)
        offsets = (outward[:, 1:] * profile).sum(axis=1)
        normals = np.concatenate([outward, [[1.0, 0, 0], [-1.0, 0, 0]]])
        offsets = np.concatenate([offsets, [half_width, half_width]])
        corners = np.array([[sx * half_width, y, z] for sx in (-1, 1) for y, z in profile])
        return cls(center, normals, offsets, corners, rotation)

    @classmethod
    def pyramid(cls, apex, base) -> 'Convex':
        """Pyramid from an apex (3,) over a convex base polygon (N, 3) given in order, all
        world metres (parasols, roof caps)."""
        apex, base = np.asarray(apex, float), np.asarray(base, float)
        center = (base.sum(axis=0) + apex) / (len(base) + 1)
        normals, offsets = [], []
        for a, b in zip(base, np.roll(base, -1, axis=0)):
            normal = np.array(_cross(a - apex, b - apex))
            if normal @ (center - apex) > 0:
                normal = -normal
            normals.append(normal)
            offsets.append(normal @ (apex - center))
        normal = np.array(_cross(base[1] - base[0], base[2] - base[0]))
        if normal @ (center - base[0]) > 0:
            normal = -normal
        normals.append(normal)
        offsets.append(normal @ (base[0] - center))
        return cls(center, normals, offsets, np.vstack([base, apex[None]]) - center)

    def plane_distances(self, local: np.ndarray) -> np.ndarray:
        """(M, P) signed distances (metres, < 0 inside) of local points (M, 3) to the planes."""
        return local @ self._normals32.T - self.offsets.astype(np.float32)

    def _compute_bounds(self) -> np.ndarray:
        world = self._local_corners @ self.rotation.T + self.center
        low, high = world.min(axis=0), world.max(axis=0)
        return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                         for z in (low[2], high[2])])

    def distance(self, origin, direction):
        o = _combine(self._to_local, _shift(origin, self.center))
        d = _combine(self._to_local, direction)
        normals = self._normals32
        shape = np.broadcast(*o, *d).shape
        denom = (normals[:, 0, None] * np.ravel(d[0]) + normals[:, 1, None] * np.ravel(d[1])
                 + normals[:, 2, None] * np.ravel(d[2]))
        num = self._offsets32[:, None] - (normals[:, 0, None] * np.ravel(o[0])
                                          + normals[:, 1, None] * np.ravel(o[1])
                                          + normals[:, 2, None] * np.ravel(o[2]))
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = num / denom
        entering = np.where(denom < 0, ratio, -np.inf)
        leaving = np.where(denom > 0, ratio, np.where((denom == 0) & (num < 0), -np.inf, np.inf))
        face = entering.argmax(axis=0).astype(np.int8)
        t_near = entering.max(axis=0)
        t_far = leaving.min(axis=0)
        t = np.where((t_near <= t_far) & (t_near > NEAR_M), t_near, np.inf)
        return t.reshape(shape), face.reshape(shape)

    def surface(self, state, index, origin, direction, t):
        point = _point(origin, direction, t, index)
        face = state[index]
        normal = self._normals32[face] @ self._rotation32.T
        return Hit(*point, normal, self._local_points(point), face)


class Capsule(Primitive):
    """Segment from `start` to `end` (metres) swept by a sphere of `radius`: limbs, torsos."""

    def __init__(self, start, end, radius: float):
        start, end = np.asarray(start, float), np.asarray(end, float)
        self._frame(rotation_from_axis(end - start + [0, 0, 1e-9]), (start + end) / 2)
        self.start, self.end, self.radius = start, end, float(radius)
        self._axis = (end - start).tolist()

    def _compute_bounds(self) -> np.ndarray:
        low = np.minimum(self.start, self.end) - self.radius
        high = np.maximum(self.start, self.end) + self.radius
        return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                         for z in (low[2], high[2])])

    def distance(self, origin, direction):
        ba = self._axis
        oa = _shift(origin, self.start)
        d = direction
        baba = ba[0] * ba[0] + ba[1] * ba[1] + ba[2] * ba[2]
        bard = ba[0] * d[0] + ba[1] * d[1] + ba[2] * d[2]
        baoa = ba[0] * oa[0] + ba[1] * oa[1] + ba[2] * oa[2]
        rdoa = d[0] * oa[0] + d[1] * oa[1] + d[2] * oa[2]
        oaoa = oa[0] * oa[0] + oa[1] * oa[1] + oa[2] * oa[2]
        rdrd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        r2 = self.radius * self.radius
        a = baba * rdrd - bard * bard
        b = baba * rdoa - baoa * bard
        c = baba * oaoa - baoa * baoa - r2 * baba
        with np.errstate(invalid='ignore', divide='ignore'):
            t_body = (-b - np.sqrt(b * b - a * c)) / a
            y = baoa + t_body * bard
            body = (y > 0) & (y < baba) & (t_body > NEAR_M)
            # Otherwise the sphere at the end the ray meets first (for rays parallel to the
            # axis, the end it travels from).
            end = np.where(np.isnan(y), bard < 0, y >= baba)
            ocs = [np.where(end, o - float(e - s), o) for o, s, e in zip(oa, self.start, self.end)]
            b2 = d[0] * ocs[0] + d[1] * ocs[1] + d[2] * ocs[2]
            c2 = ocs[0] * ocs[0] + ocs[1] * ocs[1] + ocs[2] * ocs[2] - r2
            t_cap = (-b2 - np.sqrt(b2 * b2 - rdrd * c2)) / rdrd
        t = np.where(body, t_body, np.where(t_cap > NEAR_M, t_cap, np.inf))
        return t, None

    def surface(self, state, index, origin, direction, t):
        point = _point(origin, direction, t, index)
        rel = np.stack([p - np.float32(s) for p, s in zip(point, self.start)], axis=1)
        axis = np.asarray(self._axis, np.float32)
        along = np.clip(rel @ axis / np.float32(axis @ axis), 0, 1)
        normal = rel - along[:, None] * axis
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-6)
        return Hit(*point, normal, self._local_points(point), np.zeros(t.shape, np.int8))


@dataclass
class Part:
    """A primitive with its class label (Cityscapes-7 id) and material."""
    shape: Primitive
    label: int
    material: Material
    casts_shadow: bool = True


@dataclass
class Thing:
    """One object: its parts, and a coarse stand-in (`proxy`) drawn instead when it covers
    few pixels (no proxy: always drawn in full). shadow: the parts that cast its shadow
    (default: the proxy; none without one)."""
    parts: list[Part]
    proxy: list[Part] = field(default_factory=list)
    shadow: list[Part] | None = None
    _sphere: tuple[np.ndarray, float] | None = None

    def shadow_parts(self) -> list[Part]:
        return self.proxy if self.shadow is None else self.shadow

    def center_and_radius(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius (metres) of a sphere around all parts."""
        if self._sphere is None:
            corners = np.concatenate([part.shape.bounds() for part in self.parts])
            low, high = corners.min(axis=0), corners.max(axis=0)
            self._sphere = ((low + high) / 2, float(np.linalg.norm(high - low) / 2))
        return self._sphere
