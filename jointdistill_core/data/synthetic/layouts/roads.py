"""Road geometry: a centre line (straight, or straight-arc-straight) with street coordinates,
the cross-section of a street (lanes, parking lanes, sidewalks) and its road markings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.data.synthetic.ground import Annulus, Strip, Union
from jointdistill_core.data.synthetic.materials import band, dashes


class Centerline:
    """A road axis in the world: along +Y at X = x0 up to s = turn_start metres, then an arc
    of `curvature` (1/m, > 0 turns left) through `turn_angle` radians, then straight on.

    Street coordinates: s metres along the axis (s = Y before the turn), lateral metres to
    the right of the direction of travel. Headings are radians about Z, 0 = +Y, > 0 left.
    """

    def __init__(self, x0: float, turn_start: float = 0.0, curvature: float = 0.0,
                 turn_angle: float = 0.0):
        self.x0, self.s0 = float(x0), float(turn_start)
        self.k = float(curvature)
        self.length = abs(turn_angle / curvature) if curvature else 0.0
        self.end_heading = self.k * self.length
        if self.k:
            self.rho = 1.0 / self.k
            self.center = (self.x0 - self.rho, self.s0)
            self.end = (self.center[0] + self.rho * np.cos(self.end_heading),
                        self.center[1] + self.rho * np.sin(self.end_heading))
        else:
            self.end = (self.x0, self.s0)

    @property
    def curved(self) -> bool:
        return self.k != 0.0

    def pose(self, s):
        """(x, y, heading) of the axis at s (floats or arrays)."""
        s = np.asarray(s, float)
        if not self.curved:
            return np.full(s.shape, self.x0), s, np.zeros(s.shape)
        sigma = np.clip(s - self.s0, 0, self.length)
        heading = self.k * sigma
        x = self.center[0] + self.rho * np.cos(heading)
        y = self.center[1] + self.rho * np.sin(heading)
        before, after = s < self.s0, s > self.s0 + self.length
        x = np.where(before, self.x0, x)
        y = np.where(before, s, y)
        rest = s - self.s0 - self.length
        x = np.where(after, self.end[0] - rest * np.sin(self.end_heading), x)
        y = np.where(after, self.end[1] + rest * np.cos(self.end_heading), y)
        return x, y, heading

    def to_world(self, s, lateral):
        """World (x, y, heading) of the street point (s, lateral)."""
        x, y, heading = self.pose(s)
        return x + lateral * np.cos(heading), y + lateral * np.sin(heading), heading

    def to_local(self, x, y):
        """Street coordinates (s, lateral) of world points, from the nearest road piece."""
        s_before, lat_before = y, x - self.x0
        if not self.curved:
            return s_before, lat_before
        sign = np.sign(self.rho)
        vx, vy = x - self.center[0], y - self.center[1]
        heading = np.arctan2(sign * vy, sign * vx)
        s_arc = self.s0 + heading / self.k
        lat_arc = sign * np.hypot(vx, vy) - self.rho
        fx, fy = -np.sin(self.end_heading), np.cos(self.end_heading)
        dx, dy = x - self.end[0], y - self.end[1]
        s_after = self.s0 + self.length + dx * fx + dy * fy
        lat_after = dx * fy - dy * fx
        penalty_before = np.maximum(s_before - self.s0, 0)
        penalty_arc = np.maximum(np.maximum(self.s0 - s_arc, s_arc - self.s0 - self.length), 0)
        penalty_after = np.maximum(self.s0 + self.length - s_after, 0)
        scores = np.stack([np.abs(lat_before) + 10 * penalty_before,
                           np.abs(lat_arc) + 10 * penalty_arc,
                           np.abs(lat_after) + 10 * penalty_after])
        best = np.argmin(scores, axis=0)
        s = np.choose(best, [s_before, s_arc, s_after])
        lateral = np.choose(best, [lat_before, lat_arc, lat_after])
        return s, lateral

    def region(self, half_width: float):
        """Ground region within half_width of the axis (the carriageway)."""
        if not self.curved:
            return Strip(self.x0, 0.0, 0.0, half_width)
        radius = abs(self.rho)
        return Union(
            Strip(self.x0, 0.0, 0.0, half_width, (-np.inf, self.s0)),
            Annulus(*self.center, radius - half_width, radius + half_width,
                    (0.0, self.end_heading), np.sign(self.rho)),
            Strip(*self.end, self.end_heading, half_width, (0.0, np.inf)))


@dataclass
class CrossSection:
    """A street across: parking lanes (2.2 m) at the kerbs where present, then driving
    lanes sharing the rest; sidewalks beyond the kerbs. Index 0 = left, 1 = right."""
    half_width: float
    lane_count: int
    parking: tuple[bool, bool]
    sidewalk: tuple[float, float]
    kerb_m: float
    two_way: bool
    drive_right: bool

    PARKING_M = 2.2

    def driving_edges(self) -> tuple[float, float]:
        """Lateral (metres) of the left and right edge of the driving lanes."""
        left = -self.half_width + (self.PARKING_M if self.parking[0] else 0.0)
        right = self.half_width - (self.PARKING_M if self.parking[1] else 0.0)
        return left, right

    def lane_width(self) -> float:
        left, right = self.driving_edges()
        return (right - left) / self.lane_count

    def lane_centers(self) -> np.ndarray:
        """(lane_count,) lateral positions of the driving lane centres, left to right."""
        left, _ = self.driving_edges()
        width = self.lane_width()
        return left + width * (np.arange(self.lane_count) + 0.5)

    def lane_direction(self, lateral: float) -> int:
        """+1 if traffic at this lateral position drives along +s, -1 against it."""
        if not self.two_way:
            return 1
        ahead_on_right = self.drive_right
        return 1 if (lateral > 0) == ahead_on_right else -1


@dataclass
class Markings:
    """Paint on a street: lane lines, edge lines, parking bays, a zebra crossing."""
    color: np.ndarray
    dash_period: float
    dash_length: float
    phase: float
    centre_style: str          # 'dashed', 'solid' or 'double'
    crossing_s: float | None   # start of a zebra crossing (metres along), or None

    def coverage(self, section: CrossSection, s, lateral, footprint) -> np.ndarray:
        """(M,) paint coverage in [0, 1] of road points (s, lateral)."""
        width = 0.12
        left, right = section.driving_edges()
        lane = section.lane_width()
        paint = np.zeros(np.shape(s), np.float32)
        centre_index = section.lane_count // 2 if section.two_way else -1
        for index in range(1, section.lane_count):
            position = left + index * lane
            across = band(lateral, position, width, footprint)
            if index == centre_index and self.centre_style != 'dashed':
                if self.centre_style == 'double':
                    across = np.maximum(band(lateral, position - 0.1, width, footprint),
                                        band(lateral, position + 0.1, width, footprint))
                paint = np.maximum(paint, across)
            else:
                paint = np.maximum(paint, across * dashes(s, self.dash_period, self.dash_length,
                                                          footprint, self.phase))
        for parked, edge, sign in ((section.parking[0], left, 1), (section.parking[1], right, -1)):
            if parked:
                bay = dashes(s, 5.5, 0.12, footprint, self.phase)
                outside = (lateral - edge) * sign < 0
                paint = np.maximum(paint, bay * outside * (np.abs(lateral - edge) < 2.0))
                paint = np.maximum(paint, band(lateral, edge, width, footprint))
            else:
                paint = np.maximum(paint, band(lateral, edge + sign * 0.3, width, footprint))
        if self.crossing_s is not None:
            inside = (s > self.crossing_s) & (s < self.crossing_s + 4.0) & (
                np.abs(lateral) < section.half_width)
            stripes = dashes(lateral, 1.0, 0.5, footprint, 0.0)
            paint = np.maximum(paint, stripes * inside)
            stop = band(s, self.crossing_s - 1.5, 0.4, footprint) * (lateral > left) * (
                lateral < right)
            paint = np.maximum(paint, stop)
        return paint
