"""The canonical camera: depth networks predict what a camera of one fixed focal length sees.

One image is consistent with many metric depths; what fixes the scale is the focal length.
An object of height S metres at depth d covers f S / d pixels in a camera of focal length
f pixels. A network that sees only pixels can therefore learn the depth a *canonical* camera
of focal length f_c would measure for the same apparent sizes,

    d_c = d * f_c / f,

and the true metric depth follows from the camera's own focal length (Metric3D's label
transform): d = d_c * f / f_c. f is the focal length in pixels of the image the network
sees (after any resize or crop), taken as sqrt(fx * fy) so that a slightly anisotropic
resize uses the mean scale. Zooming in (scale-crop augmentation) multiplies f, so the
canonical target shrinks exactly as the apparent sizes grow.

Networks built with `canonical_focal_px` (models/student.py, models/teachers.py) output d_c;
the trainer converts ground truth to d_c, and the Predictor and the evaluators convert the
output back to metres with the image's K.
"""
from __future__ import annotations

import numpy as np
import torch

# The focal length (pixels of the network input) of the canonical camera of the shipped
# models: about a 70 degree horizontal field of view at 416 pixels wide.
DEFAULT_CANONICAL_FOCAL_PX = 300.0


def focal_length_px(K: np.ndarray) -> float:
    """sqrt(fx * fy) of a (3, 3) intrinsic matrix, pixels."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError(f'K must be a (3, 3) intrinsic matrix with fx, fy > 0, got {K}')
    return float(np.sqrt(K[0, 0] * K[1, 1]))


def metric_from_canonical(depth: np.ndarray, K: np.ndarray,
                          canonical_focal_px: float | None) -> np.ndarray:
    """Canonical depth (H, W) metres -> metric depth for the camera K of that image.

    canonical_focal_px None means the depth already is metric; it is returned unchanged.
    """
    if canonical_focal_px is None:
        return depth
    return depth * np.float32(focal_length_px(K) / canonical_focal_px)


def batch_focal_px(K: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) intrinsics -> (N, 1, 1, 1) focal lengths sqrt(fx * fy) in pixels."""
    return torch.sqrt(K[:, 0, 0] * K[:, 1, 1]).reshape(-1, 1, 1, 1)


def canonical_targets(depth: torch.Tensor, K: torch.Tensor,
                      canonical_focal_px: float | None) -> torch.Tensor:
    """Ground-truth depth (N, 1, H, W) metres, 0 = invalid -> canonical depth (0 stays 0)."""
    if canonical_focal_px is None:
        return depth
    return depth * (canonical_focal_px / batch_focal_px(K.to(depth))).to(depth.dtype)


def metric_predictions(depth: torch.Tensor, K: torch.Tensor,
                       canonical_focal_px: float | None) -> torch.Tensor:
    """Predicted canonical depth (N, 1, H, W) -> metres for the cameras K (N, 3, 3)."""
    if canonical_focal_px is None:
        return depth
    return depth * (batch_focal_px(K.to(depth)) / canonical_focal_px).to(depth.dtype)


def model_canonical_focal(model) -> float | None:
    """The network's canonical focal length in pixels, or None for a metric-depth network."""
    value = getattr(model, 'canonical_focal_px', None)
    return None if value is None else float(value)
