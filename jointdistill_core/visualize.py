"""Vectorised colouring of depth and labels for figures, reports and the node's visual topics."""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import class_colors

_TURBO_LUT: np.ndarray | None = None


def _turbo_lut() -> np.ndarray:
    global _TURBO_LUT
    if _TURBO_LUT is None:
        from matplotlib import colormaps
        _TURBO_LUT = (colormaps['turbo'](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return _TURBO_LUT


def colorize_depth(depth: np.ndarray, max_depth: float | None = None,
                   min_depth: float = 0.0) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB, near = red, far = blue (turbo, inverted).

    Invalid pixels (0, NaN, +-Inf) are black. `max_depth` defaults to the 99th percentile
    of the valid pixels.
    """
    depth = np.asarray(depth, np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if max_depth is None:
        max_depth = float(np.percentile(depth[valid], 99)) if valid.any() else 1.0
    scale = 255.0 / max(max_depth - min_depth, 1e-6)
    index = np.clip((max_depth - np.where(valid, depth, max_depth)) * scale, 0, 255).astype(np.uint8)
    rgb = _turbo_lut()[index]
    rgb[~valid] = 0
    return rgb


def colorize_labels(labels: np.ndarray, num_classes: int = 7) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ids outside [0, num_classes) are black."""
    palette = np.zeros((256, 3), np.uint8)
    palette[:num_classes] = class_colors(num_classes)
    return palette[np.asarray(labels, np.uint8)]


def overlay_labels(image: np.ndarray, labels: np.ndarray, num_classes: int = 7,
                   alpha: float = 0.5) -> np.ndarray:
    """Blend label colours over an (H, W, 3) uint8 RGB image; void pixels keep the image."""
    colors = colorize_labels(labels, num_classes).astype(np.uint16)
    blended = ((1.0 - alpha) * image + alpha * colors).astype(np.uint8)
    known = np.asarray(labels) < num_classes
    return np.where(known[..., None], blended, image)
