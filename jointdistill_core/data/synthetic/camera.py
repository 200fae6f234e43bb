"""Pinhole camera: pose conventions, intrinsics, pixel rays and the sampling of camera rigs.

World frame: X, Y horizontal, Z up, metres. Camera optical frame (REP 103 ``_optical``):
x right, y down, z forward. Pixel (u, v), column u and row v with pixel centres at integer
coordinates (the OpenCV convention), sees the ray ``d_cam = K^-1 [u, v, 1]^T``; in the world
the ray is ``C + s * R d_cam`` with ``R = rotation_cam_to_world`` and ``C = camera_position``.
Because ``d_cam`` has z = 1, the ray parameter s of a hit IS its depth (metres along the
optical axis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Optical frame at zero angles: x_cam = world X, y_cam = -world Z, z_cam = world Y.
_OPTICAL_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])

DEFAULT_FOV_RANGE_DEG = (40.0, 110.0)
MIN_FOV_DEG, MAX_FOV_DEG = 10.0, 150.0


def rot_x(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about X."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about Z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def camera_rotation(pitch: float, roll: float, yaw: float) -> np.ndarray:
    """(3, 3) optical-to-world rotation (radians). At zero angles the camera looks along +Y;
    pitch > 0 looks down, roll turns about the optical axis, yaw > 0 turns left."""
    return rot_z(yaw) @ _OPTICAL_TO_WORLD @ rot_x(-pitch) @ rot_z(roll)


def intrinsics(height: int, width: int, horizontal_fov: float) -> np.ndarray:
    """(3, 3) pinhole K with square pixels and the principal point at the image centre.

    fx = fy = (width / 2) / tan(horizontal_fov / 2) pixels; horizontal_fov in radians.
    """
    focal = (width / 2.0) / np.tan(horizontal_fov / 2.0)
    return np.array([[focal, 0, (width - 1) / 2.0], [0, focal, (height - 1) / 2.0], [0, 0, 1]])


def pixel_rays(K: np.ndarray, rotation: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, H, W) float64 world-frame ray directions whose optical-frame z component is 1."""
    u = (np.arange(width) - K[0, 2]) / K[0, 0]
    v = (np.arange(height) - K[1, 2]) / K[1, 1]
    cam = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))))
    return np.einsum('ij,jhw->ihw', rotation, cam)


@dataclass(frozen=True)
class Rig:
    """Ranges a camera rig is drawn from: height above the surface it stands on (metres) and
    pitch (> 0 down), roll and yaw jitter (degrees)."""
    name: str
    height_m: tuple[float, float]
    pitch_deg: tuple[float, float]
    roll_deg: float
    yaw_deg: float


CAR_RIG = Rig('car', (1.2, 1.8), (-3.0, 6.0), 3.0, 8.0)
ROBOT_RIG = Rig('robot', (0.3, 0.8), (-5.0, 12.0), 4.0, 15.0)
HANDHELD_RIG = Rig('handheld', (1.0, 1.7), (0.0, 25.0), 5.0, 20.0)


@dataclass(frozen=True)
class CameraPose:
    """A drawn camera: position (3,) metres in the world, angles in radians, the horizontal
    field of view in radians and the height above the surface below it in metres."""
    position: np.ndarray
    height_m: float
    pitch: float
    roll: float
    yaw: float
    horizontal_fov: float
    rig: str

    @property
    def rotation(self) -> np.ndarray:
        return camera_rotation(self.pitch, self.roll, self.yaw)


def draw_pose(rng: np.random.Generator, rig: Rig, x: float, y: float, ground_z: float,
              heading: float, fov: float) -> CameraPose:
    """A camera of `rig` standing at (x, y) on a surface at height ground_z, looking along
    `heading` (radians about Z, 0 = +Y) give or take the rig's yaw jitter."""
    height = rng.uniform(*rig.height_m)
    pitch = np.deg2rad(rng.uniform(*rig.pitch_deg))
    roll = np.deg2rad(rng.uniform(-rig.roll_deg, rig.roll_deg))
    yaw = heading + np.deg2rad(rng.uniform(-rig.yaw_deg, rig.yaw_deg))
    return CameraPose(np.array([x, y, ground_z + height]), float(height), float(pitch),
                      float(roll), float(yaw), float(fov), rig.name)


def check_fov_range(fov_range_deg: tuple[float, float]) -> tuple[float, float]:
    """Validate a (min, max) horizontal field of view in degrees; returns it as floats."""
    low, high = (float(value) for value in fov_range_deg)
    if not MIN_FOV_DEG <= low <= high <= MAX_FOV_DEG:
        raise ValueError(f'field of view range must satisfy {MIN_FOV_DEG:g} <= min <= max <= '
                         f'{MAX_FOV_DEG:g} degrees, got {low:g}-{high:g}')
    return low, high
