"""Geometric augmentation and resizing of sample dicts (see `jointdistill_core.data.sample`).

Pixel convention: pixel centres sit at integer coordinates, so an image of width W spans
x in [-0.5, W - 0.5]. Resizing by a factor s maps x to (x + 0.5) * s - 0.5 (what bilinear
interpolation with `align_corners=False` and 'nearest-exact' do), and K follows the same map
(`jointdistill_core.geometry.scale_intrinsics`).

Randomness: every random transform takes an optional `torch.Generator`; without one it draws
from torch's global RNG. Either way the draws are deterministic for a seed
(`torch.manual_seed(seed)` or `generator.manual_seed(seed)`); DataLoader workers derive
their global seeds from the main process's, so a seeded run is reproducible with workers too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from jointdistill_core.data.sample import DEPTH, IMAGE, INTRINSICS, LABELS, Sample
from jointdistill_core.geometry import scale_intrinsics


def _scaled_K(K: torch.Tensor, from_size: tuple[int, int],
              to_size: tuple[int, int]) -> torch.Tensor:
    """K (3, 3) tensor for the image resized from from_size to to_size (H, W), half-pixel map."""
    scaled = scale_intrinsics(K.double().numpy(), from_size, to_size)
    return torch.as_tensor(scaled, dtype=K.dtype)


def _resize_maps(sample: Sample, size: tuple[int, int]) -> Sample:
    """Image bilinear (antialiased when shrinking), depth and labels nearest; K untouched."""
    height, width = sample[IMAGE].shape[-2:]
    shrinking = size[0] < height or size[1] < width
    resized = dict(sample)
    resized[IMAGE] = F.interpolate(sample[IMAGE][None], size=size, mode='bilinear',
                                   align_corners=False, antialias=shrinking)[0].clamp(0.0, 1.0)
    resized[DEPTH] = F.interpolate(sample[DEPTH][None], size=size, mode='nearest-exact')[0]
    labels = sample[LABELS][None, None].float()
    resized[LABELS] = F.interpolate(labels, size=size, mode='nearest-exact')[0, 0].long()
    return resized


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """Resize a sample to size = (H, W) pixels: image bilinear, depth (metres, unchanged
    values) and labels nearest neighbour, K scaled. Returns a new dict."""
    height, width = sample[IMAGE].shape[-2:]
    if (height, width) == tuple(size):
        return dict(sample)
    resized = _resize_maps(sample, tuple(size))
    if INTRINSICS in sample:
        resized[INTRINSICS] = _scaled_K(sample[INTRINSICS], (height, width), tuple(size))
    return resized


class RandomScaleCrop:
    """Zoom in by a random scale s from `scales` (the multi-task literature's augmentation).

    A window of round(H/s) x round(W/s) pixels at a random position is cut from the sample and
    resized to `size` (default: the input size). Image bilinear; depth and labels nearest;
    K is shifted by the crop offset and scaled by the actual resize factors, so its focal
    length grows by s: the zoomed image is what a longer lens sees from the same place.
    divide_depth (for networks that predict metric depth without looking at K): depth
    (metres) is also divided by s, so the apparent size of objects and their depth stay
    consistent with an unchanged focal length (as mtan and its successors do). Networks with
    a canonical camera (jointdistill_core.canonical) take the zoom from K instead and need
    divide_depth=False, or the zoom would count twice.
    """

    def __init__(self, size: tuple[int, int] | None = None,
                 scales: Sequence[float] = (1.0, 1.2, 1.5),
                 generator: torch.Generator | None = None, divide_depth: bool = True) -> None:
        if not scales or any(scale < 1.0 for scale in scales):
            raise ValueError(f'scales must be a non-empty list of factors >= 1, got {list(scales)}')
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.scales = tuple(float(scale) for scale in scales)
        self.generator = generator
        self.divide_depth = divide_depth

    def sample_params(self, height: int, width: int) -> tuple[float, int, int]:
        """Draw (scale, top, left) for an input of height x width pixels."""
        scale = self.scales[int(torch.randint(len(self.scales), (1,), generator=self.generator))]
        crop_height, crop_width = self.window(height, width, scale)
        top = int(torch.randint(height - crop_height + 1, (1,), generator=self.generator))
        left = int(torch.randint(width - crop_width + 1, (1,), generator=self.generator))
        return scale, top, left

    @staticmethod
    def window(height: int, width: int, scale: float) -> tuple[int, int]:
        return max(1, round(height / scale)), max(1, round(width / scale))

    def apply(self, sample: Sample, scale: float, top: int, left: int) -> Sample:
        """The deterministic part: crop at (top, left) for `scale`, resize, adjust K (and
        divide depth when `divide_depth`)."""
        height, width = sample[IMAGE].shape[-2:]
        out_size = self.size or (height, width)
        crop_height, crop_width = self.window(height, width, scale)
        rows, cols = slice(top, top + crop_height), slice(left, left + crop_width)
        cropped = dict(sample)
        cropped[IMAGE] = sample[IMAGE][:, rows, cols]
        cropped[DEPTH] = sample[DEPTH][:, rows, cols]
        cropped[LABELS] = sample[LABELS][rows, cols]
        result = _resize_maps(cropped, out_size)
        if self.divide_depth:
            result[DEPTH] = result[DEPTH] / scale
        if INTRINSICS in sample:
            shifted = sample[INTRINSICS].clone()
            shifted[0, 2] -= left
            shifted[1, 2] -= top
            result[INTRINSICS] = _scaled_K(shifted, (crop_height, crop_width), out_size)
        return result

    def __call__(self, sample: Sample) -> Sample:
        height, width = sample[IMAGE].shape[-2:]
        return self.apply(sample, *self.sample_params(height, width))


class RandomHorizontalFlip:
    """Mirror left-right with probability p: image, depth and labels flipped along W;
    K's principal point cx -> W - 1 - cx (and its skew negated)."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'flip probability must be in [0, 1], got {p}')
        self.p = p
        self.generator = generator

    @staticmethod
    def apply(sample: Sample) -> Sample:
        width = sample[IMAGE].shape[-1]
        flipped = dict(sample)
        for key in (IMAGE, DEPTH, LABELS):
            flipped[key] = torch.flip(sample[key], dims=[-1])
        if INTRINSICS in sample:
            K = sample[INTRINSICS].clone()
            K[0, 2] = width - 1 - K[0, 2]
            K[0, 1] = -K[0, 1]
            flipped[INTRINSICS] = K
        return flipped

    def __call__(self, sample: Sample) -> Sample:
        if float(torch.rand(1, generator=self.generator)) < self.p:
            return self.apply(sample)
        return sample


class Compose:
    """Apply sample transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample
