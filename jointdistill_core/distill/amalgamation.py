"""`amalgamation`: label-free knowledge amalgamation from two single-task teachers
(after Ye et al. 2019, "Student Becoming the Master"). Never reads class labels; reads
ground-truth depth only with depth_label_weight > 0 (below).

L = w_seg * L_seg(z_S, z_Tseg) + w_depth * L_depth(d_S, d_Tdepth)
    + lambda_feat * sum_{t in seg, depth} sum_{l in enc, dec}
        mean_px || n(A_t^l(SE_t^l(f_S^l))) - n(f_{T_t}^l) ||^2

L_seg: 'soft' = T^2 KL(softmax(z_Tseg/T) || softmax(z_S/T)); 'hard' = CE(z_S, argmax z_Tseg);
a class-mapped teacher's void pixels are skipped by both.
L_depth: 'l1' = mean |d_S - d_T| (metres); 'silog' = Eigen's scale-invariant log loss; for a
relative teacher its depth anchored to the ground truth on frames that have it (then as
metric), the scale-and-shift-invariant loss on the others (teacher_depth_loss). The student's
metric scale then must come from somewhere: a relative teacher needs depth_label_weight > 0,
which adds depth_label_weight * L_depth(d_S, ground-truth depth) over the pixels with ground
truth (0 for samples without any, e.g. the user's unlabelled frames mixed with synthetic ones);
without it a relative teacher is a configuration error at set-up.
SE_t^l is a squeeze-and-excitation channel gate (global average pool, 1x1 conv down by 4,
ReLU, 1x1 conv up, sigmoid) that picks the student channels relevant to teacher t, as Ye et
al.'s channel-coding branches do; A_t^l a 1x1 convolution to the teacher's channel count.

Simplification: Ye et al. feed the gated student features through the frozen teachers'
decoder blocks and compare the resulting outputs. The teacher networks here expose features,
not callable decoder blocks, so the gated, adapted student features are matched directly to
the teacher's encoder output ('enc', i.e. the input its decoder receives) and to its last
decoder feature ('dec_t'), plus the output losses above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from jointdistill_core.config import ConfigError, setting
from jointdistill_core.data.sample import Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import (
    anchor_labels,
    depth_distance,
    feature_key,
    kl_with_temperature,
    masked_cross_entropy,
    module_device,
    normalized_feature_distance,
    probe_teacher_channels,
    seeded_init,
    student_feature_channels,
    teacher_depth_loss,
    teacher_hard_labels,
)
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.tasks import TASKS

LAYERS = ('enc', 'dec')


@dataclass
class AmalgamationParams:
    """seg_weight / depth_weight: weights of the output losses against each teacher.
    seg_target: 'soft' (KL on softened teacher probabilities) or 'hard' (CE on its argmax).
    temperature: T of the soft segmentation target.
    depth_loss: 'l1' (metres), 'log_l1' (log metres) or 'silog' (scale-invariant log, Eigen
      et al. 2014).
    silog_variance_weight: the lambda of the silog loss (1 = fully scale invariant).
    lambda_feat: weight of the gated feature-matching terms (0 = off).
    depth_label_weight: weight of the supervised depth term on ground-truth depth, where a
      sample has it (0 = off: the method reads no ground truth at all); it gives a relative
      depth teacher's student its metric scale."""

    seg_weight: float = setting(1.0, ge=0)
    depth_weight: float = setting(1.0, ge=0)
    seg_target: Literal['soft', 'hard'] = 'soft'
    temperature: float = setting(2.0, gt=0)
    depth_loss: Literal['l1', 'log_l1', 'silog'] = 'l1'
    silog_variance_weight: float = setting(0.5, ge=0, le=1)
    lambda_feat: float = setting(1.0, ge=0)
    depth_label_weight: float = setting(0.0, ge=0)


class ChannelGate(nn.Module):
    """Squeeze-and-excitation gate: (N, C, H, W) -> same, each channel scaled by a learnt
    weight in (0, 1) computed from the image's channel means."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.excite = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.excite(features)


@torch.no_grad()
def _check_metric_teacher(teacher: nn.Module, images: torch.Tensor) -> None:
    """Without depth labels the depth teacher is the only source of scale: it must be
    metric."""
    kind = teacher(images).depth_kind
    if kind != 'metric':
        raise ConfigError(
            f'teachers.depth.depth_kind: amalgamation with depth_label_weight 0 reads no ground '
            f'truth, so with a {kind} depth teacher nothing gives the student its metric scale; '
            'use a metric depth teacher, or set method.params.depth_label_weight > 0 with '
            'metric depth in the data (e.g. synthetic frames mixed in)')


class Amalgamation(DistillMethod):
    """The `amalgamation` method (module docstring): no labels, teachers' outputs only."""
    name = 'amalgamation'
    Params = AmalgamationParams
    teachers_needed = TASKS
    uses_labels = False

    def __init__(self, params: AmalgamationParams, student: nn.Module, num_classes: int,
                 max_depth: float):
        super().__init__(params, student, num_classes, max_depth)
        if params.depth_label_weight and params.depth_loss == 'silog':
            raise ValueError('depth_label_weight > 0 gives the student its metric scale from '
                             "the ground truth, which depth_loss 'silog' ignores (it is scale "
                             "invariant); use depth_loss 'l1' or 'log_l1'")
        self.student_channels = student_feature_channels(student)
        self.adaptors = nn.ModuleDict()  # '<task>_<layer>' -> gate + 1x1, built in setup()

    @property
    def label_keys(self) -> tuple[str, ...]:
        return ('depth',) if self.params.depth_label_weight else ()

    def setup(self, probe_batch: Sample, val_batch: Sample, teachers: dict[str, nn.Module]) -> None:
        device = module_device(self.student)
        images = probe_batch['image'][:1].to(device)
        if self.params.depth_weight and not self.params.depth_label_weight:
            _check_metric_teacher(teachers['depth'], images)
        if not self.params.lambda_feat:
            return
        with seeded_init(4):
            for task in TASKS:
                keys = [feature_key(layer, task) for layer in LAYERS]
                teacher_channels = probe_teacher_channels(teachers[task], images, task, keys)
                for layer, key in zip(LAYERS, keys):
                    student_channels = self.student_channels[key]
                    self.adaptors[f'{task}_{layer}'] = nn.Sequential(
                        ChannelGate(student_channels),
                        nn.Conv2d(student_channels, teacher_channels[key], kernel_size=1))
        self.adaptors.to(device)

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        params = self.params
        terms = {}
        if params.seg_weight:
            terms['amal/seg'] = params.seg_weight * self.seg_loss(student_out.seg_logits,
                                                                  teacher_outs['seg'])
        if params.depth_weight:
            terms['amal/depth'] = params.depth_weight * self.depth_loss(
                student_out.depth, teacher_outs['depth'],
                anchor_labels(batch, teacher_outs['depth'].depth_kind))
        if params.depth_label_weight:
            terms['amal/depth_labels'] = params.depth_label_weight * depth_distance(
                params.depth_loss, student_out.depth, batch['depth'],
                params.silog_variance_weight)
        if params.lambda_feat:
            for task in TASKS:
                terms[f'amal/feat_{task}'] = params.lambda_feat * self.feature_loss(
                    task, student_out, teacher_outs[task])
        return terms

    def seg_loss(self, student_logits: torch.Tensor, teacher_out: ModelOutput) -> torch.Tensor:
        if self.params.seg_target == 'soft':
            return kl_with_temperature(student_logits, teacher_out.seg_logits,
                                       self.params.temperature, ignore=teacher_out.seg_void)
        return masked_cross_entropy(student_logits, teacher_hard_labels(teacher_out))

    def depth_loss(self, student_depth: torch.Tensor, teacher_out: ModelOutput,
                   depth_labels: torch.Tensor | None) -> torch.Tensor:
        """L_depth for a metric teacher; for a relative one anchored to `depth_labels` where an
        image has them (read only with depth_label_weight > 0), else scale-and-shift-invariant
        (teacher_depth_loss)."""
        return teacher_depth_loss(student_depth, teacher_out.depth.detach(),
                                  teacher_out.depth_kind, self.params.depth_loss,
                                  self.params.silog_variance_weight, depth_labels,
                                  self.max_depth)

    def feature_loss(self, task: str, student_out: ModelOutput,
                     teacher_out: ModelOutput) -> torch.Tensor:
        total = 0.0
        for layer in LAYERS:
            key = feature_key(layer, task)
            adapted = self.adaptors[f'{task}_{layer}'](student_out.features[key])
            total = total + normalized_feature_distance(adapted,
                                                        teacher_out.features[key].detach())
        return total
