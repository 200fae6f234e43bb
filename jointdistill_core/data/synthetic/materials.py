"""Colours with domain randomisation, procedural textures, and the materials built from them.

Textures are functions of surface coordinates in metres (u, v) and of the pixel footprint
(metres one pixel covers there): pattern contrast fades out where a pixel is wider than the
pattern's features, a cheap form of texture filtering that keeps fine patterns (bricks,
tiles, grain) from aliasing into moire at low resolution. Every texture returns float32.
"""
from __future__ import annotations

import numpy as np

from jointdistill_core.data.synthetic.noise import Noise
from jointdistill_core.data.synthetic.primitives import Hit, Material

_GREY_AXIS = np.ones(3) / np.sqrt(3.0)


def _hue_rotation(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about the grey axis (a hue shift)."""
    k = np.array([[0, -_GREY_AXIS[2], _GREY_AXIS[1]], [_GREY_AXIS[2], 0, -_GREY_AXIS[0]],
                  [-_GREY_AXIS[1], _GREY_AXIS[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


class Palette:
    """The colour choices of one frame, with domain randomisation.

    Every colour of a scene passes through `color`. Per frame a hue rotation (in 35 % of
    frames, up to +-50 degrees) and a saturation scale (0.6-1.3) apply to all of them, and in
    `wild_fraction` of frames every colour is drawn uniformly at random instead, so the
    network cannot recognise a class by its colour.
    """

    def __init__(self, rng: np.random.Generator, wild_fraction: float = 0.1):
        self.rng = rng
        self.wild = bool(rng.random() < wild_fraction)
        angle = np.deg2rad(rng.uniform(-50, 50)) if rng.random() < 0.35 else 0.0
        self.transform = (rng.uniform(0.6, 1.3) * _hue_rotation(angle)).tolist()

    def color(self, base, jitter: float = 0.05) -> np.ndarray:
        """(3,) float32 RGB in [0, 1]: `base` jittered by +-jitter per channel, then the
        frame's hue and saturation (or a random colour in a wild frame)."""
        if self.wild:
            return self.rng.uniform(0.03, 0.95, 3).astype(np.float32)
        noise = self.rng.random(3).tolist()
        color = [min(max(float(b) + jitter * (2 * n - 1), 0.0), 1.0) for b, n in zip(base, noise)]
        grey = sum(color) / 3
        centred = [c - grey for c in color]
        return np.array([min(max(grey + sum(m * c for m, c in zip(row, centred)), 0.01), 1.0)
                         for row in self.transform], np.float32)

    def pick(self, options, jitter: float = 0.05) -> np.ndarray:
        """One of `options` ((N, 3) RGB) at random, through `color`."""
        options = np.asarray(options, float)
        return self.color(options[self.rng.integers(len(options))], jitter)


# ---------------------------------------------------------------------------- helpers

def fade(footprint: np.ndarray | None, feature_m: float) -> np.ndarray | float:
    """Contrast weight in [0, 1] of a pattern whose features are `feature_m` metres wide:
    1 while a pixel covers under a quarter of a feature, 0 from three quarters on."""
    if footprint is None:
        return 1.0
    return np.clip(1.5 - 2.0 * footprint / np.float32(feature_m), 0, 1)


def band(x: np.ndarray, center, width: float, footprint: np.ndarray | None) -> np.ndarray:
    """(M,) fraction of each pixel's footprint (an interval of `footprint` metres centred on
    x) covered by the band center +- width / 2 (all metres): a box-filtered stripe."""
    pixel = np.float32(0.01) if footprint is None else np.maximum(footprint, np.float32(1e-3))
    low = np.maximum(x - pixel / 2, center - np.float32(width / 2))
    high = np.minimum(x + pixel / 2, center + np.float32(width / 2))
    return np.clip((high - low) / pixel, 0, 1)


def lines(coordinate: np.ndarray, pitch: float, width: float,
          footprint: np.ndarray | None, offset: float = 0.0) -> np.ndarray:
    """(M,) coverage in [0, 1] of lines `width` metres wide every `pitch` metres along a
    coordinate; far away it tends to the lines' mean coverage width / pitch."""
    phase = np.mod(coordinate - np.float32(offset), np.float32(pitch))
    distance = np.minimum(phase, np.float32(pitch) - phase)
    weight = fade(footprint, pitch)
    return band(distance, 0.0, width, footprint) * weight + np.float32(width / pitch) * (1 - weight)


def dashes(coordinate: np.ndarray, period: float, length: float,
           footprint: np.ndarray | None, phase: float = 0.0) -> np.ndarray:
    """(M,) coverage of dashes `length` metres long every `period` metres along a
    coordinate (lane markings); tends to length / period far away."""
    position = np.mod(coordinate + np.float32(phase), np.float32(period))
    inside = band(position, length / 2, length, footprint) + band(position - np.float32(period),
                                                                 length / 2, length, footprint)
    weight = fade(footprint, period)
    return np.clip(inside, 0, 1) * weight + np.float32(length / period) * (1 - weight)


def face_uv(hit: Hit, half) -> tuple[np.ndarray, np.ndarray]:
    """Box face coordinates in metres from the face's lower corner: u along the face
    horizontally, v up the face (side faces) or along local y (top and bottom)."""
    axis = hit.face // 2
    x = hit.local[:, 0] + np.float32(half[0])
    y = hit.local[:, 1] + np.float32(half[1])
    z = hit.local[:, 2] + np.float32(half[2])
    u = np.where(axis == 0, y, x)
    v = np.where(axis == 2, y, z)
    return u, v


def _tone(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    return np.asarray(base, np.float32)[None, :] * factor[:, None]


# ---------------------------------------------------------------------------- textures

def asphalt(noise: Noise, base, u, v, footprint) -> np.ndarray:
    """(M, 3) road surface: blotches, grain and darker patches."""
    blotch = noise.fractal(u * 0.3, v * 0.3)
    grain = (noise.cell(u * 14.0, v * 14.0) - 0.5) * fade(footprint, 0.08)
    patch = noise.smooth(u * 0.07 + 3.3, v * 0.05 + 9.1) > 0.78
    factor = 0.78 + 0.34 * blotch + 0.22 * grain - 0.1 * patch
    return _tone(base, factor)


def concrete(noise: Noise, base, u, v, footprint, slab_m: float = 2.0) -> np.ndarray:
    """(M, 3) concrete with stains and joints every slab_m metres."""
    stain = noise.fractal(u * 0.5 + 1.7, v * 0.5)
    joint = np.maximum(lines(u, slab_m, 0.02, footprint), lines(v, slab_m, 0.02, footprint))
    grain = (noise.cell(u * 20.0, v * 20.0) - 0.5) * fade(footprint, 0.05)
    return _tone(base, 0.82 + 0.3 * stain + 0.1 * grain - 0.35 * joint)


def pavers(noise: Noise, base, u, v, footprint, size_u: float, size_v: float,
           joint_m: float = 0.012, variation: float = 0.18) -> np.ndarray:
    """(M, 3) tiles or paving stones of size_u x size_v metres, each its own tone, in a
    running bond (every other row shifted by half a tile)."""
    row = np.floor(v / np.float32(size_v))
    shifted = u + np.mod(row, 2) * np.float32(size_u / 2)
    column = np.floor(shifted / np.float32(size_u))
    tone = (noise.cell(column * 1.37 + 0.5, row * 2.11 + 0.5) - 0.5) * fade(footprint, size_u)
    joint = np.maximum(lines(shifted, size_u, joint_m, footprint),
                       lines(v, size_v, joint_m, footprint))
    dirt = noise.fractal(u * 0.4, v * 0.4)
    return _tone(base, 0.92 + variation * tone + 0.18 * (dirt - 0.5) - 0.4 * joint)


def brick(noise: Noise, brick_color, mortar_color, u, v, footprint) -> np.ndarray:
    """(M, 3) brickwork (0.225 x 0.075 m bricks, 10 mm joints) on a vertical face."""
    row = np.floor(v / np.float32(0.075))
    shifted = u + np.mod(row, 2) * np.float32(0.1125)
    tone = (noise.cell(np.floor(shifted / np.float32(0.225)) * 1.3, row * 1.7) - 0.5)
    tone = tone * fade(footprint, 0.075)
    joint = np.maximum(lines(shifted, 0.225, 0.01, footprint), lines(v, 0.075, 0.01, footprint))
    weathering = noise.fractal(u * 0.6, v * 0.6)
    color = _tone(brick_color, 0.9 + 0.35 * tone + 0.2 * (weathering - 0.5))
    mortar = np.asarray(mortar_color, np.float32)
    return color * (1 - joint[:, None]) + mortar * joint[:, None]


def plaster(noise: Noise, base, u, v, footprint) -> np.ndarray:
    """(M, 3) painted render with weathering streaks running down."""
    streak = noise.smooth(u * 1.5, v * 0.15)
    blotch = noise.fractal(u * 0.35 + 4.0, v * 0.35)
    return _tone(base, 0.86 + 0.14 * blotch + 0.12 * (streak - 0.5))


def foliage(noise: Noise, base, px, py, pz, footprint) -> np.ndarray:
    """(M, 3) leaves: clumps of light and dark leaves with dark gaps, in 3-D (no seams)."""
    clumps = noise.solid(px, py, pz, 1.6)
    leaves = (noise.solid(px + 3.1, py, pz, 9.0) - 0.5) * fade(footprint, 0.12)
    factor = 0.45 + 0.85 * clumps + 0.5 * leaves
    color = _tone(base, factor)
    color[:, 0] *= 0.9 + 0.25 * clumps           # sunlit clumps turn yellowish
    return color


def grass(noise: Noise, base, dirt_color, u, v, footprint) -> np.ndarray:
    """(M, 3) lawn or verge with worn, dirt-coloured patches."""
    mix = np.clip((noise.fractal(u * 0.15 + 3.7, v * 0.15) - 0.45) * 2.5, 0, 1)
    blades = (noise.cell(u * 25.0, v * 25.0) - 0.5) * fade(footprint, 0.04)
    variation = noise.fractal(u * 0.8, v * 0.8)
    color = _tone(base, 0.75 + 0.45 * variation + 0.25 * blades)
    dirt = np.asarray(dirt_color, np.float32)[None, :]
    return color * (1 - mix[:, None]) + dirt * mix[:, None] * (0.8 + 0.3 * variation[:, None])


def wood(noise: Noise, base, u, v, footprint) -> np.ndarray:
    """(M, 3) wood grain running along u."""
    grain = noise.smooth(u * 0.8, v * 18.0)
    rings = np.sin((v * 40.0 + 6.0 * grain).astype(np.float32)) * fade(footprint, 0.02)
    return _tone(base, 0.85 + 0.15 * grain + 0.07 * rings)


def stripes(u, width: float, colors, footprint) -> np.ndarray:
    """(M, 3) alternating bands of `colors` (K, 3), each `width` metres (hazard markings)."""
    colors = np.asarray(colors, np.float32)
    index = np.floor(u / np.float32(width)).astype(np.int64) % len(colors)
    weight = fade(footprint, width)
    if np.ndim(weight):
        return colors[index] * weight[:, None] + colors.mean(axis=0) * (1 - weight[:, None])
    return colors[index]


# ---------------------------------------------------------------------------- materials

def plain(color, gloss: float = 0.0, emission=None) -> Material:
    """One colour everywhere."""
    return Material(np.asarray(color, np.float32), gloss, emission)


def mottled(noise: Noise, color, scale: float = 2.0, strength: float = 0.3,
            gloss: float = 0.0) -> Material:
    """`color` varied by 3-D noise of relative strength `strength` at `scale` per metre."""
    color = np.asarray(color, np.float32)

    def albedo(hit: Hit) -> np.ndarray:
        n = noise.solid(hit.px, hit.py, hit.pz, scale)
        return _tone(color, 1 + strength * (n - 0.5))
    return Material(albedo, gloss)


def leaves(noise: Noise, color) -> Material:
    """Foliage of crowns, bushes and hedges."""
    color = np.asarray(color, np.float32)

    def albedo(hit: Hit) -> np.ndarray:
        out = foliage(noise, color, hit.px, hit.py, hit.pz, hit.footprint)
        out[hit.face == 1] *= 0.55      # inner leaves, seen through gaps, lie in the shade
        return out
    return Material(albedo)


def box_texture(half, texture) -> Material:
    """A material from a texture(u, v, footprint, hit) of a box's face coordinates."""
    def albedo(hit: Hit) -> np.ndarray:
        u, v = face_uv(hit, half)
        return texture(u, v, hit.footprint, hit)
    return Material(albedo)
