"""`xdistill`: cross-task distillation from segmentation into depth (Cai et al. 2021).

A small translator maps the student's predicted depth to G group logits; the target is the
segmentation teacher's argmax mapped through a many-to-one grouping g of classes by geometry:

L = sum_t L_task,t + lambda_x * CE(translator(d_S / max_depth), g(argmax z_Tseg))

Gradients flow through the translator into the student's depth branch (the translator is
dropped after training, so inference costs nothing extra). Default grouping for Cityscapes-7:
flat 0, construction 1, object 2, nature 3, sky 4, human and vehicle 5 (G = 6); for any
other class set the identity (G = num_classes) unless `grouping` is given.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jointdistill_core.classes import CONSTRUCTION, FLAT, HUMAN, NATURE, OBJECT, SKY, VEHICLE
from jointdistill_core.config import setting
from jointdistill_core.data.sample import Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import (
    group_labels,
    masked_cross_entropy,
    seeded_init,
    task_loss_terms,
    teacher_hard_labels,
)
from jointdistill_core.distill.mtl import TaskWeights
from jointdistill_core.models.outputs import ModelOutput

CITYSCAPES_7_GROUPS = {FLAT: 0, CONSTRUCTION: 1, OBJECT: 2, NATURE: 3, SKY: 4, HUMAN: 5,
                       VEHICLE: 5}


def check_grouping(grouping: list[int]) -> None:
    """ValueError unless `grouping` uses every group id 0..G-1 and no others."""
    used = sorted(set(grouping))
    if not grouping or used != list(range(len(used))):
        raise ValueError(f'must use every group id 0..G-1 and no others, got {grouping}')


@dataclass
class XDistillParams(TaskWeights):
    """lambda_x: weight of the depth-to-segmentation-groups cross-entropy.
    translator_channels: width of the translator's hidden convolutions.
    grouping: group id per class (length num_classes, ids 0..G-1, every id used);
      null = Cityscapes-7 grouping when num_classes is 7, identity otherwise."""

    lambda_x: float = setting(1.0, ge=0)
    translator_channels: int = setting(32, ge=1)
    grouping: list[int] | None = setting(None, check=check_grouping)


def default_grouping(num_classes: int) -> list[int]:
    """The Cityscapes-7 grouping for 7 classes, else every class its own group."""
    if num_classes == len(CITYSCAPES_7_GROUPS):
        return [CITYSCAPES_7_GROUPS[c] for c in range(num_classes)]
    return list(range(num_classes))


class DepthToGroupTranslator(nn.Sequential):
    """(N, 1, H, W) depth / max_depth -> (N, G, H, W) group logits. Four convolutions; the
    dilations 1, 2, 4 widen the receptive field to 15 pixels so shapes, not just values, count."""

    def __init__(self, num_groups: int, channels: int):
        super().__init__(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=4, dilation=4), nn.ReLU(inplace=True),
            nn.Conv2d(channels, num_groups, 1))


class CrossTaskDistill(DistillMethod):
    """The `xdistill` method (module docstring)."""
    name = 'xdistill'
    Params = XDistillParams
    teachers_needed = ('seg',)
    uses_labels = True

    def __init__(self, params: XDistillParams, student: nn.Module, num_classes: int,
                 max_depth: float):
        super().__init__(params, student, num_classes, max_depth)
        grouping = params.grouping if params.grouping is not None else default_grouping(num_classes)
        if len(grouping) != num_classes:
            raise ValueError(f'grouping has {len(grouping)} entries, the class set has '
                             f'{num_classes}')
        self.register_buffer('grouping', torch.tensor(grouping, dtype=torch.long),
                             persistent=False)
        with seeded_init(3):
            self.translator = DepthToGroupTranslator(max(grouping) + 1,
                                                     params.translator_channels)

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        params = self.params
        terms = task_loss_terms(batch, student_out, params.seg_weight, params.depth_weight,
                                params.depth_loss)
        if params.lambda_x:
            group_logits = self.translator(student_out.depth / self.max_depth)
            teacher_labels = teacher_hard_labels(teacher_outs['seg'], group_logits.shape[-2:])
            target = group_labels(teacher_labels, self.grouping)
            terms['x/depth_to_groups'] = params.lambda_x * masked_cross_entropy(group_logits,
                                                                                target)
        return terms
