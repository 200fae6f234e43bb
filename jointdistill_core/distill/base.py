"""The interface every distillation method implements (one module, one class each).

The trainer, per training step::

    student_out = student(batch['image'])
    teacher_outs = {task: teacher(batch['image']) for task, teacher in teachers.items()}  # no grad
    terms = method.losses(batch, student_out, teacher_outs)     # named, already weighted
    total = sum(terms.values()); total.backward(); optimizer.step()
    logged = method.on_step_end(step, student)                  # e.g. adaptive teacher weights

Before the first step the trainer calls ``method.setup(probe_batch, val_batch, teachers)``
once. A method's own trainable modules (adaptors, connectors, translators) are submodules
of the method; the trainer gives them their own optimizer parameter group, moves the method
to the student's device after setup and saves it with the training state. A method holds
the student it was built for as ``self.student`` (a reference, not a submodule). A method
that must not see labels sets ``uses_labels = False``; the trainer then strips ``labels``
and ``depth`` from the batch before calling it, except those named by ``label_keys`` (a
label-free method may still read ground-truth depth for the metric scale).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from jointdistill_core.data.sample import Sample
from jointdistill_core.models.outputs import ModelOutput


@dataclass
class NoParams:
    """For methods without extra hyperparameters."""


class DistillMethod(nn.Module):
    """The interface of every distillation method (module docstring)."""
    name: ClassVar[str]
    Params: ClassVar[type] = NoParams
    # Teachers the method needs, a subset of TASKS.
    teachers_needed: ClassVar[tuple[str, ...]] = ()
    uses_labels: ClassVar[bool] = True

    def __init__(self, params, student: nn.Module, num_classes: int, max_depth: float):
        super().__init__()
        self.params = params
        self.num_classes = num_classes
        self.max_depth = max_depth
        # A plain reference, not a submodule: the student's parameters and state belong to
        # the trainer (its own optimizer group and checkpoint), not to the method's.
        self.__dict__['student'] = student

    @property
    def label_keys(self) -> tuple[str, ...]:
        """The ground-truth keys of a batch ('labels', 'depth') this method reads; the
        trainer strips the others."""
        return ('labels', 'depth') if self.uses_labels else ()

    def setup(self, probe_batch: Sample, val_batch: Sample, teachers: dict[str, nn.Module]) -> None:
        """Called once before training. Methods that need no set-up keep this default."""

    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        """Named, already weighted scalar loss terms; the trainer minimises their sum."""
        raise NotImplementedError(f'{type(self).__name__} must implement losses()')

    def on_step_end(self, step: int, student: nn.Module) -> dict[str, float]:
        """Called after each optimizer step; returns values to log (teacher weights, ...)."""
        return {}
