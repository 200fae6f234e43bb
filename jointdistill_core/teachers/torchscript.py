"""`torchscript` teachers: a TorchScript archive (torch.jit.save, a zip file). It may return
a tensor, a tuple/list (chosen by index) or a dict (chosen by key). No features.
A TorchScript archive runs the code it contains: load only files you trust."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from jointdistill_core.teachers.base import RawOutput, TeacherBackend, TeacherError
from jointdistill_core.teachers.onnx_file import FILE_OPTIONS, choose_output

ZIP_MAGIC = b'PK\x03\x04'


class TorchScriptTeacher(TeacherBackend):
    """A TorchScript file as a teacher."""
    kind = 'torchscript'
    options = FILE_OPTIONS

    def __init__(self, path: Path, task: str, device: torch.device,
                 output: str | None = None) -> None:
        super().__init__(path, task)
        try:
            with warnings.catch_warnings():  # deprecated upstream, still what users ship
                warnings.simplefilter('ignore', DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location=device)
        except Exception as error:  # torch raises RuntimeError/ValueError variants
            raise TeacherError(f'{path}: not a readable TorchScript archive '
                               f'({type(error).__name__}: {error})'.split('\n')[0]) from error
        self.module.eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.output = output

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_file():
            return False
        with open(path, 'rb') as handle:
            return handle.read(4) == ZIP_MAGIC

    def forward(self, images: torch.Tensor) -> RawOutput:
        output = self.module(images)
        if isinstance(output, dict):
            names = [str(key) for key in output]
            output = list(output.values())[choose_output(names, self.task, self.output,
                                                         str(self.path))]
        elif isinstance(output, (tuple, list)):
            names = [str(index) for index in range(len(output))]
            output = output[choose_output(names, self.task, self.output, str(self.path))]
        return RawOutput(output, {})
