"""`static_kd`: multi-teacher feature distillation with fixed weights (Li & Bilen 2020).

L = sum_t L_task,t
    + sum_{t in seg, depth} lambda_t * sum_{l in layers}
          mean_px || n(A_t^l f_S^l) - n(f_{T_t}^l) ||^2
    + logit_kd_weight * (T^2 KL(softmax(z_Tseg/T) || softmax(z_S/T)) + D(d_S, d_Tdepth)).

D is the method's depth loss (`depth_loss`) for a metric depth teacher; a relative one's
depth is anchored to the ground truth on frames that have it and matched by the
scale-and-shift-invariant loss on the others (`teacher_depth_loss`); the KL skips a
class-mapped teacher's void pixels.

Layer 'enc' pairs the student's shared encoder output with teacher t's encoder output;
layer 'dec' pairs the student's task-t decoder feature with teacher t's decoder feature.
A^l_t are 1x1 convolutions created in setup(), once the teachers' channel counts are known
(read from one teacher forward pass on the probe batch, so any teacher that returns these
features works). Student features are resized bilinearly to the teacher's spatial size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jointdistill_core.config import setting, subset_of
from jointdistill_core.data.sample import Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import (
    anchor_labels,
    feature_key,
    kl_with_temperature,
    module_device,
    normalized_feature_distance,
    probe_teacher_channels,
    seeded_init,
    student_feature_channels,
    task_loss_terms,
    teacher_depth_loss,
)
from jointdistill_core.distill.mtl import TaskWeights
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.tasks import TASKS

LAYER_CHOICES = ('enc', 'dec')


@dataclass
class StaticKDParams(TaskWeights):
    """lambda_seg / lambda_depth: weight of each teacher's feature-distillation term.
    layers: which feature pairs to distil, a subset of ['enc', 'dec'].
    logit_kd_weight: weight of the optional output distillation (0 = off).
    temperature: softmax temperature T of the segmentation logit KD."""

    lambda_seg: float = setting(1.0, ge=0)
    lambda_depth: float = setting(1.0, ge=0)
    layers: list[str] = setting(default_factory=lambda: ['enc', 'dec'],
                                check=subset_of(LAYER_CHOICES))
    logit_kd_weight: float = setting(0.0, ge=0)
    temperature: float = setting(2.0, gt=0)


class StaticKD(DistillMethod):
    """The `static_kd` method (module docstring)."""
    name = 'static_kd'
    Params = StaticKDParams
    teachers_needed = TASKS
    uses_labels = True

    def __init__(self, params: StaticKDParams, student: nn.Module, num_classes: int,
                 max_depth: float):
        super().__init__(params, student, num_classes, max_depth)
        self.student_channels = student_feature_channels(student)
        self.adaptors = nn.ModuleDict()  # 'seg_enc', 'seg_dec', ... filled in setup()

    def setup(self, probe_batch: Sample, val_batch: Sample, teachers: dict[str, nn.Module]) -> None:
        device = module_device(self.student)
        images = probe_batch['image'][:1].to(device)
        with seeded_init(1):
            for task in TASKS:
                keys = [feature_key(layer, task) for layer in self.params.layers]
                teacher_channels = probe_teacher_channels(teachers[task], images, task, keys)
                for layer, key in zip(self.params.layers, keys):
                    self.adaptors[f'{task}_{layer}'] = nn.Conv2d(
                        self.student_channels[key], teacher_channels[key], kernel_size=1)
        self.adaptors.to(device)

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        params = self.params
        terms = task_loss_terms(batch, student_out, params.seg_weight, params.depth_weight,
                                params.depth_loss)
        for task, weight in (('seg', params.lambda_seg), ('depth', params.lambda_depth)):
            if weight:
                terms[f'kd/feat_{task}'] = weight * self.feature_loss(
                    task, student_out, teacher_outs[task])
        if params.logit_kd_weight:
            seg_out, depth_out = teacher_outs['seg'], teacher_outs['depth']
            terms['kd/logit_seg'] = params.logit_kd_weight * kl_with_temperature(
                student_out.seg_logits, seg_out.seg_logits, params.temperature,
                ignore=seg_out.seg_void)
            terms['kd/logit_depth'] = params.logit_kd_weight * teacher_depth_loss(
                student_out.depth, depth_out.depth.detach(), depth_out.depth_kind,
                params.depth_loss, depth_labels=anchor_labels(batch, depth_out.depth_kind),
                max_depth=self.max_depth)
        return terms

    def feature_loss(self, task: str, student_out: ModelOutput,
                     teacher_out: ModelOutput) -> torch.Tensor:
        total = 0.0
        for layer in self.params.layers:
            key = feature_key(layer, task)
            adapted = self.adaptors[f'{task}_{layer}'](student_out.features[key])
            total = total + normalized_feature_distance(adapted,
                                                        teacher_out.features[key].detach())
        return total
