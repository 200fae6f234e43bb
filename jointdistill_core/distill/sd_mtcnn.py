"""`sd_mtcnn`: self-distillation from the task decoders into the shared encoder
(Jha et al. 2020). No teachers.

L = sum_t L_task,t + lambda_sd * sum_{t in seg, depth}
      mean_px || n(A_t E(x)) - stopgrad(n(resize(D_t(x)))) ||^2

E(x) is the student's encoder output 'enc', D_t(x) its task-t decoder feature 'dec_t'
(shrunk with area interpolation to the encoder's spatial size), A_t a 1x1 convolution from
the encoder's channels to the decoder's. The decoder side is a fixed target: gradients reach
the encoder and the adaptors only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jointdistill_core.config import setting
from jointdistill_core.data.sample import Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import (
    normalized_feature_distance,
    resize_to,
    seeded_init,
    student_feature_channels,
    task_loss_terms,
)
from jointdistill_core.distill.mtl import TaskWeights
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.tasks import TASKS


@dataclass
class SelfDistillParams(TaskWeights):
    """lambda_sd: weight of the decoder-to-encoder self-distillation term (per task, summed)."""

    lambda_sd: float = setting(1.0, ge=0)


class SelfDistillMTCNN(DistillMethod):
    """The `sd_mtcnn` method (module docstring)."""
    name = 'sd_mtcnn'
    Params = SelfDistillParams
    teachers_needed = ()
    uses_labels = True

    def __init__(self, params: SelfDistillParams, student: nn.Module, num_classes: int,
                 max_depth: float):
        super().__init__(params, student, num_classes, max_depth)
        channels = student_feature_channels(student)
        with seeded_init(2):
            self.adaptors = nn.ModuleDict({
                task: nn.Conv2d(channels['enc'], channels[f'dec_{task}'], kernel_size=1)
                for task in TASKS})

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        params = self.params
        terms = task_loss_terms(batch, student_out, params.seg_weight, params.depth_weight,
                                params.depth_loss)
        if params.lambda_sd:
            encoder = student_out.features['enc']
            for task in TASKS:
                decoder = resize_to(student_out.features[f'dec_{task}'].detach(),
                                    encoder.shape[-2:], mode='area')
                terms[f'sd/{task}'] = params.lambda_sd * normalized_feature_distance(
                    self.adaptors[task](encoder), decoder)
        return terms
