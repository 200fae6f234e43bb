"""Metric scale from the ground and the camera's mounting height.

A monocular network guesses metric scale from what things look like; on frames unlike its
training data that guess is what fails first (docs/real_world.md: outdoors the shipped student's
depth has the right shape but is 0.72x too near). A robot knows one length for sure: how high
its camera sits above the floor (its URDF). The network's own segmentation says which pixels
are ground (the `flat` category); back-projected with K and the predicted depth they lie on a
plane at some distance h_pred from the camera centre, and h / h_pred is the factor that makes
the prediction metric. This is the ground-plane scale recovery of monocular visual odometry
(Song and Chandraker, CVPR 2014; Zhou et al., ICRA 2019), applied to every frame.

The plane is fitted robustly (iteratively reweighted least squares) so that kerbs, cars
parked on the road or mislabelled pixels do not pull it. A frame whose ground cannot be fitted
(too few ground pixels, a plane steeper than MAX_TILT_DEG from the camera's down axis, so a
wall rather than a floor) keeps the network's own scale.
"""
from __future__ import annotations

import math

import numpy as np

from jointdistill_core.classes import FLAT
from jointdistill_core.geometry import backproject, stride_intrinsics

# Fewer ground pixels than this (at the image's resolution) and no scale is estimated.
MIN_GROUND_PIXELS = 200
# The fit uses about this many ground pixels, taken on a regular grid (a few ms a frame).
MAX_FIT_POINTS = 2048
IRLS_ITERATIONS = 20
# Residual, as a fraction of the plane's distance from the camera, at which a point's weight
# in the fit halves.
INLIER_TOLERANCE = 0.05
# The ground's normal must lie within this angle of the camera's down axis (optical y):
# cameras are mounted between level and steeply looking down, never facing a wall as floor.
MAX_TILT_DEG = 60.0


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Robust plane through (N, 3) points: (unit normal (3,), distance from the origin in the
    points' units) with |normal . p| = distance for points p on it, or None for fewer than 3
    points or a plane through the origin.

    Iteratively reweighted least squares with Cauchy weights on the residual relative to the
    plane's distance: points off the plane by INLIER_TOLERANCE of it weigh one half, by ten
    times that about 1 %. Deterministic, and unlike RANSAC it does not change with the
    sample it happens to draw.
    """
    if len(points) < 3:
        return None
    weights = np.ones(len(points))
    for _ in range(IRLS_ITERATIONS):
        centre = (points * weights[:, None]).sum(axis=0) / weights.sum()
        normal = np.linalg.svd((points - centre) * np.sqrt(weights)[:, None],
                               full_matrices=False)[2][2]
        distance = float(abs(normal @ centre))
        if distance <= 0:
            return None
        residual = np.abs(np.abs(points @ normal) - distance) / distance
        weights = 1.0 / (1.0 + (residual / INLIER_TOLERANCE) ** 2)
    return normal, distance


def ground_scale(depth: np.ndarray, labels: np.ndarray, K: np.ndarray, camera_height: float,
                 ground_class: int = FLAT) -> float | None:
    """Factor that makes `depth` metric: camera_height / the height of the camera above the
    ground plane fitted to the pixels labelled ground_class, or None when no ground plane
    fits (see the module docstring).

    depth (H, W) metres (> 0 where predicted), labels (H, W) class ids, K (3, 3) the
    intrinsics of that (H, W) image in pixels, camera_height metres above the ground (> 0).
    """
    if not camera_height > 0:
        raise ValueError(f'camera_height must be > 0 metres, got {camera_height}')
    ground = (labels == ground_class) & np.isfinite(depth) & (depth > 0)
    count = int(np.count_nonzero(ground))
    if count < MIN_GROUND_PIXELS:
        return None
    # Back-project only a regular grid holding about MAX_FIT_POINTS ground pixels.
    stride = max(1, math.ceil(math.sqrt(count / MAX_FIT_POINTS)))
    grid = backproject(depth[::stride, ::stride], stride_intrinsics(K, stride))
    plane = fit_plane(grid[ground[::stride, ::stride]].astype(np.float64))
    if plane is None:
        return None
    normal, height = plane
    if height <= 0 or abs(normal[1]) < math.cos(math.radians(MAX_TILT_DEG)):
        return None
    return float(camera_height / height)
