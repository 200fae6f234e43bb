"""The ground: exact ray casting of a two-level surface, in float64.

The ground is the plane Z = 0 inside a `low` region (roads, parking lots; everywhere when
there is no region) and the plane Z = raise_m outside it (sidewalks, verges, plazas), the
two joined by vertical kerb faces along the region's boundary. Regions are unions of strips
(straight roads, rectangles) and annulus sectors (curved roads), so every kerb is a line or a
circle and every intersection is a closed-form root.

A pixel ray from a camera above Z = raise_m meets the raised plane first; if that point is
outside the low region, it is the hit. Otherwise the ray goes on down to Z = 0 and the hit is
the low plane there, unless the ray leaves the low region on the way: then it meets the kerb
face at the first boundary crossing after which it is outside the region.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from jointdistill_core.data.synthetic.raycast import Canvas

LOW, RAISED, KERB = 0, 1, 2   # surface kinds passed to ground textures

# texture(px, py, kind, footprint) -> albedo (M, 3), labels (M,) uint8, gloss (M,) or float
GroundTexture = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                         tuple[np.ndarray, np.ndarray, np.ndarray | float]]


class Strip:
    """Points within half_width of a line: through (x0, y0) with heading (radians, 0 = +Y,
    > 0 turns towards -X); optionally only for s (metres along the line) in s_range."""

    def __init__(self, x0: float, y0: float, heading: float, half_width: float,
                 s_range: tuple[float, float] = (-np.inf, np.inf)):
        self.x0, self.y0, self.half_width = float(x0), float(y0), float(half_width)
        self.forward = (-np.sin(heading), np.cos(heading))
        self.right = (np.cos(heading), np.sin(heading))
        self.s_range = s_range

    def local(self, x, y):
        """(s along, lateral to the right) in metres."""
        dx, dy = x - self.x0, y - self.y0
        return (dx * self.forward[0] + dy * self.forward[1],
                dx * self.right[0] + dy * self.right[1])

    def contains(self, x, y) -> np.ndarray:
        s, lateral = self.local(x, y)
        return (np.abs(lateral) < self.half_width) & (s >= self.s_range[0]) & (s <= self.s_range[1])

    def crossings(self, ox: float, oy: float, dx: np.ndarray, dy: np.ndarray):
        """[(t, nx, ny)]: ray parameters where the ray crosses each boundary line, with the
        line's unit normal."""
        out = []
        s0, lat0 = self.local(ox, oy)
        ds = dx * self.forward[0] + dy * self.forward[1]
        dl = dx * self.right[0] + dy * self.right[1]
        with np.errstate(divide='ignore', invalid='ignore'):
            for edge in (-self.half_width, self.half_width):
                out.append(((edge - lat0) / dl, self.right))
            for edge in self.s_range:
                if np.isfinite(edge):
                    out.append(((edge - s0) / ds, self.forward))
        return out


class Annulus:
    """Points at distance r_in..r_out from (cx, cy) whose direction angle (radians, from
    +X towards +Y, seen with `flip` = -1 from the opposite side) lies in angle_range."""

    def __init__(self, cx: float, cy: float, r_in: float, r_out: float,
                 angle_range: tuple[float, float], flip: float = 1.0):
        self.cx, self.cy, self.r_in, self.r_out = float(cx), float(cy), float(r_in), float(r_out)
        self.angle_range = (min(angle_range), max(angle_range))
        self.flip = float(flip)

    def contains(self, x, y) -> np.ndarray:
        dx, dy = x - self.cx, y - self.cy
        r2 = dx * dx + dy * dy
        angle = np.arctan2(self.flip * dy, self.flip * dx)
        return ((r2 >= self.r_in ** 2) & (r2 <= self.r_out ** 2)
                & (angle >= self.angle_range[0]) & (angle <= self.angle_range[1]))

    def crossings(self, ox: float, oy: float, dx: np.ndarray, dy: np.ndarray):
        out = []
        fx, fy = ox - self.cx, oy - self.cy
        a = dx * dx + dy * dy
        b = fx * dx + fy * dy
        for radius in (self.r_in, self.r_out):
            disc = b * b - a * (fx * fx + fy * fy - radius * radius)
            with np.errstate(invalid='ignore'):
                root = np.sqrt(disc)
            for t in ((-b - root) / a, (-b + root) / a):
                out.append((t, None))   # radial normal, computed at the hit
        for angle in self.angle_range:
            along = (self.flip * np.cos(angle), self.flip * np.sin(angle))
            normal = (-along[1], along[0])
            with np.errstate(divide='ignore', invalid='ignore'):
                t = -(fx * normal[0] + fy * normal[1]) / (dx * normal[0] + dy * normal[1])
            out.append((t, normal))
        return out


class Union:
    """Points in any of the regions."""

    def __init__(self, *regions):
        self.regions = regions

    def contains(self, x, y) -> np.ndarray:
        inside = self.regions[0].contains(x, y)
        for region in self.regions[1:]:
            inside = inside | region.contains(x, y)
        return inside

    def crossings(self, ox, oy, dx, dy):
        return [item for region in self.regions for item in region.crossings(ox, oy, dx, dy)]

    def circle_centers(self) -> list[tuple[float, float]]:
        return [(r.cx, r.cy) for r in self.regions if isinstance(r, Annulus)]


@dataclass
class Ground:
    """low: region at Z = 0 (None: all ground at Z = 0). raise_m: height of the rest (m).
    texture: colours and labels of ground pixels (see GroundTexture). max_range_m: the
    ground ends at this horizontal distance from the camera (sky beyond)."""
    low: Strip | Annulus | Union | None
    raise_m: float
    texture: GroundTexture
    max_range_m: float = 300.0

    @property
    def levels(self) -> tuple[float, ...]:
        """Heights (metres) of the horizontal ground planes."""
        return (0.0,) if self.low is None or self.raise_m == 0 else (0.0, float(self.raise_m))

    def draw(self, canvas: Canvas) -> None:
        """Write the first ground hit of every pixel ray that meets the ground in range."""
        dx, dy, dz = (component.reshape(-1) for component in canvas.rays)
        ox, oy, oz = canvas.origin_floats
        index = np.flatnonzero(dz < -1e-12)
        dx, dy, dz = dx[index], dy[index], dz[index]
        t, kind, normal_xy = self._hits(ox, oy, oz, dx, dy, dz)
        px, py = ox + t * dx, oy + t * dy
        keep = (px - ox) ** 2 + (py - oy) ** 2 < self.max_range_m ** 2
        index, t, kind, px, py = index[keep], t[keep], kind[keep], px[keep], py[keep]
        normal = np.zeros((t.size, 3), np.float32)
        normal[:, 2] = 1.0
        kerb = kind == KERB
        normal[kerb, :2] = normal_xy[keep][kerb]
        normal[kerb, 2] = 0.0
        footprint = canvas.footprint(t.astype(np.float32), normal, index)
        albedo, labels, gloss = self.texture(px, py, kind, footprint)
        canvas.write(index, t, labels, albedo, normal, gloss, None)

    def _hits(self, ox, oy, oz, dx, dy, dz):
        t_low = -oz / dz
        kind = np.full(dz.size, LOW, np.uint8)
        normal_xy = np.zeros((dz.size, 2), np.float32)
        if self.low is None or self.raise_m == 0:
            return t_low, kind, normal_xy
        t_raised = (self.raise_m - oz) / dz
        raised = ~self.low.contains(ox + t_raised * dx, oy + t_raised * dy)
        kind[raised] = RAISED
        t = np.where(raised, t_raised, t_low)
        # Rays over the low region at the raised height: the first exit before Z = 0.
        down = np.flatnonzero(~raised)
        sx, sy = dx[down], dy[down]
        start, stop = t_raised[down], t_low[down]
        best = np.full(down.size, np.inf)
        best_normal = np.zeros((down.size, 2))
        step = 1e-4 / np.maximum(np.hypot(sx, sy), 1e-9)
        for crossing, line_normal in self.low.crossings(ox, oy, sx, sy):
            candidate = (crossing > start) & (crossing < stop) & (crossing < best)
            if not candidate.any():
                continue
            after = crossing + step
            leaves = candidate & ~self.low.contains(ox + after * sx, oy + after * sy)
            best = np.where(leaves, crossing, best)
            if line_normal is not None:
                best_normal[leaves] = line_normal
            else:
                best_normal[leaves] = np.nan   # radial: computed below
        exits = np.isfinite(best)
        chosen = down[exits]
        t[chosen] = best[exits]
        kind[chosen] = KERB
        hx, hy = ox + t[chosen] * dx[chosen], oy + t[chosen] * dy[chosen]
        normals = best_normal[exits]
        radial = np.isnan(normals[:, 0])
        if radial.any():
            centers = self.low.circle_centers() if isinstance(self.low, Union) else [
                (self.low.cx, self.low.cy)]
            cx, cy = centers[0]
            vx, vy = hx[radial] - cx, hy[radial] - cy
            length = np.hypot(vx, vy)
            normals[radial] = np.stack([vx / length, vy / length], axis=1)
        # Face the camera.
        facing = np.sign(normals[:, 0] * dx[chosen] + normals[:, 1] * dy[chosen])
        normal_xy[chosen] = -normals * facing[:, None]
        return t, kind, normal_xy
