"""`checkpoint` teachers: a network of this project saved by `jointdistill train`
(X.safetensors + X.json). It normalises inside and exposes every feature the methods use."""
from __future__ import annotations

from pathlib import Path

import torch

from jointdistill_core.teachers.base import Preprocessing, RawOutput, TeacherBackend, TeacherError

_PREDICTION = {'seg': 'seg_logits', 'depth': 'depth'}


class CheckpointTeacher(TeacherBackend):
    """A checkpoint of this project as a teacher (features included)."""
    kind = 'checkpoint'
    options = frozenset({'input_size', 'size_multiple'})

    def __init__(self, path: Path, task: str, device: torch.device) -> None:
        from jointdistill_core.checkpoint import load_checkpoint
        super().__init__(path, task)
        self.model, config = load_checkpoint(path, device)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.architecture = config['model'].get('arch', 'checkpoint')
        self.canonical_focal_px = getattr(self.model, 'canonical_focal_px', None)
        self.defaults = Preprocessing(size_multiple=32)  # the networks take multiples of 32

    @classmethod
    def detect(cls, path: Path) -> bool:
        from jointdistill_core.checkpoint import checkpoint_paths
        weights, config = checkpoint_paths(path)
        return path.suffix in ('.safetensors', '.json') or (weights.is_file() and config.is_file())

    def forward(self, images: torch.Tensor) -> RawOutput:
        out = self.model(images)
        prediction = getattr(out, _PREDICTION[self.task])
        if prediction is None:
            raise TeacherError(f'{self.path}: the {self.architecture} checkpoint predicts no '
                               f'{_PREDICTION[self.task]}, which a {self.task} teacher must')
        return RawOutput(prediction, dict(out.features))
