"""The multi-task student: one shared encoder, one light decoder per task."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.models.blocks import (
    ImageNormalize,
    MobileNetV2Encoder,
    UNetDecoder,
    check_input,
    checked_focal,
)
from jointdistill_core.models.outputs import ModelOutput

DEFAULT_DECODER_CHANNELS = (96, 64, 48)


class JointStudent(nn.Module):
    """Depth + segmentation from one image: MobileNetV2 encoder shared by two U-Net decoders.

    The first `fused_stages` encoder stages (default 3: strides 2, 4, 8) use fused-MBConv
    blocks (a dense 3x3 conv instead of 1x1 expand + depthwise 3x3): at high resolution
    depthwise convs are memory-bound, and the fused blocks made a training step 1.8x and a
    CPU forward 1.15x faster for 0.8 GFLOPs more. fused_stages=0 is plain MobileNetV2.
    width_mult scales the encoder's channels, depth_mult its blocks per stage (rounded up),
    decoder_channels the three decoder widths (strides 16, 8, 4).

    forward(x: (N, 3, H, W) RGB in [0, 1], H and W multiples of 32) -> ModelOutput with
      seg_logits (N, num_classes, H, W), depth (N, 1, H, W) metres in (0, max_depth),
      features 'enc' (stride 32), 'enc_mid' (stride 8), 'dec_seg' and 'dec_depth' (stride 4).
    Both heads are 1x1 convs at stride 4, upsampled bilinearly to the input size; depth is
    max_depth * sigmoid(.), so always positive and bounded. With canonical_focal_px set, depth
    is the canonical camera's (jointdistill_core.canonical): metres for a camera of that
    focal length in input pixels; None means metric depth for the input as given.

    Default size (width_mult=1.0, decoder_channels=(96, 64, 48), fused_stages=3, 7 classes),
    measured with `jointdistill_core.models.profile`: 2.04 M parameters; 2.52 GFLOPs
    (2 x MACs of convs) at 256x512 (0.63 at 128x256, 5.90 at 480x640); 142 MiB of
    activations (fp32, all leaf-module outputs for one 256x512 image: what training keeps
    per image, an upper bound).
    """

    def __init__(self, width_mult: float = 1.0, num_classes: int = DEFAULT_NUM_CLASSES,
                 max_depth: float = 80.0,
                 decoder_channels: tuple[int, int, int] | list[int] = DEFAULT_DECODER_CHANNELS,
                 fused_stages: int = 3, depth_mult: float = 1.0,
                 canonical_focal_px: float | None = None) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f'JointStudent: width_mult must be > 0, got {width_mult}')
        if num_classes < 2:
            raise ValueError(f'JointStudent: num_classes must be >= 2, got {num_classes}')
        if max_depth <= 0:
            raise ValueError(f'JointStudent: max_depth must be > 0 metres, got {max_depth}')
        decoder_channels = tuple(int(c) for c in decoder_channels)
        self.num_classes = int(num_classes)
        self.max_depth = float(max_depth)
        self.canonical_focal_px = checked_focal(canonical_focal_px, 'JointStudent')
        self.spec = {'arch': 'student', 'width_mult': float(width_mult),
                     'num_classes': self.num_classes, 'max_depth': self.max_depth,
                     'decoder_channels': list(decoder_channels), 'fused_stages': int(fused_stages),
                     'depth_mult': float(depth_mult),
                     'canonical_focal_px': self.canonical_focal_px}
        self.normalize = ImageNormalize()
        self.encoder = MobileNetV2Encoder(width_mult, int(fused_stages), float(depth_mult))
        self.seg_decoder = UNetDecoder(self.encoder.channels, decoder_channels)
        self.depth_decoder = UNetDecoder(self.encoder.channels, decoder_channels)
        self.seg_head = nn.Conv2d(decoder_channels[-1], self.num_classes, 1)
        self.depth_head = nn.Conv2d(decoder_channels[-1], 1, 1)
        self.feature_channels = {'enc': self.encoder.channels[32],
                                 'enc_mid': self.encoder.channels[8],
                                 'dec_seg': decoder_channels[-1], 'dec_depth': decoder_channels[-1]}
        self.feature_strides = {'enc': 32, 'enc_mid': 8, 'dec_seg': 4, 'dec_depth': 4}

    def forward(self, x: torch.Tensor) -> ModelOutput:
        check_input(x, 'JointStudent')
        size = x.shape[-2:]
        skips = self.encoder(self.normalize(x))
        dec_seg = self.seg_decoder(skips)
        dec_depth = self.depth_decoder(skips)
        seg_logits = F.interpolate(self.seg_head(dec_seg), size=size, mode='bilinear',
                                   align_corners=False)
        depth_small = self.max_depth * torch.sigmoid(self.depth_head(dec_depth))
        depth = F.interpolate(depth_small, size=size, mode='bilinear', align_corners=False)
        return ModelOutput(seg_logits=seg_logits, depth=depth,
                           features={'enc': skips[32], 'enc_mid': skips[8],
                                     'dec_seg': dec_seg, 'dec_depth': dec_depth})
