"""`mtl`: plain multi-task learning, the no-teacher baseline.

L = w_seg * CE(seg) + w_depth * D(depth), both on valid pixels only; D is L1 in metres or
in log metres (`depth_loss`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from jointdistill_core.config import setting
from jointdistill_core.data.sample import Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import task_loss_terms
from jointdistill_core.models.outputs import ModelOutput


@dataclass
class TaskWeights:
    """seg_weight: weight of the masked cross-entropy on labels (255 void ignored).
    depth_weight: weight of the depth loss on valid ground-truth depth (> 0).
    depth_loss: 'l1' (metres), 'log_l1' (log metres: relative errors, what abs rel and delta1
    measure) or 'silog' (scale-invariant log loss, variance weight 0.5); also used by the
    methods' other supervised and logit depth terms unless they have their own option."""

    seg_weight: float = setting(1.0, ge=0)
    depth_weight: float = setting(1.0, ge=0)
    depth_loss: Literal['l1', 'log_l1', 'silog'] = 'l1'


class MultiTaskLearning(DistillMethod):
    """The `mtl` method (module docstring)."""
    name = 'mtl'
    Params = TaskWeights
    teachers_needed = ()
    uses_labels = True

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        return task_loss_terms(batch, student_out, self.params.seg_weight,
                               self.params.depth_weight, self.params.depth_loss)
