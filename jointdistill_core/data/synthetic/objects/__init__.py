"""Objects people recognise, built from primitives: each function returns a `Thing`.

Every object is modelled in its own frame (x right, y forward, z up, metres, origin on the
ground at its centre) and placed with a `Placement` (position and heading).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.data.synthetic.materials import Palette
from jointdistill_core.data.synthetic.noise import Noise
from jointdistill_core.data.synthetic.primitives import (
    Box,
    Capsule,
    Convex,
    Cylinder,
    Ellipsoid,
    Material,
    Part,
    Thing,
    rotation_from_axis,
    yaw_rotation,
)


@dataclass
class Kit:
    """What every object builder draws from: the frame's random generator, noise, palette,
    and whether lamps and windows are lit (dusk, indoors)."""
    rng: np.random.Generator
    noise: Noise
    palette: Palette
    lights_on: bool = False


class Placement:
    """A local frame on the ground: origin (x, y, z) metres and heading yaw (radians,
    0 = local y along world +Y, > 0 turns left). Builds parts from local coordinates."""

    def __init__(self, x: float, y: float, z: float = 0.0, yaw: float = 0.0):
        self.origin = np.array([x, y, z], float)
        self.yaw = float(yaw)
        self.rotation = yaw_rotation(yaw)

    def point(self, local) -> np.ndarray:
        """World position (3,) of a local point."""
        return self.origin + self.rotation @ np.asarray(local, float)

    def block(self, half, label: int, material: Material, cutout=None) -> Part:
        """A box of half extents `half` standing on the ground at the placement."""
        return self.box((0, 0, half[2]), half, label, material, cutout=cutout)

    def box(self, center, half, label: int, material: Material, pitch: float = 0.0,
            roll: float = 0.0, yaw: float = 0.0, shadow: bool = True, cutout=None) -> Part:
        rotation = self.rotation @ yaw_rotation(yaw, pitch, roll)
        return Part(Box(self.point(center), half, rotation, cutout=cutout), label, material, shadow)

    def ellipsoid(self, center, half, label: int, material: Material, yaw: float = 0.0,
                  cutout=None, shadow: bool = True) -> Part:
        rotation = self.rotation @ yaw_rotation(yaw)
        return Part(Ellipsoid(self.point(center), half, rotation, cutout), label, material, shadow)

    def cylinder(self, start, end, radius: float, label: int, material: Material,
                 shadow: bool = True) -> Part:
        """Round cylinder between two local points."""
        return Part(Cylinder.between(self.point(start), self.point(end), radius), label,
                    material, shadow)

    def disc(self, center, axis, radius: float, thickness: float, label: int,
             material: Material) -> Part:
        """Flat cylinder (a round sign, a wheel) facing along the local `axis`."""
        axis_world = self.rotation @ np.asarray(axis, float)
        rotation = rotation_from_axis(axis_world)
        return Part(Cylinder(self.point(center), (radius, radius, thickness / 2), rotation),
                    label, material)

    def capsule(self, start, end, radius: float, label: int, material: Material) -> Part:
        return Part(Capsule(self.point(start), self.point(end), radius), label, material)

    def prism(self, center, profile_yz, half_width: float, label: int, material: Material,
              shadow: bool = True) -> Part:
        """Convex polygon (N, 2) in the local (y, z) plane, counter-clockwise, extruded
        +-half_width along local x, its origin at local `center`."""
        shape = Convex.prism(self.point(center), profile_yz, half_width, self.rotation)
        return Part(shape, label, material, shadow)


def single(part: Part) -> Thing:
    """An object of one part, which is also its stand-in and casts its shadow."""
    return Thing([part], [part])


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One uniform draw in [low, high) as a Python float."""
    return float(rng.uniform(low, high))
