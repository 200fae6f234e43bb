"""Bring-your-own teacher: a TorchScript or ONNX file used as a frozen single-task teacher.

The file maps a (N, 3, H, W) float RGB image in [0, 1] to segmentation logits (N, C, H, W)
or to depth (N, 1, H, W) in metres at the input resolution; it does its own normalisation.
A TorchScript archive contains code that runs when called: load only files you trust.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jointdistill_core.models.outputs import ModelOutput

TASKS = ('seg', 'depth')
_ZIP_MAGIC = b'PK\x03\x04'  # TorchScript archives are zip files


class ExternalModelError(ValueError):
    """The external teacher file is missing, unreadable, or returns the wrong shape."""


class ExternalTeacher(nn.Module):
    """A frozen teacher from a TorchScript (.pt/.ts, zip archive) or ONNX file.

    forward(x: (N, 3, H, W) in [0, 1]) -> ModelOutput with seg_logits (task 'seg') or
    depth (task 'depth', metres), and no features (methods that distil features need the
    built-in teachers). `num_classes` is known after the first call for task 'seg'.
    The backend is chosen from the file's content, not its name: a zip archive is loaded
    with torch.jit.load (and follows `.to(device)`), anything else is handed to
    onnxruntime's CPU provider (its outputs are moved to the input's device).
    """

    def __init__(self, path: str | Path, task: str, max_depth: float = 80.0) -> None:
        super().__init__()
        if task not in TASKS:
            raise ExternalModelError(f'ExternalTeacher {path}: task must be one of {TASKS}, '
                                     f'got {task!r}')
        self.path = Path(path)
        self.task = task
        self.max_depth = float(max_depth) if task == 'depth' else None
        self.num_classes = 0
        self.feature_channels: dict[str, int] = {}
        self.feature_strides: dict[str, int] = {}
        self.spec = {'arch': 'external', 'path': str(self.path), 'task': task}
        if not self.path.is_file():
            raise ExternalModelError(f'ExternalTeacher: file not found: {self.path}')
        with open(self.path, 'rb') as handle:
            magic = handle.read(4)
        self._script: torch.jit.ScriptModule | None = None
        self._session = None
        if magic == _ZIP_MAGIC:
            self.backend = 'torchscript'
            self._script = self._load_torchscript()
        else:
            self.backend = 'onnxruntime'
            self._session = self._load_onnx()

    def _load_torchscript(self) -> torch.jit.ScriptModule:
        try:
            with warnings.catch_warnings():  # deprecated upstream, still what users ship
                warnings.simplefilter('ignore', DeprecationWarning)
                module = torch.jit.load(str(self.path), map_location='cpu')
        except Exception as error:  # torch raises RuntimeError/ValueError variants
            raise ExternalModelError(f'ExternalTeacher {self.path}: not a readable TorchScript '
                                     f'archive ({type(error).__name__}: {error})'.split('\n')[0]
                                     ) from error
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        return module

    def _load_onnx(self):
        import onnxruntime as ort
        try:
            session = ort.InferenceSession(str(self.path), providers=['CPUExecutionProvider'])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ExternalModelError(f'ExternalTeacher {self.path}: neither a TorchScript '
                                     f'archive nor a valid ONNX model ({error})'.split('\n')[0]
                                     ) from error
        if len(session.get_inputs()) != 1:
            raise ExternalModelError(f'ExternalTeacher {self.path}: the ONNX model must take one '
                                     f'input, it takes {len(session.get_inputs())}')
        return session

    def train(self, mode: bool = True) -> ExternalTeacher:
        """Always stays in eval mode: an external teacher is frozen."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> ModelOutput:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'ExternalTeacher {self.path}: expected input (N, 3, H, W), '
                             f'got {tuple(x.shape)}')
        if self._script is not None:
            output = self._script(x.float())
        else:
            input_name = self._session.get_inputs()[0].name
            array = self._session.run(None, {input_name: x.detach().float().cpu().numpy()})[0]
            output = torch.from_numpy(np.ascontiguousarray(array)).to(x.device)
        output = self._check_output(output, x)
        if self.task == 'seg':
            self.num_classes = int(output.shape[1])
            return ModelOutput(seg_logits=output, depth=None, features={})
        return ModelOutput(seg_logits=None, depth=output, features={})

    def _check_output(self, output: object, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise ExternalModelError(f'ExternalTeacher {self.path}: the model must return one '
                                     f'tensor, it returned {type(output).__name__}')
        n, _, h, w = x.shape
        expected = f'(N={n}, C>=2, H={h}, W={w})' if self.task == 'seg' else \
            f'(N={n}, 1, H={h}, W={w})'
        bad_channels = output.dim() == 4 and (
            output.shape[1] < 2 if self.task == 'seg' else output.shape[1] != 1)
        if output.dim() != 4 or bad_channels or output.shape[0] != n or \
                tuple(output.shape[2:]) != (h, w):
            raise ExternalModelError(f'ExternalTeacher {self.path} (task {self.task}): output '
                                     f'shape {tuple(output.shape)}, expected {expected}')
        return output.float()
