"""Synthetic street scenes: the embedded default data set, rendered by analytic ray casting.

Conventions
-----------
World frame: X right (across the road), Y forward (along the road), Z up, metres. The road
surface is the plane Z = 0 for |X| < road half width; sidewalks and everything beyond them
lie on the raised plane Z = curb height, joined to the road by vertical curb faces at
X = +-road half width.

Camera optical frame (REP 103 ``_optical``): x right, y down, z forward. A pixel (u, v),
column u and row v with pixel centres at integer coordinates (the OpenCV convention), sees
the ray ``d_cam = K^-1 [u, v, 1]^T``; in the world the ray is ``C + s * R d_cam`` with
``R = rotation_cam_to_world`` and ``C = camera_position``. Because ``d_cam`` has z = 1, the
ray parameter s of a hit IS its depth (metres along the optical axis).

Ground truth: ``depth`` is that z in metres (0 = no surface: sky); ``labels`` are
Cityscapes' 7 categories (0 flat, 1 construction, 2 object, 3 nature, 4 sky, 5 human,
6 vehicle). Everything is vectorised numpy; each primitive is only intersected with the
pixels inside its projected screen-space bounding box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from jointdistill_core.classes import CONSTRUCTION, FLAT, HUMAN, NATURE, OBJECT, SKY, VEHICLE
from jointdistill_core.data.sample import IGNORE_INDEX, make_sample

SPLIT_SEED_START = {'train': 0, 'val': 1_000_000, 'test': 2_000_000}

MAX_GROUND_RANGE_M = 250.0   # ground ends here (along Y); beyond it the ray sees sky
MAX_GROUND_SIDE_M = 120.0    # ... and here across (|X|)
_NOISE_SIZE = 64             # side of the noise lattice tables (power of two)
_NEAR_M = 0.05
_PLACEMENT_TRIES = 5          # random positions tried before an object is left out


@dataclass
class SceneFrame:
    """One rendered frame with its ground truth and the camera used.

    image: (H, W, 3) uint8 RGB. depth: (H, W) float32 metres along the optical axis, 0 =
    invalid (sky). labels: (H, W) uint8 Cityscapes-7 ids, 255 void. K: (3, 3) float64 pinhole
    intrinsics in pixels. The pose maps optical-frame vectors to the world frame (see module
    docstring): ``p_world = rotation_cam_to_world @ p_cam + camera_position``.
    """
    image: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    K: np.ndarray
    camera_height_m: float
    pitch_rad: float            # > 0 tilts the optical axis down towards the road
    roll_rad: float             # rotation about the optical axis
    yaw_rad: float              # > 0 turns the camera left (about world Z)
    horizontal_fov_rad: float
    rotation_cam_to_world: np.ndarray   # (3, 3) float64
    camera_position: np.ndarray         # (3,) float64 metres, world frame
    road_half_width_m: float
    curb_height_m: float


# ----------------------------------------------------------------------------- camera

def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# Optical frame at zero angles: x_cam = world X, y_cam = -world Z, z_cam = world Y.
_OPTICAL_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def camera_rotation(pitch: float, roll: float, yaw: float) -> np.ndarray:
    """(3, 3) optical-to-world rotation. pitch > 0 looks down, yaw > 0 turns left."""
    return _rot_z(yaw) @ _OPTICAL_TO_WORLD @ _rot_x(-pitch) @ _rot_z(roll)


def intrinsics(height: int, width: int, horizontal_fov: float) -> np.ndarray:
    """(3, 3) pinhole K with square pixels and the principal point at the image centre."""
    focal = (width / 2.0) / np.tan(horizontal_fov / 2.0)
    return np.array([[focal, 0, (width - 1) / 2.0], [0, focal, (height - 1) / 2.0], [0, 0, 1]])


def pixel_rays(K: np.ndarray, rotation: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, H, W) world-frame ray directions whose optical-frame z component is 1."""
    u = (np.arange(width) - K[0, 2]) / K[0, 0]
    v = (np.arange(height) - K[1, 2]) / K[1, 1]
    cam = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))))
    return np.einsum('ij,jhw->ihw', rotation, cam)


# ----------------------------------------------------------------------------- noise

class _Noise:
    """Deterministic value noise from a random lattice table (bilinear) and cell noise."""

    def __init__(self, rng: np.random.Generator):
        self.table = rng.random((_NOISE_SIZE, _NOISE_SIZE)).astype(np.float32)
        self.flat = self.table.ravel()

    def cell(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Piecewise-constant noise in [0, 1), one value per unit lattice cell."""
        mask = _NOISE_SIZE - 1
        index = (np.floor(a).astype(np.int64) & mask) * _NOISE_SIZE + (np.floor(b).astype(np.int64) & mask)
        return self.flat[index]

    def smooth(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bilinearly interpolated noise in [0, 1), features about one lattice unit wide."""
        mask = _NOISE_SIZE - 1
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        fa, fb = np.floor(a), np.floor(b)
        ta, tb = a - fa, b - fb
        ia, ib = fa.astype(np.int64) & mask, fb.astype(np.int64) & mask
        row, next_row = ia * _NOISE_SIZE, ((ia + 1) & mask) * _NOISE_SIZE
        next_col = (ib + 1) & mask
        table = self.flat
        top = table[row + ib] + (table[row + next_col] - table[row + ib]) * tb
        bottom = table[next_row + ib] + (table[next_row + next_col] - table[next_row + ib]) * tb
        return top + (bottom - top) * ta

    def fractal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Two octaves of smooth noise, roughly in [0, 1)."""
        return 0.65 * self.smooth(a, b) + 0.35 * self.smooth(a * 2.7 + 11.3, b * 2.7 + 5.1)


# ----------------------------------------------------------------------------- primitives

@dataclass
class _Hit:
    """Surface data of the winning pixels of one primitive, each array (M,)."""
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    normal: np.ndarray          # (M, 3) world frame, unit length
    face_axis: np.ndarray | None = None   # boxes: 0/1/2 = local x/y/z face


AlbedoFn = Callable[[_Hit], np.ndarray]   # -> (M, 3) or (3,) RGB albedo in [0, 1]


@dataclass
class _Box:
    """Box of half extents (hx, hy, hz) centred at (cx, cy, cz), turned by yaw about Z."""
    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    label: int
    albedo: AlbedoFn

    def bounds(self) -> np.ndarray:
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        corners = corners * np.array(self.half)
        return corners @ _rot_z(self.yaw).T + np.array(self.center)

    def intersect(self, origin: tuple[float, float, float], dx, dy, dz):
        ox, oy, oz = (float(o - c) for o, c in zip(origin, self.center))
        if self.yaw:
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            local_origin = (c * ox + s * oy, -s * ox + c * oy, oz)
            local_dir = (c * dx + s * dy, -s * dx + c * dy, dz)
        else:
            local_origin, local_dir = (ox, oy, oz), (dx, dy, dz)
        # Slab method; a zero direction component gives +-inf slab distances, as it should.
        with np.errstate(divide='ignore', invalid='ignore'):
            for index in range(3):
                inverse = 1.0 / local_dir[index]
                half = float(self.half[index])
                t1 = (-half - local_origin[index]) * inverse
                t2 = (half - local_origin[index]) * inverse
                lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
                if index == 0:
                    t_near, t_far = lo, hi
                    axis = np.zeros(dx.shape, np.int8)
                    continue
                axis[lo > t_near] = index
                np.maximum(t_near, lo, out=t_near)
                np.minimum(t_far, hi, out=t_far)
        hit = (t_near <= t_far) & (t_near > _NEAR_M)
        t = np.where(hit, t_near, np.inf)

        def surface(mask: np.ndarray, px, py, pz) -> _Hit:
            face = axis[mask]
            sign = -np.sign(np.stack([d[mask] for d in local_dir], axis=1))
            local_normal = np.zeros((face.size, 3), np.float32)
            rows = np.arange(face.size)
            local_normal[rows, face] = sign[rows, face]
            world_normal = local_normal @ _rot_z(self.yaw).T.astype(np.float32)
            return _Hit(px, py, pz, world_normal, face)
        return t, surface


@dataclass
class _Cylinder:
    """Vertical cylinder (axis along Z) with flat caps, radius r, from z0 to z1."""
    cx: float
    cy: float
    radius: float
    z0: float
    z1: float
    label: int
    albedo: AlbedoFn

    def bounds(self) -> np.ndarray:
        r = self.radius
        return np.array([[self.cx + sx * r, self.cy + sy * r, z]
                         for sx in (-1, 1) for sy in (-1, 1) for z in (self.z0, self.z1)])

    def intersect(self, origin: tuple[float, float, float], dx, dy, dz):
        ox, oy, oz = float(origin[0] - self.cx), float(origin[1] - self.cy), origin[2]
        z0, z1, radius = float(self.z0), float(self.z1), float(self.radius)
        a = dx * dx + dy * dy
        b = ox * dx + oy * dy
        c = ox * ox + oy * oy - radius ** 2
        disc = b * b - a * c
        with np.errstate(invalid='ignore', divide='ignore'):
            t_side = (-b - np.sqrt(disc)) / a
        z_side = oz + t_side * dz
        side_ok = (disc >= 0) & (t_side > _NEAR_M) & (z_side >= z0) & (z_side <= z1)
        cap_z = z1 if oz > z1 else z0
        with np.errstate(divide='ignore', invalid='ignore'):
            t_cap = (cap_z - oz) / dz
        cap_x, cap_y = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = (t_cap > _NEAR_M) & (cap_x * cap_x + cap_y * cap_y <= radius ** 2)
        cap_ok &= (oz > z1) | (oz < z0)
        t = np.where(side_ok, t_side, np.inf)
        use_cap = cap_ok & (t_cap < t)
        t = np.where(use_cap, t_cap, t)

        def surface(mask: np.ndarray, px, py, pz) -> _Hit:
            normal = np.stack([(px - float(self.cx)) / radius, (py - float(self.cy)) / radius,
                               np.zeros_like(px)], axis=1)
            cap = use_cap[mask]
            normal[cap] = (0.0, 0.0, 1.0 if cap_z == self.z1 else -1.0)
            return _Hit(px, py, pz, normal)
        return t, surface


@dataclass
class _Sphere:
    center: tuple[float, float, float]
    radius: float
    label: int
    albedo: AlbedoFn

    def bounds(self) -> np.ndarray:
        r = self.radius
        return np.array([[self.center[0] + sx * r, self.center[1] + sy * r, self.center[2] + sz * r]
                         for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])

    def intersect(self, origin: tuple[float, float, float], dx, dy, dz):
        ox, oy, oz = (float(o - c) for o, c in zip(origin, self.center))
        a = dx * dx + dy * dy + dz * dz
        b = ox * dx + oy * dy + oz * dz
        c = ox * ox + oy * oy + oz * oz - float(self.radius) ** 2
        disc = b * b - a * c
        with np.errstate(invalid='ignore'):
            t = (-b - np.sqrt(disc)) / a
        t = np.where((disc >= 0) & (t > _NEAR_M), t, np.inf)

        def surface(mask: np.ndarray, px, py, pz) -> _Hit:
            cx, cy, cz = (float(value) for value in self.center)
            normal = np.stack([px - cx, py - cy, pz - cz], axis=1) / float(self.radius)
            return _Hit(px, py, pz, normal)
        return t, surface


# ----------------------------------------------------------------------------- canvas

class _Canvas:
    """Z-buffer holding depth (metres), label, albedo and normal per pixel."""

    def __init__(self, rays: np.ndarray, origin: np.ndarray, K: np.ndarray,
                 rotation: np.ndarray):
        _, self.height, self.width = rays.shape
        self.rays, self.origin, self.K, self.rotation = rays, origin, K, rotation
        # Objects are intersected in float32 (half the memory traffic); the ground, whose
        # depth must be exact, in float64.
        self.rays32 = rays.astype(np.float32)
        self.depth = np.full((self.height, self.width), np.inf)
        self.labels = np.full((self.height, self.width), IGNORE_INDEX, np.uint8)
        self.albedo = np.zeros((self.height, self.width, 3), np.float32)
        self.normal = np.zeros((self.height, self.width, 3), np.float32)

    def screen_windows(self, corners_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel rectangles covering P projected bounding boxes, all at once.

        corners_world: (P, 8, 3). Returns (P, 4) int [row0, row1, col0, col1] (empty when
        row0 >= row1 or col0 >= col1: off-screen) and (P,) the nearest corner's optical z.
        """
        cam = (corners_world - self.origin) @ self.rotation   # R^T (p - C) per corner
        z = cam[..., 2]
        safe_z = np.maximum(z, _NEAR_M)
        u = self.K[0, 0] * cam[..., 0] / safe_z + self.K[0, 2]
        v = self.K[1, 1] * cam[..., 1] / safe_z + self.K[1, 2]
        windows = np.stack([np.floor(v.min(axis=1)), np.ceil(v.max(axis=1)) + 1,
                            np.floor(u.min(axis=1)), np.ceil(u.max(axis=1)) + 1], axis=1)
        windows = np.clip(windows, -1, [[self.height, self.height, self.width, self.width]])
        windows = np.maximum(windows, 0).astype(np.int64)
        straddles = np.any(z <= _NEAR_M, axis=1)     # partly behind the camera: whole image
        windows[straddles] = (0, self.height, 0, self.width)
        windows[np.all(z <= _NEAR_M, axis=1)] = 0    # entirely behind the camera
        return windows, z.min(axis=1)

    def draw_all(self, primitives: list) -> None:
        """Z-buffer the primitives, nearest first, culling off-screen and hidden ones."""
        if not primitives:
            return
        corners = np.stack([primitive.bounds() for primitive in primitives])
        distances = ((corners.mean(axis=1) - self.origin) ** 2).sum(axis=1)
        order = np.argsort(distances, kind='stable')
        windows, near_z = self.screen_windows(corners)
        for index in order:
            row0, row1, col0, col1 = windows[index]
            if row0 >= row1 or col0 >= col1:
                continue
            rows, cols = slice(row0, row1), slice(col0, col1)
            # Hidden: every pixel already holds a surface nearer than the nearest corner.
            if self.depth[rows, cols].max() <= near_z[index]:
                continue
            self.draw_within(primitives[index], rows, cols)

    def draw_within(self, primitive, rows: slice, cols: slice) -> None:
        """Z-buffer one primitive over the pixel rectangle (rows, cols), in float32."""
        dx, dy, dz = (self.rays32[i, rows, cols] for i in range(3))
        origin = tuple(float(value) for value in self.origin)
        t, surface = primitive.intersect(origin, dx, dy, dz)
        won = np.nonzero(t < self.depth[rows, cols])
        if won[0].size == 0:
            return
        t_won = t[won]
        px = origin[0] + t_won * dx[won]
        py = origin[1] + t_won * dy[won]
        pz = origin[2] + t_won * dz[won]
        hit = surface(won, px, py, pz)
        flat = (won[0] + rows.start) * self.width + (won[1] + cols.start)
        self.depth.reshape(-1)[flat] = t_won
        self.labels.reshape(-1)[flat] = primitive.label
        self.albedo.reshape(-1, 3)[flat] = primitive.albedo(hit)
        self.normal.reshape(-1, 3)[flat] = hit.normal


# ----------------------------------------------------------------------------- materials

def _jitter(rng: np.random.Generator, color, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(color, float) + rng.uniform(-amount, amount, 3), 0, 1)


def _flat_color(color: np.ndarray, noise: _Noise | None = None, scale: float = 1.0,
                strength: float = 0.0) -> AlbedoFn:
    def albedo(hit: _Hit) -> np.ndarray:
        if noise is None or strength == 0:
            return color
        n = noise.fractal(hit.px * scale + hit.pz * scale, hit.py * scale + hit.pz * 0.7 * scale)
        return color[None, :] * (1 + strength * (n[:, None] - 0.5))
    return albedo


def _building_albedo(rng: np.random.Generator, noise: _Noise, base_z: float) -> AlbedoFn:
    palette = np.array([[0.72, 0.66, 0.56], [0.55, 0.55, 0.55], [0.62, 0.36, 0.28],
                        [0.85, 0.83, 0.78], [0.45, 0.42, 0.40], [0.76, 0.70, 0.52]])
    wall = _jitter(rng, palette[rng.integers(len(palette))], 0.07)
    glass = _jitter(rng, (0.20, 0.25, 0.32), 0.05)
    roof = _jitter(rng, (0.30, 0.28, 0.27), 0.05)
    floor_h = rng.uniform(2.8, 3.6)
    spacing = rng.uniform(1.8, 3.2)
    win_w = rng.uniform(0.35, 0.7)
    win_h = rng.uniform(0.4, 0.65)
    offset = rng.uniform(0, spacing)
    shop_front = rng.random() < 0.5

    def albedo(hit: _Hit) -> np.ndarray:
        along = np.where(hit.face_axis == 0, hit.py, hit.px)
        height = hit.pz - base_z
        fs = np.mod(along + offset, spacing) / spacing
        fz = np.mod(height, floor_h) / floor_h
        window = (np.abs(fs - 0.5) < win_w / 2) & (fz > 0.3) & (fz < 0.3 + win_h)
        window &= height > floor_h * (0.5 if shop_front else 0.8)
        if shop_front:
            window |= (height > 0.3) & (height < floor_h * 0.8) & (np.abs(fs - 0.5) < 0.42)
        window &= hit.face_axis != 2
        tone = noise.cell(np.floor((along + offset) / spacing) * 7.1, np.floor(height / floor_h) * 3.3)
        grain = noise.fractal(along * 0.8, hit.pz * 0.8)
        color = wall[None, :] * (0.9 + 0.2 * grain[:, None])
        color = np.where(window[:, None], glass[None, :] * (0.6 + 0.9 * tone[:, None]), color)
        return np.where((hit.face_axis == 2)[:, None], roof[None, :], color)
    return albedo


def _vehicle_albedo(body: np.ndarray, glass_band: tuple[float, float] | None) -> AlbedoFn:
    glass = np.array([0.12, 0.14, 0.17])

    def albedo(hit: _Hit) -> np.ndarray:
        if glass_band is None:
            return body
        glazed = (np.abs(hit.normal[:, 2]) < 0.5) & (hit.pz > glass_band[0]) & (hit.pz < glass_band[1])
        return np.where(glazed[:, None], glass, body)
    return albedo


# ----------------------------------------------------------------------------- scene layout

@dataclass
class _Side:
    sign: int               # -1 left, +1 right
    sidewalk_w: float
    verge_w: float
    has_buildings: bool

    def frontage(self, road_half: float) -> float:
        return road_half + self.sidewalk_w + self.verge_w


class _SceneBuilder:
    def __init__(self, rng: np.random.Generator, noise: _Noise, road_half: float, curb_h: float,
                 sides: list[_Side], camera_x: float, hfov: float, far_end: float):
        self.rng, self.noise = rng, noise
        self.road_half, self.curb_h, self.sides = road_half, curb_h, sides
        self.camera_x, self.hfov, self.far_end = camera_x, hfov, far_end
        self.primitives: list = []
        self.footprints: list[tuple[float, float, float, float]] = []

    def min_visible_y(self, x: float) -> float:
        """Distance ahead from which a point at lateral position x is inside the view."""
        return abs(x - self.camera_x) / np.tan(self.hfov / 2 * 0.85)

    # --- construction
    def buildings(self, side: _Side) -> None:
        rng = self.rng
        y = rng.uniform(-12, -2)
        while y < self.far_end:
            length = rng.uniform(8, 28)
            if rng.random() < 0.22:
                y += rng.uniform(3, 12)
                continue
            setback = rng.uniform(0, 1.5) if rng.random() < 0.4 else 0.0
            depth = rng.uniform(8, 20)
            height = rng.uniform(6, 32)
            inner = side.frontage(self.road_half) + setback
            cx = side.sign * (inner + depth / 2)
            self.primitives.append(_Box(
                (cx, y + length / 2, self.curb_h + height / 2), (depth / 2, length / 2, height / 2),
                0.0, CONSTRUCTION, _building_albedo(rng, self.noise, self.curb_h)))
            y += length

    def skyline(self) -> None:
        rng = self.rng
        x = -MAX_GROUND_SIDE_M
        while x < MAX_GROUND_SIDE_M:
            width = rng.uniform(10, 30)
            height = rng.uniform(8, 45)
            depth = rng.uniform(10, 25)
            self.primitives.append(_Box(
                (x + width / 2, self.far_end + depth / 2, self.curb_h + height / 2),
                (width / 2, depth / 2, height / 2), 0.0, CONSTRUCTION,
                _building_albedo(rng, self.noise, self.curb_h)))
            x += width

    def wall(self, side: _Side) -> None:
        """A low wall or fence along the back of a park-side verge."""
        x = side.sign * (side.frontage(self.road_half) + 0.2)
        color = _jitter(self.rng, (0.6, 0.58, 0.55), 0.08)
        height = self.rng.uniform(0.6, 1.6)
        self.primitives.append(_Box((x, 40.0, self.curb_h + height / 2), (0.15, 45.0, height / 2),
                                    0.0, CONSTRUCTION, _flat_color(color, self.noise, 1.5, 0.3)))

    # --- nature
    def tree(self, x: float, y: float, base_z: float) -> None:
        rng = self.rng
        trunk_h = rng.uniform(1.8, 3.5)
        trunk_r = rng.uniform(0.12, 0.25)
        crown_r = rng.uniform(1.2, 2.6)
        bark = _jitter(rng, (0.36, 0.27, 0.18), 0.05)
        leaves = _jitter(rng, (0.25, 0.42, 0.15), 0.07)
        if not self.claim(x - trunk_r - 0.1, x + trunk_r + 0.1, y - trunk_r - 0.1, y + trunk_r + 0.1):
            return
        self.primitives.append(_Cylinder(x, y, trunk_r, base_z, base_z + trunk_h + crown_r * 0.5,
                                         NATURE, _flat_color(bark, self.noise, 4.0, 0.4)))
        self.primitives.append(_Sphere((x, y, base_z + trunk_h + crown_r * 0.8), crown_r, NATURE,
                                       _flat_color(leaves, self.noise, 2.5, 0.9)))

    def street_trees(self, side: _Side) -> None:
        x = side.sign * (self.road_half + side.sidewalk_w * 0.75 + side.verge_w * 0.5)
        y = self.rng.uniform(2, 12)
        spacing = self.rng.uniform(8, 16)
        while y < min(self.far_end, 90):
            self.tree(x, y, self.curb_h)
            y += spacing * self.rng.uniform(0.8, 1.2)

    def park_trees(self, side: _Side) -> None:
        inner = side.frontage(self.road_half)
        for _ in range(self.rng.integers(4, 12)):
            x = side.sign * (inner + self.rng.uniform(2, 35))
            y = self.rng.uniform(self.min_visible_y(x) * 0.7, 90)
            self.tree(x, y, self.curb_h)

    # --- objects
    def poles(self, side: _Side) -> None:
        rng = self.rng
        x = side.sign * (self.road_half + 0.4)
        y = rng.uniform(4, 20)
        metal = _jitter(rng, (0.45, 0.46, 0.48), 0.05)
        while y < min(self.far_end, 100):
            radius = rng.uniform(0.08, 0.16)
            height = rng.uniform(3.5, 8.0)
            # Keeps pedestrians clear of the pole and of a sign hanging above the sidewalk.
            self.claim(x - 1.0, x + 1.0, y - 0.5, y + 0.5)
            self.primitives.append(_Cylinder(x, y, radius, self.curb_h, self.curb_h + height,
                                             OBJECT, _flat_color(metal)))
            kind = rng.random()
            if kind < 0.45:
                sign_color = np.array([[0.75, 0.1, 0.1], [0.1, 0.25, 0.7], [0.95, 0.8, 0.1],
                                       [0.9, 0.9, 0.9]])[rng.integers(4)]
                size = rng.uniform(0.5, 0.9)
                z = self.curb_h + rng.uniform(2.0, min(3.2, height - size / 2))
                self.primitives.append(_Box((x - side.sign * size / 2, y - radius - 0.04, z),
                                            (size / 2, 0.03, size / 2), 0.0, OBJECT,
                                            _flat_color(_jitter(rng, sign_color, 0.05))))
            elif kind < 0.7:
                z = self.curb_h + min(height - 0.5, rng.uniform(3.0, 5.0))
                self.primitives.append(_Box((x - side.sign * 0.3, y - radius - 0.2, z),
                                            (0.18, 0.15, 0.5), 0.0, OBJECT,
                                            _flat_color(np.array([0.12, 0.12, 0.1]))))
            y += rng.uniform(12, 35)

    # --- humans
    def pedestrian(self, x: float, y: float, base_z: float) -> None:
        rng = self.rng
        height = rng.uniform(1.55, 1.95)
        torso_r = rng.uniform(0.18, 0.26)
        shirt = rng.uniform(0.05, 0.9, 3)
        trousers = rng.uniform(0.05, 0.45, 3)
        skin = _jitter(rng, np.array([0.78, 0.6, 0.48]) * rng.uniform(0.45, 1.05), 0.03)
        legs_top = base_z + 0.48 * height
        self.primitives.append(_Cylinder(x, y, torso_r * 0.7, base_z, legs_top, HUMAN,
                                         _flat_color(trousers)))
        self.primitives.append(_Cylinder(x, y, torso_r, legs_top, base_z + 0.83 * height, HUMAN,
                                         _flat_color(shirt)))
        self.primitives.append(_Sphere((x, y, base_z + 0.91 * height), 0.09 * height, HUMAN,
                                       _flat_color(skin)))

    def pedestrians(self) -> None:
        rng = self.rng
        count = rng.integers(2, 10)
        for index in range(count):
            for _ in range(_PLACEMENT_TRIES):
                side = self.sides[rng.integers(2)]
                if rng.random() < 0.15:     # crossing the road
                    x = rng.uniform(-self.road_half + 0.5, self.road_half - 0.5)
                    base = 0.0
                else:
                    x = side.sign * (self.road_half + rng.uniform(0.5, max(side.sidewalk_w - 0.3, 0.6)))
                    base = self.curb_h
                y_min = max(5.0, self.min_visible_y(x))
                # The first two are kept close enough to be clearly visible.
                y = rng.uniform(y_min, y_min + (12.0 if index < 2 else 40.0))
                if self.claim(x - 0.35, x + 0.35, y - 0.35, y + 0.35):
                    self.pedestrian(x, y, base)
                    break

    # --- vehicles
    def vehicle_shape(self) -> dict:
        """Random vehicle type and size (metres) and paint colour."""
        rng = self.rng
        kind = rng.random()
        paint = rng.uniform(0.05, 0.9, 3) if rng.random() < 0.6 else np.full(3, rng.uniform(0.05, 0.9))
        if kind < 0.75:
            shape = dict(kind='car', length=rng.uniform(3.9, 4.9), width=rng.uniform(1.7, 1.95),
                         body_top=rng.uniform(0.9, 1.05), cabin_top=rng.uniform(1.4, 1.6))
        elif kind < 0.92:
            shape = dict(kind='van', length=rng.uniform(4.8, 5.6), width=rng.uniform(1.9, 2.1),
                         body_top=rng.uniform(1.1, 1.3), cabin_top=rng.uniform(2.0, 2.4))
        else:
            shape = dict(kind='bus', length=rng.uniform(8.0, 12.0), width=2.5,
                         body_top=rng.uniform(1.2, 1.5), cabin_top=rng.uniform(3.0, 3.5))
        return dict(shape, paint=paint)

    def vehicle(self, x: float, y: float, yaw: float, shape: dict) -> None:
        """Body, cabin (glass band) and two axle boxes, centred at (x, y) on the road."""
        length, width = shape['length'], shape['width']
        body_top, cabin_top, paint = shape['body_top'], shape['cabin_top'], shape['paint']
        clearance, wheel_r = 0.25, 0.33
        self.primitives.append(_Box((x, y, (clearance + body_top) / 2), (width / 2, length / 2,
                                    (body_top - clearance) / 2), yaw, VEHICLE,
                                    _vehicle_albedo(paint, None)))
        is_car = shape['kind'] == 'car'
        cabin_length = length * (0.55 if is_car else 0.92)
        cabin_shift = -0.08 * length if is_car else 0.0
        cx, cy = x - math.sin(yaw) * cabin_shift, y + math.cos(yaw) * cabin_shift
        self.primitives.append(_Box((cx, cy, (body_top + cabin_top) / 2),
                                    (width * 0.46, cabin_length / 2, (cabin_top - body_top) / 2),
                                    yaw, VEHICLE,
                                    _vehicle_albedo(paint, (body_top + 0.05, cabin_top - 0.08))))
        tyre = np.array([0.06, 0.06, 0.06])
        for along in (-0.33, 0.33):   # one box per axle: both wheels and the dark underbody
            wx, wy = x - math.sin(yaw) * along * length, y + math.cos(yaw) * along * length
            self.primitives.append(_Box((wx, wy, wheel_r), (width / 2 - 0.05, wheel_r, wheel_r),
                                        yaw, VEHICLE, _flat_color(tyre)))

    def traffic(self) -> None:
        rng = self.rng
        lane_w = 2 * self.road_half / max(2, round(2 * self.road_half / 3.3))
        lanes = np.arange(-self.road_half + lane_w / 2, self.road_half, lane_w)
        for index in range(rng.integers(1, 5)):
            for _ in range(_PLACEMENT_TRIES):
                shape = self.vehicle_shape()
                x = float(lanes[rng.integers(len(lanes))]) + rng.uniform(-0.3, 0.3)
                y_min = max(6.0, self.min_visible_y(x)) + shape['length'] / 2
                y = rng.uniform(y_min, y_min + (20 if index == 0 else 60))
                # Footprint grown for the small yaw and a gap to the neighbours.
                half_w, half_l = shape['width'] / 2 + 0.3, shape['length'] / 2 + 1.0
                if self.claim(x - half_w, x + half_w, y - half_l, y + half_l):
                    self.vehicle(x, y, rng.uniform(-0.06, 0.06), shape)
                    break
        for side in self.sides:
            if rng.random() < 0.6:
                x = side.sign * (self.road_half - 1.1)
                rear = rng.uniform(2, 12)        # nothing parked beside the camera
                while rear < 70:
                    shape = self.vehicle_shape()
                    half_w, length = shape['width'] / 2, shape['length']
                    if self.claim(x - half_w, x + half_w, rear, rear + length):
                        self.vehicle(x, rear + length / 2, 0.0, shape)
                    rear += length + rng.uniform(0.8, 8)

    def claim(self, x0: float, x1: float, y0: float, y1: float) -> bool:
        """Reserve the ground rectangle [x0, x1] x [y0, y1] (metres) if no object stands there."""
        for ox0, ox1, oy0, oy1 in self.footprints:
            if x0 < ox1 and ox0 < x1 and y0 < oy1 and oy0 < y1:
                return False
        self.footprints.append((x0, x1, y0, y1))
        return True


# ----------------------------------------------------------------------------- ground and sky

ROAD, CURB, RAISED = 1, 2, 3   # ground surfaces


def ground_hits(rays: np.ndarray, origin: np.ndarray, road_half: float, curb_h: float):
    """First ground hit of every pixel ray that meets the ground within range.

    rays: (3, H, W) world directions with optical z = 1; origin: (3,) camera position (m).
    The road is Z = 0 for |X| < road_half, the raised plane Z = curb_h for |X| >= road_half,
    joined by the vertical curb faces X = +-road_half. Returns flat pixel indices (M,), depth
    (M,) metres, hit X and Y (M,) metres, and the surface (M,) uint8: ROAD, CURB or RAISED.
    """
    dx, dy, dz = (component.reshape(-1) for component in rays)
    ox, oy, oz = origin
    index = np.flatnonzero(dz < -1e-12)
    dx, dy, dz = dx[index], dy[index], dz[index]
    t_raised = (curb_h - oz) / dz
    raised = np.abs(ox + t_raised * dx) >= road_half   # the raised plane is met first
    t_road = -oz / dz
    x_road = ox + t_road * dx
    road = ~raised & (np.abs(x_road) < road_half)
    curb = ~raised & ~road                              # passed X = +-road_half in between
    t = np.where(raised, t_raised, t_road)
    t[curb] = (np.where(x_road[curb] > 0, road_half, -road_half) - ox) / dx[curb]
    px, py = ox + t * dx, oy + t * dy
    keep = (py < MAX_GROUND_RANGE_M) & (np.abs(px) < MAX_GROUND_SIDE_M)
    surface = np.where(raised, RAISED, np.where(road, ROAD, CURB)).astype(np.uint8)
    return index[keep], t[keep], px[keep], py[keep], surface[keep]


def _draw_ground(canvas: _Canvas, rng: np.random.Generator, noise: _Noise, road_half: float,
                 curb_h: float, sides: list[_Side]) -> None:
    """Road with lane markings, curbs, sidewalks and terrain; textures on the hit pixels only."""
    index, th, px, py, surface = ground_hits(canvas.rays, canvas.origin, road_half, curb_h)
    road, curb, raised = surface == ROAD, surface == CURB, surface == RAISED

    asphalt = rng.uniform(0.22, 0.38) * np.array([1.0, 1.0, 1.02])
    paving = _jitter(rng, np.full(3, rng.uniform(0.5, 0.66)), 0.03)
    grass = _jitter(rng, (0.30, 0.42, 0.18), 0.06)
    dirt = _jitter(rng, (0.42, 0.36, 0.26), 0.05)
    mark_color = np.array([0.85, 0.85, 0.82])
    tile = rng.uniform(0.4, 0.8)
    dash_phase = rng.uniform(0, 9)

    blotch = noise.fractal(px * 0.35, py * 0.35)[:, None]
    albedo = np.empty((th.size, 3), np.float32)
    rx, ry = px[road], py[road]
    grain = noise.cell(rx * 12.0, ry * 12.0)[:, None]
    road_color = asphalt * (0.8 + 0.3 * blotch[road] + 0.12 * grain)
    lane_count = max(2, round(2 * road_half / 3.3))
    lane_w = 2 * road_half / lane_count
    lane_pos = (rx + road_half) / lane_w
    nearest = np.round(lane_pos)
    lane_line = (np.abs(lane_pos - nearest) * lane_w < 0.07) & (nearest > 0) & (nearest < lane_count)
    lane_line &= np.mod(ry + dash_phase, 9.0) < 3.0
    edge_line = np.abs(np.abs(rx) - (road_half - 0.35)) < 0.07
    marking = lane_line | edge_line
    road_color[marking] = mark_color * (0.9 + 0.1 * grain[marking])
    albedo[road] = road_color

    sx, sy = px[raised], py[raised]
    tiles = (np.mod(sx, tile) < 0.03) | (np.mod(sy, tile) < 0.03)
    raised_color = paving * (0.9 + 0.15 * blotch[raised] - 0.1 * tiles[:, None])
    labels = np.full(th.size, FLAT, np.uint8)
    raised_labels = np.full(sx.size, FLAT, np.uint8)
    for side in sides:
        terrain = (np.sign(sx) == side.sign) & (np.abs(sx) >= road_half + side.sidewalk_w)
        tx, ty = sx[terrain], sy[terrain]
        mix = noise.fractal(tx * 0.2 + 3.7, ty * 0.2)[:, None]
        terrain_color = grass * (1 - 0.6 * mix) + dirt * 0.6 * mix
        raised_color[terrain] = terrain_color * (0.85 + 0.3 * noise.smooth(tx * 3, ty * 3)[:, None])
        raised_labels[terrain] = NATURE
    albedo[raised] = raised_color
    labels[raised] = raised_labels
    albedo[curb] = paving * 1.05

    normal = np.zeros((th.size, 3), np.float32)
    normal[:, 2] = 1.0
    normal[curb] = 0.0
    normal[curb, 0] = -np.sign(px[curb])

    canvas.depth.reshape(-1)[index] = th
    canvas.labels.reshape(-1)[index] = labels
    canvas.albedo.reshape(-1, 3)[index] = albedo
    canvas.normal.reshape(-1, 3)[index] = normal


def _sky(dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, rng: np.random.Generator,
         noise: _Noise, sun: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """(M, 3) sky colour for M rays (world directions): elevation gradient, clouds, sun glow."""
    length = np.sqrt(dx * dx + dy * dy + dz * dz)
    elevation = np.clip(dz / length, -1, 1)
    zenith = _jitter(rng, (0.25, 0.45, 0.78), 0.06)
    blend = np.clip(elevation * 2.5, 0, 1)[:, None] ** 0.6
    color = horizon * (1 - blend) + zenith * blend
    up = np.maximum(dz, 1e-3)
    cloudiness = rng.uniform(0.0, 0.8)
    clouds = noise.fractal(dx / up * 0.8, dy / up * 0.8 + 17.0)
    cover = (np.clip((clouds - (1 - cloudiness)) * 3.0, 0, 1) * (elevation > 0))[:, None]
    color = color * (1 - cover) + np.array([0.93, 0.93, 0.95]) * cover
    glow = np.clip((dx * sun[0] + dy * sun[1] + dz * sun[2]) / length, 0, 1) ** 24
    return color + 0.35 * glow[:, None]


# ----------------------------------------------------------------------------- entry point

def _populate(builder: _SceneBuilder) -> list:
    """Every object of the scene, in placement order: static ones reserve ground first."""
    rng = builder.rng
    for side in builder.sides:
        if side.has_buildings:
            builder.buildings(side)
        else:
            builder.park_trees(side)
            if rng.random() < 0.5:
                builder.wall(side)
        if rng.random() < 0.6:
            builder.street_trees(side)
        if rng.random() < 0.85:
            builder.poles(side)
    builder.skyline()
    builder.traffic()
    builder.pedestrians()
    return builder.primitives


def _sun_direction(rng: np.random.Generator) -> np.ndarray:
    """(3,) unit vector towards the sun, world frame, 15-65 degrees above the horizon."""
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.deg2rad(rng.uniform(15, 65))
    return np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                     np.sin(elevation)])


def render_scene(seed: int, height: int, width: int) -> SceneFrame:
    """Render one street scene of (height, width) pixels; the same seed gives identical arrays."""
    if height < 8 or width < 8:
        raise ValueError(f'render_scene: size must be at least 8x8 pixels, got {height}x{width}')
    rng = np.random.default_rng(seed)
    noise = _Noise(rng)

    hfov = np.deg2rad(rng.uniform(60, 90))
    camera_h = rng.uniform(1.2, 1.8)
    pitch = np.deg2rad(rng.uniform(-1.0, 5.0))
    roll = np.deg2rad(rng.uniform(-2.0, 2.0))
    yaw = np.deg2rad(rng.uniform(-5.0, 5.0))
    road_half = rng.uniform(3.5, 7.5)
    curb_h = rng.uniform(0.10, 0.18)
    camera_x = rng.uniform(-road_half + 1.6, road_half - 1.6)
    sides = [_Side(sign, rng.uniform(1.5, 4.0), 0.0 if rng.random() < 0.5 else rng.uniform(1, 5),
                   rng.random() < 0.8) for sign in (-1, 1)]
    far_end = rng.uniform(70, 180) if rng.random() < 0.6 else MAX_GROUND_RANGE_M - 30

    K = intrinsics(height, width, hfov)
    rotation = camera_rotation(pitch, roll, yaw)
    origin = np.array([camera_x, 0.0, camera_h])
    rays = pixel_rays(K, rotation, height, width)
    canvas = _Canvas(rays, origin, K, rotation)
    _draw_ground(canvas, rng, noise, road_half, curb_h, sides)

    builder = _SceneBuilder(rng, noise, road_half, curb_h, sides, camera_x, hfov, far_end)
    canvas.draw_all(_populate(builder))
    image = _shade(canvas, rng, noise, _sun_direction(rng), _jitter(rng, (0.78, 0.82, 0.86), 0.05))
    sky = ~np.isfinite(canvas.depth)
    labels = canvas.labels
    labels[sky] = SKY
    depth = np.where(sky, 0.0, canvas.depth).astype(np.float32)
    return SceneFrame(image=image, depth=depth, labels=labels, K=K, camera_height_m=float(camera_h),
                      pitch_rad=float(pitch), roll_rad=float(roll), yaw_rad=float(yaw),
                      horizontal_fov_rad=float(hfov), rotation_cam_to_world=rotation,
                      camera_position=origin, road_half_width_m=float(road_half),
                      curb_height_m=float(curb_h))


def _shade(canvas: _Canvas, rng: np.random.Generator, noise: _Noise, sun: np.ndarray,
           horizon: np.ndarray) -> np.ndarray:
    """Lambert shading, sky, distance haze, exposure and sensor noise -> (H, W, 3) uint8."""
    ambient = rng.uniform(0.35, 0.55)
    diffuse = rng.uniform(0.6, 0.9)
    sun_color = _jitter(rng, (1.0, 0.97, 0.9), 0.04).astype(np.float32)
    normal = canvas.normal
    sun32 = sun.astype(np.float32)
    lambert = np.maximum(normal[..., 0] * sun32[0] + normal[..., 1] * sun32[1]
                         + normal[..., 2] * sun32[2], 0)
    light = ambient + diffuse * lambert[..., None] * sun_color
    sky = ~np.isfinite(canvas.depth)
    rays = canvas.rays32
    ray_length = np.sqrt(rays[0] * rays[0] + rays[1] * rays[1] + rays[2] * rays[2])
    distance = np.where(sky, np.float32(0), canvas.depth.astype(np.float32)) * ray_length
    visibility = rng.uniform(150, 700)
    transmittance = np.exp(distance * np.float32(-1.0 / visibility))[..., None]
    haze = horizon.astype(np.float32)
    color = (canvas.albedo * light - haze) * transmittance + haze
    color[sky] = _sky(*(component[sky] for component in rays), rng, noise, sun, horizon)
    color *= rng.uniform(0.85, 1.15) * 255
    color += rng.standard_normal(color.shape, dtype=np.float32) * (rng.uniform(0.004, 0.02) * 255)
    color += 0.5
    return np.clip(color, 0, 255, out=color).astype(np.uint8)


class SyntheticStreetDataset(Dataset):
    """Street scenes rendered on the fly; frame i of a split uses seed SPLIT_SEED_START[split] + i.

    Each item is a sample (see `jointdistill_core.data.sample`): image (3, H, W) in [0, 1],
    depth (1, H, W) metres (0 = sky), labels (H, W) int64, K (3, 3).
    """

    def __init__(self, split: str, num_frames: int, height: int, width: int):
        if split not in SPLIT_SEED_START:
            raise ValueError(f'split must be one of {sorted(SPLIT_SEED_START)}, got {split!r}')
        if num_frames < 0:
            raise ValueError(f'num_frames must be >= 0, got {num_frames}')
        self.split, self.num_frames = split, num_frames
        self.height, self.width = height, width

    def __len__(self) -> int:
        return self.num_frames

    def seed(self, index: int) -> int:
        return SPLIT_SEED_START[self.split] + index

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_frames:
            raise IndexError(f'frame {index} out of range for {self.num_frames} frames')
        frame = render_scene(self.seed(index), self.height, self.width)
        return make_sample(frame.image, frame.depth, frame.labels, frame.K)
