"""Pinhole camera geometry in numpy (ROS-free).

Pixel convention (the one ROS CameraInfo and OpenCV use): integer pixel coordinates
(u = column, v = row) sit at pixel centres, so the image spans [-0.5, W - 0.5] x
[-0.5, H - 0.5] and the exact centre of a W x H image is ((W - 1) / 2, (H - 1) / 2).
Points are in the camera's optical frame: x right, y down, z forward, metres.
Sizes are always given as (height, width) in pixels, like numpy shapes.
"""
from __future__ import annotations

import math
import re

import numpy as np

_SIZE_PATTERN = re.compile(r'\s*(\d+)\s*[xX]\s*(\d+)\s*')


def _checked_intrinsics(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f'K must be a (3, 3) intrinsic matrix, got shape {K.shape}')
    if not (np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError(f'K needs finite entries and fx, fy > 0, got fx={K[0, 0]}, '
                         f'fy={K[1, 1]}')
    return K


def parse_size(text: str, minimum: int = 1, multiple: int = 1) -> tuple[int, int]:
    """'HxW' such as '128x256' -> (height, width) in pixels.

    minimum: the smallest height and width accepted; multiple: both must be multiples of it
    (32 for network input sizes). ValueError names the text and the rule it breaks.
    """
    match = _SIZE_PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError(f'size must be HxW in pixels (e.g. 128x256), got {text!r}')
    height, width = int(match.group(1)), int(match.group(2))
    if height < minimum or width < minimum:
        raise ValueError(f'size must be at least {minimum}x{minimum} pixels, got {text!r}')
    if height % multiple or width % multiple:
        raise ValueError(f'size {text!r}: height and width must be multiples of {multiple} '
                         f'(the networks downsample {multiple}x)')
    return height, width


def _checked_size(size: tuple[int, int], name: str) -> tuple[int, int]:
    if len(size) != 2 or not all(int(s) == s and s > 0 for s in size):
        raise ValueError(f'{name} must be (height, width) positive pixel counts, got {size}')
    return int(size[0]), int(size[1])


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """3-D point of every pixel from its depth along the optical axis.

    depth: (H, W) metres (z, REP 118). Pixels with depth <= 0 or non-finite (NaN, +Inf)
    are invalid and give NaN points. K: (3, 3) intrinsics at this resolution (skew ignored).
    Returns (H, W, 3) float32 x, y, z with x = (u - cx) z / fx, y = (v - cy) z / fy.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W) metres, got shape {depth.shape}')
    K = _checked_intrinsics(K)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    height, width = depth.shape
    z = depth.astype(np.float32, copy=True)
    with np.errstate(invalid='ignore'):
        z[~(np.isfinite(z) & (z > 0))] = np.nan
    x_over_z = ((np.arange(width) - cx) / fx).astype(np.float32)
    y_over_z = ((np.arange(height) - cy) / fy).astype(np.float32)
    points = np.empty((height, width, 3), np.float32)
    np.multiply(z, x_over_z[None, :], out=points[..., 0])
    np.multiply(z, y_over_z[:, None], out=points[..., 1])
    points[..., 2] = z
    return points


def stride_intrinsics(K: np.ndarray, stride: int) -> np.ndarray:
    """K (3, 3) of the image subsampled as image[::stride, ::stride]: pixel (v, u) of the
    subsampled grid is (v * stride, u * stride) of the original, so fx, fy, cx, cy / stride."""
    scaled = np.array(K, np.float64)
    scaled[:2] /= stride
    return scaled


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int],
                     to_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics for the same camera after resizing its image from from_size to to_size.

    Sizes are (height, width) pixels. With sx = W'/W, sy = H'/H and centres at integer
    pixels: fx' = fx sx, fy' = fy sy, skew' = skew sx, cx' = (cx + 0.5) sx - 0.5,
    cy' = (cy + 0.5) sy - 0.5 (what cv2.resize's pixel mapping implies). Returns float64.
    """
    K = _checked_intrinsics(K)
    (h0, w0), (h1, w1) = _checked_size(from_size, 'from_size'), _checked_size(to_size, 'to_size')
    sx, sy = w1 / w0, h1 / h0
    scaled = K.copy()
    scaled[0, 0] *= sx
    scaled[0, 1] *= sx
    scaled[1, 1] *= sy
    scaled[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    scaled[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return scaled


# The horizontal field of view assumed for a camera whose intrinsics are unknown (a common
# robot camera: a RealSense D435's colour camera has 69 degrees).
DEFAULT_HFOV_DEG = 70.0


def default_intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """Intrinsics of an ideal pinhole camera with the given horizontal field of view.

    For when no CameraInfo arrives: square pixels (fy = fx), principal point at the image
    centre ((W - 1) / 2, (H - 1) / 2), fx = (W / 2) / tan(hfov / 2) since the image edges
    lie at -0.5 and W - 0.5. Returns (3, 3) float64.
    """
    height, width = _checked_size((height, width), '(height, width)')
    if not 0 < hfov_deg < 180:
        raise ValueError(f'hfov_deg must be in (0, 180) degrees, got {hfov_deg}')
    focal = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[focal, 0.0, (width - 1) / 2],
                     [0.0, focal, (height - 1) / 2],
                     [0.0, 0.0, 1.0]])
