"""What every network returns, student and teachers alike.

Inputs to every network: float tensor (N, 3, H, W), RGB in [0, 1]; the network normalises
internally, so the Predictor and exported models need no separate preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    """seg_logits: (N, C, H, W) unnormalised class scores, or None for a depth-only network.
    depth: (N, 1, H, W) metres, positive, or None for a segmentation-only network.
    features: named intermediate feature maps (N, C_f, H_f, W_f) for distillation:
      'enc'        shared (or the teacher's) encoder output,
      'enc_mid'    an earlier encoder stage (stride 8) for trajectory attention,
      'dec_seg'    last feature map of the segmentation decoder before its classifier,
      'dec_depth'  last feature map of the depth decoder before its regressor.
    A single-task teacher fills only its own task's decoder key.
    """

    seg_logits: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
