"""The z-buffer every surface is drawn into, with screen-space culling and shadow rays.

Each part is intersected only with the pixels of its projected bounding box, nearest parts
first; a part whose box lies entirely behind surfaces already drawn there is skipped.
Objects are intersected in float32, the ground (ground.py) in float64.
"""
from __future__ import annotations

import numpy as np

from jointdistill_core.data.sample import IGNORE_INDEX
from jointdistill_core.data.synthetic.primitives import NEAR_M, Part


class Canvas:
    """Per-pixel buffers of the first surface along each pixel ray.

    depth: (H, W) float64 metres along the optical axis (inf = nothing hit yet). labels:
    (H, W) uint8 (255 = nothing). albedo, normal, emission: (H, W, 3) float32. gloss: (H, W).
    rays: (3, H, W) float64 world directions with optical z = 1; origin: (3,) camera centre.
    """

    def __init__(self, rays: np.ndarray, origin: np.ndarray, K: np.ndarray,
                 rotation: np.ndarray):
        _, self.height, self.width = rays.shape
        self.rays, self.origin, self.K, self.rotation = rays, origin, K, rotation
        self.rays32 = rays.astype(np.float32)
        self._rays_flat = self.rays32.reshape(3, -1)
        self._flat_index = np.arange(self.height * self.width).reshape(self.height, self.width)
        self.origin_floats = tuple(float(value) for value in origin)
        shape = (self.height, self.width)
        self.depth = np.full(shape, np.inf)
        self.labels = np.full(shape, IGNORE_INDEX, np.uint8)
        self.albedo = np.zeros(shape + (3,), np.float32)
        self.normal = np.zeros(shape + (3,), np.float32)
        self.emission = np.zeros(shape + (3,), np.float32)
        self.gloss = np.zeros(shape, np.float32)
        self._emissive = False       # any emission written yet (else no need to clear it)
        # Metres covered by one pixel per metre of depth (for texture filtering).
        self.pixel_angle = 1.0 / float(K[0, 0])

    # ------------------------------------------------------------------ writing

    def write(self, flat: np.ndarray, depth: np.ndarray, label, albedo: np.ndarray,
              normal: np.ndarray, gloss, emission: np.ndarray | None) -> None:
        """Store surfaces at flat pixel indices (M,): depth (M,) metres, label (M,) or one id,
        albedo and normal (M, 3), gloss (M,) or one value, emission (M, 3) or None."""
        self.depth.reshape(-1)[flat] = depth
        self.labels.reshape(-1)[flat] = label
        self.albedo.reshape(-1, 3)[flat] = albedo
        self.normal.reshape(-1, 3)[flat] = normal
        self.gloss.reshape(-1)[flat] = gloss
        if emission is not None:
            self.emission.reshape(-1, 3)[flat] = emission
            self._emissive = True
        elif self._emissive:
            self.emission.reshape(-1, 3)[flat] = 0.0

    def footprint(self, depth: np.ndarray, normal: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """(M,) metres one pixel spans on a surface at `depth` with `normal` (M, 3): wider
        where the surface is seen at a grazing angle."""
        rays = self.rays32.reshape(3, -1)[:, flat]
        length = np.sqrt((rays * rays).sum(axis=0))
        cosine = np.abs((normal * rays.T).sum(axis=1)) / length
        return (depth * length * np.float32(self.pixel_angle) / np.maximum(cosine, 0.15)
                ).astype(np.float32)

    # ------------------------------------------------------------------ culling

    def screen_windows(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel rectangles covering P projected convex point sets, all at once.

        points: (P, N, 3) world. A set partly behind the camera is clipped at the near plane
        (its hull's edges to the points behind are cut where they cross it). Returns (P, 4)
        int [row0, row1, col0, col1] (empty when row0 >= row1 or col0 >= col1: off-screen)
        and (P,) the nearest point's optical z (clipped to the near plane).
        """
        cam = (points - self.origin) @ self.rotation   # R^T (p - C) per point
        z = cam[..., 2]
        front = z > NEAR_M
        straddles = front.any(axis=1) & ~front.all(axis=1)
        if straddles.any():
            cam = np.concatenate([cam, self._near_plane_cuts(cam, front)], axis=1)
            z = cam[..., 2]
            front = z > NEAR_M * 0.999
        safe_z = np.where(front, z, np.inf)
        u = self.K[0, 0] * cam[..., 0] / safe_z + self.K[0, 2]
        v = self.K[1, 1] * cam[..., 1] / safe_z + self.K[1, 2]
        big = np.float64(1e9)
        windows = np.stack([np.floor(np.where(front, v, big).min(axis=1)),
                            np.ceil(np.where(front, v, -big).max(axis=1)) + 1,
                            np.floor(np.where(front, u, big).min(axis=1)),
                            np.ceil(np.where(front, u, -big).max(axis=1)) + 1], axis=1)
        windows = np.clip(windows, -1, [[self.height, self.height, self.width, self.width]])
        windows = np.maximum(windows, 0).astype(np.int64)
        windows[~front.any(axis=1)] = 0                 # entirely behind the camera
        return windows, np.where(front, z, np.inf).min(axis=1)

    @staticmethod
    def _near_plane_cuts(cam: np.ndarray, front: np.ndarray) -> np.ndarray:
        """(P, N * N, 3) points where segments between points in front of and behind the
        near plane cross it (NaN-free: other pairs give points behind the plane)."""
        count = cam.shape[1]
        i, j = np.triu_indices(count, 1)
        a, b = cam[:, i], cam[:, j]
        crossing = front[:, i] != front[:, j]
        dz = b[..., 2] - a[..., 2]
        t = np.where(crossing, (NEAR_M - a[..., 2]) / np.where(crossing, dz, 1.0), 0.0)
        cut = a + t[..., None] * (b - a)
        cut[..., 2] = np.where(crossing, NEAR_M, -1.0)
        return cut

    # ------------------------------------------------------------------ primary rays

    def draw(self, parts: list[Part]) -> None:
        """Z-buffer the parts, nearest first, skipping off-screen and hidden ones.

        Within a part's screen box only pixels whose current depth lies beyond the part's
        nearest corner can change; when few can, only those rays are intersected."""
        if not parts:
            return
        corners = np.stack([part.shape.bounds() for part in parts])
        distances = ((corners.mean(axis=1) - self.origin) ** 2).sum(axis=1)
        windows, near_z = self.screen_windows(corners)
        for index in np.argsort(distances, kind='stable'):
            row0, row1, col0, col1 = windows[index]
            if row0 >= row1 or col0 >= col1:
                continue
            rows, cols = slice(row0, row1), slice(col0, col1)
            open_ = self.depth[rows, cols] > near_z[index]
            count = np.count_nonzero(open_)
            if count == 0:
                continue
            if count < 0.6 * open_.size:
                flat = self._flat_index[rows, cols][open_]
                self._draw_rays(parts[index], tuple(self._rays_flat[i][flat] for i in range(3)),
                                flat, None)
            else:
                self._draw_rays(parts[index], tuple(self.rays32[i, rows, cols] for i in range(3)),
                                self._flat_index[rows, cols], self.depth[rows, cols])

    def _draw_rays(self, part: Part, direction: tuple, flat_index: np.ndarray,
                   depth: np.ndarray | None) -> None:
        """Intersect the part with rays (1-D gathered or a 2-D window view) whose flat pixel
        indices are flat_index; depth: the current depths of those pixels (None: gather)."""
        t, state = part.shape.distance(self.origin_floats, direction)
        if depth is None:
            depth = self.depth.reshape(-1)[flat_index]
        won = np.nonzero(t < depth)
        if won[0].size == 0:
            return
        t_won = t[won]
        hit = part.shape.surface(state, won, self.origin_floats, direction, t_won)
        flat = flat_index[won]
        hit.footprint_fn = lambda: self.footprint(t_won, hit.normal, flat)
        albedo, gloss, emission = part.material.evaluate(hit)
        self.write(flat, t_won, part.label, albedo, hit.normal, gloss, emission)

    # ------------------------------------------------------------------ shadows

    def surface_points(self) -> np.ndarray:
        """(H, W, 3) float32 world points of the drawn surfaces (garbage where none)."""
        depth = np.where(np.isfinite(self.depth), self.depth, 0.0).astype(np.float32)
        return (self.rays32 * depth).transpose(1, 2, 0) + self.origin.astype(np.float32)

    def shadowed(self, casters: list[Part], light: np.ndarray, floor_z: float = 0.0,
                 max_length_m: float = 80.0) -> np.ndarray:
        """(H, W) bool: the surface point sees none of the light along unit direction `light`
        (towards the light) because a caster is in the way. Only pixels facing the light are
        tested; each caster only within the screen box of its shadow volume (its bounding box
        swept away from the light down to Z = floor_z, at most max_length_m)."""
        shadowed = np.zeros(self.height * self.width, bool)
        if not casters:
            return shadowed.reshape(self.height, self.width)
        normal = self.normal.reshape(-1, 3)
        facing = np.isfinite(self.depth.reshape(-1)) & (normal @ light.astype(np.float32) > 0)
        points = (self.surface_points().reshape(-1, 3) + normal * np.float32(0.01))
        corners = np.stack([part.shape.bounds() for part in casters])
        drop = np.clip((corners[..., 2] - floor_z) / max(light[2], 1e-3), 0, max_length_m)
        swept = corners - drop[..., None] * light
        windows, _ = self.screen_windows(np.concatenate([corners, swept], axis=1))
        direction = tuple(np.float32(value) for value in light)   # x / 0 -> inf, not an error
        candidates = facing.reshape(self.height, self.width)
        flat_index = np.arange(self.height * self.width).reshape(self.height, self.width)
        for part, (row0, row1, col0, col1) in zip(casters, windows):
            if row0 >= row1 or col0 >= col1:
                continue
            window = candidates[row0:row1, col0:col1]
            flat = flat_index[row0:row1, col0:col1][window]
            flat = flat[~shadowed[flat]]
            if flat.size == 0:
                continue
            origin = tuple(points[flat, axis] for axis in range(3))
            t, _ = part.shape.distance(origin, direction)
            shadowed[flat[t < np.inf]] = True
        return shadowed.reshape(self.height, self.width)
