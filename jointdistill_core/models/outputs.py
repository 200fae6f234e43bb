"""What every network returns, student and teachers alike.

Inputs to every network: float tensor (N, 3, H, W), RGB in [0, 1]; the network normalises
internally, so the Predictor and exported models need no separate preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

# What a depth output means. 'metric': metres along the optical axis. 'relative': depth up
# to an unknown positive scale and shift per image (affine-invariant depth). 'relative_inverse':
# inverse depth (disparity) up to an unknown positive scale and shift per image, what MiDaS,
# DPT and Depth Anything's relative models return.
DEPTH_KINDS = ('metric', 'relative', 'relative_inverse')


@dataclass
class ModelOutput:
    """seg_logits: (N, C, H, W) unnormalised class scores, or None for a depth-only network.
    depth: (N, 1, H, W), or None for a segmentation-only network; metres (positive) unless
      `depth_kind` says otherwise.
    features: named intermediate feature maps (N, C_f, H_f, W_f) for distillation:
      'enc'        shared (or the teacher's) encoder output,
      'enc_mid'    an earlier encoder stage (stride 8) for trajectory attention,
      'dec_seg'    last feature map of the segmentation decoder before its classifier,
      'dec_depth'  last feature map of the depth decoder before its regressor.
    A single-task teacher fills only its own task's decoder key.
    depth_kind: one of DEPTH_KINDS; the student and the built-in teachers are 'metric'.
    seg_void: (N, H, W) bool or None: pixels whose most likely teacher class has no
      counterpart among the student's classes (a class map's void); hard targets there are
      void and soft targets skip them. Only teachers read through a class map set it.
    """

    seg_logits: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    depth_kind: str = 'metric'
    seg_void: torch.Tensor | None = None
