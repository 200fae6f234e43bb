"""Deterministic value noise for textures: one random lattice table per frame."""
from __future__ import annotations

import numpy as np

NOISE_SIZE = 64   # side of the lattice table (a power of two: indices wrap with a mask)
_MASK = NOISE_SIZE - 1


class Noise:
    """Value noise from a (64, 64) random table drawn from the frame's generator.

    Every function takes two coordinate arrays (any shape, same shape) in lattice units and
    returns float32 values in [0, 1) of that shape; the pattern repeats every 64 units.
    """

    def __init__(self, rng: np.random.Generator):
        self.flat = rng.random(NOISE_SIZE * NOISE_SIZE).astype(np.float32)

    def cell(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Piecewise-constant noise: one value per unit lattice cell."""
        ia = np.floor(a).astype(np.int64) & _MASK
        ib = np.floor(b).astype(np.int64) & _MASK
        return self.flat[ia * NOISE_SIZE + ib]

    def smooth(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bilinearly interpolated noise, features about one lattice unit wide."""
        a = np.asarray(a, np.float32)
        b = np.asarray(b, np.float32)
        fa, fb = np.floor(a), np.floor(b)
        ta, tb = a - fa, b - fb
        ia, ib = fa.astype(np.int64) & _MASK, fb.astype(np.int64) & _MASK
        row, next_row = ia * NOISE_SIZE, ((ia + 1) & _MASK) * NOISE_SIZE
        next_col = (ib + 1) & _MASK
        table = self.flat
        top_left = table[row + ib]
        bottom_left = table[next_row + ib]
        top = top_left + (table[row + next_col] - top_left) * tb
        bottom = bottom_left + (table[next_row + next_col] - bottom_left) * tb
        return top + (bottom - top) * ta

    def fractal(self, a: np.ndarray, b: np.ndarray, octaves: int = 2) -> np.ndarray:
        """Sum of `octaves` smooth octaves (each 2.7x finer, 0.55x weaker), normalised to [0, 1)."""
        total = np.zeros(np.shape(a), np.float32)
        weight, norm = 1.0, 0.0
        a = np.asarray(a, np.float32)
        b = np.asarray(b, np.float32)
        for octave in range(octaves):
            total += weight * self.smooth(a, b)
            norm += weight
            weight *= 0.55
            a = a * 2.7 + 11.3 * (octave + 1)
            b = b * 2.7 + 5.1 * (octave + 1)
        return total / np.float32(norm)

    def solid(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, scale: float) -> np.ndarray:
        """Noise of a 3-D point (metres) at `scale` lattice units per metre: two slanted
        2-D lookups averaged, so no face of a solid shows a straight seam."""
        x, y, z = x * np.float32(scale), y * np.float32(scale), z * np.float32(scale)
        return 0.5 * (self.smooth(x + 0.6 * z, y - 0.4 * z) + self.smooth(y + 0.5 * z + 7.7,
                                                                            x - 0.7 * z + 3.1))
