"""The one sample type shared by every dataset: `Sample`.

A sample is a plain dict (typed by `Sample`), so PyTorch's default collate batches it:

- ``image``: float32 tensor (3, H, W), RGB in [0, 1]
- ``depth``: float32 tensor (1, H, W), metres along the optical axis, 0 = invalid
- ``labels``: int64 tensor (H, W), class ids, 255 = void
- ``K``: float32 tensor (3, 3), pinhole intrinsics in pixels of this (H, W); present only
  when the source knows it; `with_intrinsics` supplies the default otherwise

A batch (N samples) has the same keys with a leading N dimension; it is a `Sample` too.
A method that must not see labels (``uses_labels = False``) gets batches without ``depth``
and ``labels``.
"""
from __future__ import annotations

from typing import TypedDict

import numpy as np
import torch

from jointdistill_core.geometry import default_intrinsics

IGNORE_INDEX = 255
IMAGE, DEPTH, LABELS, INTRINSICS = 'image', 'depth', 'labels', 'K'


class _SampleTensors(TypedDict):
    image: torch.Tensor
    depth: torch.Tensor
    labels: torch.Tensor


class Sample(_SampleTensors, total=False):
    """One sample or a batch of them (keys and shapes in the module docstring); ``K`` is
    present only when the source knows the intrinsics."""

    K: torch.Tensor


def make_sample(image: np.ndarray, depth: np.ndarray | None, labels: np.ndarray | None,
                K: np.ndarray | None = None) -> Sample:
    """Build a sample from numpy arrays.

    image: (H, W, 3) uint8, or float in [0, 1]. depth: (H, W) metres, 0 or non-finite =
    invalid (stored as 0); None = unknown (all invalid). labels: (H, W) ints, 255 void;
    None = unknown (all void). K: (3, 3) or None.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be (H, W, 3), got shape {image.shape}')
    height, width = image.shape[:2]
    channels_first = image.transpose(2, 0, 1)
    if image.dtype == np.uint8:
        image_tensor = torch.from_numpy(np.ascontiguousarray(channels_first)).float() / 255.0
    else:
        image_tensor = torch.from_numpy(np.ascontiguousarray(channels_first, dtype=np.float32))
    if depth is None:
        depth = np.zeros((height, width), np.float32)
    if labels is None:
        labels = np.full((height, width), IGNORE_INDEX, np.int64)
    for name, array in (('depth', depth), ('labels', labels)):
        if array.shape != (height, width):
            raise ValueError(f'{name} shape {array.shape} does not match image {(height, width)}')
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    sample: Sample = {
        IMAGE: image_tensor,
        DEPTH: torch.from_numpy(depth)[None],
        LABELS: torch.from_numpy(labels.astype(np.int64)),
    }
    if K is not None:
        sample[INTRINSICS] = torch.as_tensor(np.asarray(K, np.float32).reshape(3, 3))
    return sample


def with_intrinsics(sample: Sample) -> Sample:
    """The sample with K; a sample without it gets `default_intrinsics` at its own size."""
    if INTRINSICS in sample:
        return sample
    height, width = sample[IMAGE].shape[-2:]
    return {**sample, INTRINSICS: torch.as_tensor(default_intrinsics(height, width),
                                                 dtype=torch.float32)}
