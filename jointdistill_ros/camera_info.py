"""CameraInfo helpers of the perception node: which CameraInfo is usable, the CameraInfo and K
of the outputs (scaled to the image they describe), and K of a subsampled image."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo

from jointdistill_core.geometry import default_intrinsics, scale_intrinsics


def usable_camera_info(info: CameraInfo | None) -> bool:
    """Whether `info` has a size and finite, positive focal lengths (else it is ignored)."""
    if info is None or info.width == 0 or info.height == 0:
        return False
    K = np.asarray(info.k, np.float64)
    return bool(np.isfinite(K).all() and K[0] > 0 and K[4] > 0)


def output_camera_info(info: CameraInfo | None, header, height: int,
                       width: int) -> tuple[CameraInfo, np.ndarray]:
    """CameraInfo for the outputs (height x width pixels) and its K (3, 3) float64.

    Scales an incoming camera_info of another size; default_intrinsics when none came or its
    K is unusable (zero or non-finite focal lengths).
    """
    out = CameraInfo(header=header, height=height, width=width)
    if not usable_camera_info(info):
        K = np.asarray(default_intrinsics(height, width), np.float64)
        out.distortion_model, out.d = 'plumb_bob', [0.0] * 5
        out.r = np.eye(3).ravel().tolist()
        P = np.hstack([K, np.zeros((3, 1))])
    else:
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        P = np.asarray(info.p, np.float64).reshape(3, 4)
        if (info.height, info.width) != (height, width):
            sx, sy = width / info.width, height / info.height
            K = np.asarray(scale_intrinsics(K, (info.height, info.width), (height, width)),
                           np.float64)
            P = np.hstack([np.asarray(scale_intrinsics(P[:, :3], (info.height, info.width),
                                                       (height, width)), np.float64),
                           P[:, 3:] * np.array([[sx], [sy], [1.0]])])
        out.distortion_model, out.d, out.r = info.distortion_model, list(info.d), list(info.r)
    out.k, out.p = K.ravel().tolist(), P.ravel().tolist()
    return out, K
