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


def contact_sheet(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], num_classes: int = 7,
                  gap: int = 4, max_depth: float | None = None) -> np.ndarray:
    """One row per frame: image | depth colour map | label colours, on a white background.

    frames: (image (H, W, 3) uint8 RGB, depth (H, W) metres, labels (H, W) ids) per row, all
    of one size. Returns (rows * H + (rows + 1) * gap, 3 * W + 4 * gap, 3) uint8 RGB. The depth
    colour scale is shared by all rows: `max_depth` metres, default the 99th percentile of
    all valid depths.
    """
    if not frames:
        raise ValueError('contact_sheet needs at least one frame')
    height, width = frames[0][0].shape[:2]
    if max_depth is None:
        valid = np.concatenate([d[np.isfinite(d) & (d > 0)].ravel() for _, d, _ in frames])
        max_depth = float(np.percentile(valid, 99)) if valid.size else 1.0
    sheet = np.full((len(frames) * (height + gap) + gap, 3 * width + 4 * gap, 3), 255, np.uint8)
    for row, (image, depth, labels) in enumerate(frames):
        if image.shape[:2] != (height, width):
            raise ValueError(f'contact_sheet: frame {row} is {image.shape[:2]}, '
                             f'frame 0 is {(height, width)}')
        top = gap + row * (height + gap)
        tiles = (image, colorize_depth(depth, max_depth), colorize_labels(labels, num_classes))
        for column, tile in enumerate(tiles):
            left = gap + column * (width + gap)
            sheet[top:top + height, left:left + width] = tile
    return sheet
