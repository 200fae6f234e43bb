"""Vegetation (label nature): broadleaf trees with trunks, branches and irregular crowns of
several leafy lobes with holes, conifers, bushes, hedges and potted plants (the pot is
object)."""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import NATURE, OBJECT
from jointdistill_core.data.synthetic.materials import leaves, mottled, plain
from jointdistill_core.data.synthetic.objects import Kit, Placement, single, uniform
from jointdistill_core.data.synthetic.primitives import Part, Thing

SUMMER = np.array([[0.18, 0.32, 0.09], [0.24, 0.38, 0.11], [0.14, 0.27, 0.11],
                   [0.3, 0.37, 0.14], [0.2, 0.3, 0.16]])
AUTUMN = np.array([[0.6, 0.45, 0.1], [0.55, 0.25, 0.07], [0.45, 0.4, 0.12]])
CONIFER = np.array([[0.08, 0.2, 0.1], [0.1, 0.22, 0.14], [0.12, 0.18, 0.08]])
BARK = np.array([[0.3, 0.24, 0.18], [0.38, 0.35, 0.3], [0.22, 0.18, 0.14]])


def _holes(kit: Kit, density: float):
    """Cut-out function for leafy lobes: about `density` of the surface is leaves."""
    noise, shift = kit.noise, kit.rng.uniform(0, 50, 3).astype(np.float32)
    threshold = np.float32(0.5 - 0.5 * (density - 0.5))

    def keep(local: np.ndarray) -> np.ndarray:
        x, y, z = local[:, 0] * 2.2, local[:, 1] * 2.2, local[:, 2] * 2.2
        return noise.smooth(x + 0.6 * z + shift[0], y - 0.5 * z + shift[1]) > threshold
    return keep


def _leaf_color(kit: Kit, autumn: bool) -> np.ndarray:
    return kit.palette.pick(AUTUMN if autumn else SUMMER, 0.04)


def tree(kit: Kit, place: Placement, scale: float = 1.0) -> Thing:
    """Broadleaf tree 4-14 m tall (times scale) or, one time in five, a conifer."""
    rng = kit.rng
    if rng.random() < 0.2:
        return conifer(kit, place, scale)
    trunk_h = uniform(rng, 1.6, 3.4) * scale
    trunk_r = uniform(rng, 0.1, 0.22) * scale ** 0.5
    crown_r = uniform(rng, 1.3, 3.0) * scale
    lean = rng.uniform(-0.15, 0.15, 2) * trunk_h
    crown_center = np.array([lean[0], lean[1], trunk_h + crown_r * uniform(rng, 0.65, 0.9)])
    bark = mottled(kit.noise, kit.palette.pick(BARK, 0.03), 4.0, 0.5)
    parts = [place.cylinder((0, 0, 0), (lean[0] * 1.3, lean[1] * 1.3, trunk_h + crown_r * 0.5),
                            trunk_r, NATURE, bark)]
    fork = np.array([lean[0], lean[1], trunk_h])
    for _ in range(rng.integers(2, 5)):
        angle = uniform(rng, 0, 2 * np.pi)
        reach = crown_r * uniform(rng, 0.4, 0.8)
        tip = fork + [reach * np.cos(angle), reach * np.sin(angle), crown_r * uniform(rng, 0.3,
                                                                                      0.8)]
        parts.append(place.capsule(fork, tip, trunk_r * 0.45, NATURE, bark))
    autumn = rng.random() < 0.12
    base_color = _leaf_color(kit, autumn)
    for _ in range(rng.integers(3, 7)):
        offset = rng.normal(0, 0.38, 3) * crown_r * np.array([1, 1, 0.7])
        radii = crown_r * rng.uniform(0.45, 0.75) * rng.uniform(0.8, 1.2, 3)
        radii[2] *= 0.85
        color = np.clip(base_color * rng.uniform(0.85, 1.15), 0, 1)
        parts.append(place.ellipsoid(crown_center + offset, radii, NATURE,
                                     leaves(kit.noise, color), yaw=uniform(rng, 0, np.pi),
                                     cutout=_holes(kit, 0.8)))
    proxy = [parts[0], place.ellipsoid(crown_center, (crown_r, crown_r, crown_r * 0.85), NATURE,
                                       leaves(kit.noise, base_color))]
    return Thing(parts, proxy)


def conifer(kit: Kit, place: Placement, scale: float = 1.0) -> Thing:
    """Spruce-like tree: a short trunk under stacked, narrowing dark lobes."""
    rng = kit.rng
    height = uniform(rng, 5, 14) * scale
    radius = height * uniform(rng, 0.18, 0.26)
    color = kit.palette.pick(CONIFER, 0.03)
    parts = [place.cylinder((0, 0, 0), (0, 0, height * 0.9), 0.06 * height ** 0.7 / 2, NATURE,
                            mottled(kit.noise, kit.palette.pick(BARK), 4.0, 0.4))]
    levels = rng.integers(4, 7)
    for level in range(levels):
        fraction = level / levels
        z = height * (0.2 + 0.72 * fraction)
        r = radius * (1.0 - 0.8 * fraction)
        parts.append(place.ellipsoid((0, 0, z), (r, r, height * 0.16), NATURE,
                                     leaves(kit.noise, color), cutout=_holes(kit, 0.85)))
    proxy = [parts[0], place.ellipsoid((0, 0, height * 0.55), (radius * 0.8, radius * 0.8,
                                                               height * 0.45), NATURE,
                                       leaves(kit.noise, color))]
    return Thing(parts, proxy)


def bush(kit: Kit, place: Placement, scale: float = 1.0) -> Thing:
    """One to three leafy lobes 0.4-1.4 m high."""
    rng = kit.rng
    color = _leaf_color(kit, rng.random() < 0.08)
    parts = []
    for _ in range(rng.integers(1, 4)):
        r = uniform(rng, 0.35, 0.8) * scale
        offset = rng.normal(0, 0.35, 2) * r
        radii = (r, r * uniform(rng, 0.8, 1.2), r * 0.8)
        parts.append(place.ellipsoid((offset[0], offset[1], r * 0.7), radii, NATURE,
                                     leaves(kit.noise, color), cutout=_holes(kit, 0.9)))
    return Thing(parts, parts[:1])


def hedge(kit: Kit, place: Placement, length: float, height: float, depth: float) -> Thing:
    """A clipped hedge `length` metres along local y."""
    color = _leaf_color(kit, False)
    part = place.box((0, 0, height / 2), (depth / 2, length / 2, height / 2), NATURE,
                     leaves(kit.noise, color))
    return single(part)


def potted_plant(kit: Kit, place: Placement) -> Thing:
    """A pot (object) with a leafy plant (nature), 0.5-1.6 m high."""
    rng = kit.rng
    pot_r, pot_h = uniform(rng, 0.15, 0.35), uniform(rng, 0.25, 0.5)
    pot = place.cylinder((0, 0, 0), (0, 0, pot_h), pot_r, OBJECT,
                         plain(kit.palette.pick([[0.6, 0.3, 0.2], [0.85, 0.85, 0.83],
                                                 [0.15, 0.15, 0.15]])))
    color = _leaf_color(kit, False)
    plant_h = uniform(rng, 0.3, 1.1)
    parts: list[Part] = [pot]
    for _ in range(rng.integers(2, 4)):
        offset = rng.normal(0, 0.1, 2)
        parts.append(place.ellipsoid((offset[0], offset[1], pot_h + plant_h * 0.5),
                                     (pot_r * 1.6, pot_r * 1.6, plant_h * 0.55), NATURE,
                                     leaves(kit.noise, color), cutout=_holes(kit, 0.9)))
    return Thing(parts, parts[:2])
