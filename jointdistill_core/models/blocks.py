"""Building blocks shared by the student and the teachers (plain PyTorch, no torchvision).

Every batch-normalised convolution is a `ConvBNAct`, so `fuse_conv_bn` can fold all of a
network's BatchNorm layers into the preceding convolutions for inference and export.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

# ImageNet statistics: networks take RGB in [0, 1] and normalise internally.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalize(nn.Module):
    """(N, 3, H, W) RGB in [0, 1] -> ImageNet-normalised. Constants are not saved in
    checkpoints (non-persistent buffers): they are part of the architecture, not weights."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation ('relu6', 'relu' or None).

    After `fuse()` the BatchNorm is folded into the convolution (which gains a bias) and
    replaced by Identity: same outputs in eval mode, one layer fewer per block.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, groups: int = 1, activation: str | None = 'relu6') -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=kernel_size // 2, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)
        if activation == 'relu6':
            self.act: nn.Module = nn.ReLU6(inplace=True)
        elif activation == 'relu':
            self.act = nn.ReLU(inplace=True)
        elif activation is None:
            self.act = nn.Identity()
        else:
            raise ValueError(f"ConvBNAct: unknown activation {activation!r} "
                             "(expected 'relu6', 'relu' or None)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm's running statistics and affine parameters into the conv."""
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv_bias = self.conv.bias
        if conv_bias is None:
            conv_bias = torch.zeros_like(bn.running_mean)
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.conv.kernel_size,
                          self.conv.stride, self.conv.padding, groups=self.conv.groups, bias=True)
        fused = fused.to(device=self.conv.weight.device, dtype=self.conv.weight.dtype)
        fused.weight.copy_(self.conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_((conv_bias - bn.running_mean) * scale + bn.bias)
        self.conv = fused
        self.bn = nn.Identity()


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with every ConvBNAct's BatchNorm folded into its conv.

    The original is untouched. Outputs equal the unfused model's in eval mode up to float
    rounding (tested to 1e-5). Use for inference and export only: a fused network no longer
    has BatchNorm layers to train.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, ConvBNAct):
            module.fuse()
    return fused


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear project,
    with an identity shortcut when stride is 1 and channels match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, kernel_size=1))
        layers.append(ConvBNAct(hidden, hidden, kernel_size=3, stride=stride, groups=hidden))
        layers.append(ConvBNAct(hidden, out_channels, kernel_size=1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_shortcut else out


class FusedInvertedResidual(nn.Module):
    """EfficientNetV2's fused-MBConv: one full 3x3 conv expands (ReLU6), a 1x1 linear conv
    projects; with expand_ratio 1 the 3x3 conv maps straight to the output channels.

    More FLOPs than the depthwise block, but dense convolutions run near the matmul peak
    while depthwise ones are memory-bound: at high resolution the fused block is faster.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if expand_ratio == 1:
            self.block = ConvBNAct(in_channels, out_channels, 3, stride)
        else:
            hidden = in_channels * expand_ratio
            self.block = nn.Sequential(ConvBNAct(in_channels, hidden, 3, stride),
                                       ConvBNAct(hidden, out_channels, 1, activation=None))
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_shortcut else out


class BasicResidual(nn.Module):
    """ResNet basic block: two 3x3 convs with a (projected when needed) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride, activation='relu')
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, 1, activation=None)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBNAct(in_channels, out_channels, 1, stride, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of `divisor`, never below 90% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# MobileNetV2 stages: (expand ratio t, channels c, repeats n, first stride s).
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Expand ratio of the early stages when they use fused blocks (EfficientNetV2-S uses 1, 4, 4).
FUSED_EXPAND_RATIOS = (1, 4, 4)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature extractor (no final 1280-channel conv, no classifier).

    width_mult scales every stage's channels; depth_mult its number of blocks (rounded up,
    at least one). fused_stages: how many of the first stages (0..3, strides 2, 4, 8) use
    fused-MBConv blocks (expand ratios 1, 4, 4) instead of depthwise inverted residuals;
    0 is the classic MobileNetV2.
    forward: (N, 3, H, W) normalised image -> skips {4, 8, 16, 32}: feature maps at those
    strides (pixels of input per feature pixel); `channels[s]` gives their channel counts.
    """

    def __init__(self, width_mult: float = 1.0, fused_stages: int = 0,
                 depth_mult: float = 1.0) -> None:
        super().__init__()
        if depth_mult <= 0:
            raise ValueError(f'depth_mult must be > 0, got {depth_mult}')
        if not 0 <= fused_stages <= len(FUSED_EXPAND_RATIOS):
            raise ValueError(f'fused_stages must be in 0..{len(FUSED_EXPAND_RATIOS)}, '
                             f'got {fused_stages}')
        stem_channels = make_divisible(32 * width_mult)
        self.stem = ConvBNAct(3, stem_channels, 3, stride=2)
        self.stages = nn.ModuleList()
        self.stage_strides: list[int] = []
        self.channels: dict[int, int] = {}
        in_channels, stride = stem_channels, 2
        for index, (expand, base_channels, repeats, first_stride) in enumerate(MOBILENETV2_STAGES):
            out_channels = make_divisible(base_channels * width_mult)
            repeats = max(1, math.ceil(repeats * depth_mult))
            block_type: type[nn.Module] = InvertedResidual
            if index < fused_stages:
                block_type, expand = FusedInvertedResidual, FUSED_EXPAND_RATIOS[index]
            blocks = [block_type(in_channels if i == 0 else out_channels, out_channels,
                                 first_stride if i == 0 else 1, expand)
                      for i in range(repeats)]
            self.stages.append(nn.Sequential(*blocks))
            stride *= first_stride
            self.stage_strides.append(stride)
            # The last stage at each stride is the skip output for that stride.
            self.channels[stride] = out_channels
            in_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.stem(x)
        skips: dict[int, torch.Tensor] = {}
        for stage, stride in zip(self.stages, self.stage_strides):
            x = stage(x)
            skips[stride] = x
        return {s: skips[s] for s in (4, 8, 16, 32)}


class ResNetEncoder(nn.Module):
    """Slim ResNet (basic blocks) with base width w: stages of w, 2w, 4w, 8w channels.

    forward: (N, 3, H, W) normalised image -> skips {4, 8, 16, 32} like MobileNetV2Encoder.
    """

    def __init__(self, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        if len(blocks) != 4:
            raise ValueError(f'ResNetEncoder: blocks must list 4 stage depths, got {blocks!r}')
        self.stem = nn.Sequential(ConvBNAct(3, width, 3, stride=2, activation='relu'),
                                  ConvBNAct(width, width, 3, stride=2, activation='relu'))
        self.stages = nn.ModuleList()
        self.channels: dict[int, int] = {}
        in_channels = width
        for index, repeats in enumerate(blocks):
            out_channels = width * 2 ** index
            stride = 1 if index == 0 else 2
            self.stages.append(nn.Sequential(*[
                BasicResidual(in_channels if i == 0 else out_channels, out_channels,
                              stride if i == 0 else 1) for i in range(repeats)]))
            self.channels[4 * 2 ** index] = out_channels
            in_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.stem(x)
        skips: dict[int, torch.Tensor] = {}
        for index, stage in enumerate(self.stages):
            x = stage(x)
            skips[4 * 2 ** index] = x
        return skips


class SeparableConv(nn.Sequential):
    """3x3 depthwise (ReLU6) then 1x1 pointwise (ReLU6): a cheap 3x3 receptive field."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvBNAct(in_channels, in_channels, 3, groups=in_channels),
                         ConvBNAct(in_channels, out_channels, 1))


class UNetDecoder(nn.Module):
    """U-Net style decoder from stride 32 to stride 4 with encoder skips at 16, 8 and 4.

    channels = (c16, c8, c4): output channels after merging the stride-16, 8 and 4 skips.
    Each step: bilinear x2 upsample, concatenate the skip, a separable conv (or a full 3x3
    conv with `separable=False`, for the teachers). forward -> (N, c4, H/4, W/4).
    """

    def __init__(self, encoder_channels: dict[int, int], channels: tuple[int, int, int],
                 separable: bool = True) -> None:
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f'UNetDecoder: channels must have 3 entries, got {channels!r}')
        self.reduce = ConvBNAct(encoder_channels[32], channels[0], 1)
        self.merges = nn.ModuleList()
        in_channels = channels[0]
        for stride, out_channels in zip((16, 8, 4), channels):
            merged = in_channels + encoder_channels[stride]
            self.merges.append(SeparableConv(merged, out_channels) if separable
                               else ConvBNAct(merged, out_channels, 3, activation='relu'))
            in_channels = out_channels
        self.out_channels = channels[-1]

    def forward(self, skips: dict[int, torch.Tensor]) -> torch.Tensor:
        x = self.reduce(skips[32])
        for stride, merge in zip((16, 8, 4), self.merges):
            skip = skips[stride]
            x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = merge(torch.cat([x, skip], dim=1))
        return x


def check_input(x: torch.Tensor, network: str) -> None:
    """(N, 3, H, W) with H and W multiples of 32, or a ValueError naming the shape.
    Skipped while tracing for export: the traced graph has a fixed, already checked shape."""
    if torch.jit.is_tracing():
        return
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % 32 or x.shape[3] % 32:
        raise ValueError(f'{network}: expected an image batch (N, 3, H, W) with H and W '
                         f'multiples of 32, got shape {tuple(x.shape)}')


def checked_focal(canonical_focal_px: float | None, network: str) -> float | None:
    """None, or the canonical focal length as a positive float (pixels); ValueError otherwise."""
    if canonical_focal_px is None:
        return None
    if not float(canonical_focal_px) > 0:
        raise ValueError(f'{network}: canonical_focal_px must be > 0 pixels or null, got '
                         f'{canonical_focal_px}')
    return float(canonical_focal_px)
