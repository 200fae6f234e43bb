"""Vectorised colouring of depth and labels for figures, reports and the node's visual topics."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from jointdistill_core.classes import DEFAULT_NUM_CLASSES, class_colors

_TURBO_LUT: np.ndarray | None = None


def _turbo_lut() -> np.ndarray:
    """(256, 1, 3) uint8: the turbo colour map as a cv2.LUT table."""
    global _TURBO_LUT
    if _TURBO_LUT is None:
        from matplotlib import colormaps
        colors = (colormaps['turbo'](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
        _TURBO_LUT = colors.reshape(256, 1, 3)
    return _TURBO_LUT


@lru_cache(maxsize=16)
def _label_lut(num_classes: int) -> np.ndarray:
    """(256, 1, 3) uint8: class colours for ids below num_classes, black above."""
    palette = np.zeros((256, 1, 3), np.uint8)
    palette[:num_classes, 0] = class_colors(num_classes)
    palette.setflags(write=False)
    return palette


def _lookup(index: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8 through a (256, 1, 3) table. cv2.LUT on the index
    stacked three times is ~4x faster than numpy's fancy indexing lut[index] at 640x480."""
    return cv2.LUT(cv2.merge((index, index, index)), lut)


def colorize_depth(depth: np.ndarray, max_depth: float | None = None,
                   min_depth: float = 0.0) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8 RGB, near = red, far = blue (turbo, inverted).

    Invalid pixels (0, NaN, +-Inf) are black. `max_depth` defaults to the 99th percentile
    of the valid pixels. float32 throughout (no float64 temporaries).
    """
    depth = np.asarray(depth, np.float32)
    with np.errstate(invalid='ignore'):
        valid = (depth > 0) & (depth < np.inf)
    if max_depth is None:
        max_depth = float(np.percentile(depth[valid], 99)) if valid.any() else 1.0
    scale = np.float32(255.0 / max(max_depth - min_depth, 1e-6))
    position = np.subtract(np.float32(max_depth), depth, dtype=np.float32)
    position *= scale
    np.clip(position, 0, 255, out=position)
    position[~valid] = 0  # NaN and Inf have no defined uint8 conversion
    rgb = _lookup(position.astype(np.uint8), _turbo_lut())
    rgb[~valid] = 0
    return rgb


def colorize_labels(labels: np.ndarray, num_classes: int = DEFAULT_NUM_CLASSES) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ids outside [0, num_classes) are black."""
    return _lookup(np.ascontiguousarray(labels, np.uint8), _label_lut(num_classes))


def overlay_labels(image: np.ndarray, labels: np.ndarray, num_classes: int = DEFAULT_NUM_CLASSES,
                   alpha: float = 0.5, colors: np.ndarray | None = None) -> np.ndarray:
    """Blend label colours over an (H, W, 3) uint8 RGB image; void pixels keep the image.

    Each channel is (1 - alpha) * image + alpha * colour rounded to nearest (ties to even),
    computed by cv2.addWeighted in SIMD (no float64 temporaries: 1 ms instead of 12 ms of
    CPU at 640x480). `colors`: colorize_labels(labels, num_classes) when the caller already
    has it (saves the look-up).
    """
    labels = np.ascontiguousarray(labels, np.uint8)
    if colors is None:
        colors = colorize_labels(labels, num_classes)
    blended = cv2.addWeighted(image, 1.0 - alpha, colors, alpha, 0.0)
    unknown = (labels >= num_classes).view(np.uint8)
    cv2.copyTo(image, unknown, blended)  # void / out-of-range pixels keep the image
    return blended


def contact_sheet(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  num_classes: int = DEFAULT_NUM_CLASSES, gap: int = 4,
                  max_depth: float | None = None) -> np.ndarray:
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
