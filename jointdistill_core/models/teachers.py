"""Single-task teachers: a slim ResNet encoder with a full-conv U-Net decoder.

A different family from the student's MobileNetV2 on purpose: plain 3x3 convolutions give
the teachers several times the student's parameters at a CPU cost that still trains on a
laptop, and their features bring a different inductive bias into distillation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.models.blocks import (
    ImageNormalize,
    ResNetEncoder,
    UNetDecoder,
    check_input,
    checked_focal,
)
from jointdistill_core.models.outputs import ModelOutput

DEFAULT_TEACHER_WIDTH = 48


def _teacher_decoder_channels(width: int) -> tuple[int, int, int]:
    return (4 * width, 2 * width, width)


class _TeacherBase(nn.Module):
    """Shared body: normalise -> ResNet encoder (width, 2w, 4w, 8w) -> U-Net decoder (4w, 2w, w)."""

    task: str

    def __init__(self, width: int, blocks: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if width < 8:
            raise ValueError(f'{type(self).__name__}: width must be >= 8, got {width}')
        self.normalize = ImageNormalize()
        self.encoder = ResNetEncoder(width, tuple(blocks))
        self.decoder = UNetDecoder(self.encoder.channels, _teacher_decoder_channels(width),
                                   separable=False)
        self.feature_channels = {'enc': self.encoder.channels[32],
                                 'enc_mid': self.encoder.channels[8],
                                 f'dec_{self.task}': self.decoder.out_channels}
        self.feature_strides = {'enc': 32, 'enc_mid': 8, f'dec_{self.task}': 4}

    def _features(self, x: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        check_input(x, type(self).__name__)
        skips = self.encoder(self.normalize(x))
        return skips, self.decoder(skips)


class SegTeacher(_TeacherBase):
    """Segmentation-only teacher.

    forward(x: (N, 3, H, W) RGB in [0, 1], H, W multiples of 32) -> ModelOutput with
    seg_logits (N, num_classes, H, W), depth None, features 'enc' (stride 32), 'enc_mid'
    (stride 8), 'dec_seg' (stride 4). `max_depth` is None (no depth output).
    Default (width 48, blocks (2, 2, 2, 2), 7 classes): 7.36 M parameters (3.6x the
    student), 8.15 GFLOPs and 74 MiB of activations at 256x512 (see docs/models.md).
    """

    task = 'seg'

    def __init__(self, num_classes: int = DEFAULT_NUM_CLASSES, width: int = DEFAULT_TEACHER_WIDTH,
                 blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2)) -> None:
        if num_classes < 2:
            raise ValueError(f'SegTeacher: num_classes must be >= 2, got {num_classes}')
        super().__init__(int(width), blocks)
        self.num_classes = int(num_classes)
        self.max_depth = None
        self.spec = {'arch': 'seg_teacher', 'num_classes': self.num_classes, 'width': int(width),
                     'blocks': [int(b) for b in blocks]}
        self.head = nn.Conv2d(self.decoder.out_channels, self.num_classes, 1)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        skips, dec = self._features(x)
        logits = F.interpolate(self.head(dec), size=x.shape[-2:], mode='bilinear',
                               align_corners=False)
        return ModelOutput(seg_logits=logits, depth=None,
                           features={'enc': skips[32], 'enc_mid': skips[8], 'dec_seg': dec})


class DepthTeacher(_TeacherBase):
    """Depth-only teacher.

    forward(x: (N, 3, H, W) RGB in [0, 1], H, W multiples of 32) -> ModelOutput with
    depth (N, 1, H, W) metres in (0, max_depth), seg_logits None, features 'enc',
    'enc_mid', 'dec_depth'. `num_classes` is None (no segmentation output). With
    canonical_focal_px set, depth is the canonical camera's (as JointStudent's).
    Default (width 48, blocks (2, 2, 2, 2)): 7.35 M parameters, 8.15 GFLOPs and 74 MiB of
    activations at 256x512.
    """

    task = 'depth'

    def __init__(self, max_depth: float = 80.0, width: int = DEFAULT_TEACHER_WIDTH,
                 blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
                 canonical_focal_px: float | None = None) -> None:
        if max_depth <= 0:
            raise ValueError(f'DepthTeacher: max_depth must be > 0 metres, got {max_depth}')
        super().__init__(int(width), blocks)
        self.num_classes = None
        self.max_depth = float(max_depth)
        self.canonical_focal_px = checked_focal(canonical_focal_px, 'DepthTeacher')
        self.spec = {'arch': 'depth_teacher', 'max_depth': self.max_depth, 'width': int(width),
                     'blocks': [int(b) for b in blocks],
                     'canonical_focal_px': self.canonical_focal_px}
        self.head = nn.Conv2d(self.decoder.out_channels, 1, 1)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        skips, dec = self._features(x)
        depth = F.interpolate(self.max_depth * torch.sigmoid(self.head(dec)), size=x.shape[-2:],
                              mode='bilinear', align_corners=False)
        return ModelOutput(seg_logits=None, depth=depth,
                           features={'enc': skips[32], 'enc_mid': skips[8], 'dec_depth': dec})
