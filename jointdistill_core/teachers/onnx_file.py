"""`onnx` teachers: an ONNX file run by onnxruntime (CUDA when the training device is CUDA
and onnxruntime has it, else CPU). A fixed input shape in the graph fixes the input size
(and a fixed batch size is run in chunks); outputs are chosen by name. No features."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from jointdistill_core.teachers.base import Preprocessing, RawOutput, TeacherBackend, TeacherError

FILE_OPTIONS = frozenset({'input_size', 'size_multiple', 'mean', 'std', 'channel_order',
                          'output_stride', 'output_kind', 'output'})
# Output names tried, in order, when a file has several outputs and `output` is not set.
TASK_OUTPUT_NAMES = {'seg': ('seg_logits', 'logits'), 'depth': ('depth', 'predicted_depth')}
_NUMPY_TYPES = {'tensor(float)': np.float32, 'tensor(float16)': np.float16}


def choose_output(names: list[str], task: str, wanted: str | None, where: str) -> int:
    """Index of the output to use among `names`: `wanted` (a name or an index), the only
    one, or the first of TASK_OUTPUT_NAMES[task] present."""
    if wanted is not None:
        if wanted in names:
            return names.index(wanted)
        if wanted.isdigit() and int(wanted) < len(names):
            return int(wanted)
        raise TeacherError(f'{where}: no output {wanted!r} (outputs: {", ".join(names)})',
                           'output')
    if len(names) == 1:
        return 0
    for name in TASK_OUTPUT_NAMES[task]:
        if name in names:
            return names.index(name)
    raise TeacherError(f'{where}: the model has {len(names)} outputs ({", ".join(names)}); '
                       'set output to the name or index of the one to distil', 'output')


class OnnxTeacher(TeacherBackend):
    """An ONNX file as a teacher, run by onnxruntime."""
    kind = 'onnx'
    options = FILE_OPTIONS

    def __init__(self, path: Path, task: str, device: torch.device,
                 output: str | None = None) -> None:
        import onnxruntime as ort
        super().__init__(path, task)
        providers = ['CPUExecutionProvider']
        if device.type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
            providers.insert(0, 'CUDAExecutionProvider')
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
            reason = str(error).split('\n')[0]
            raise TeacherError(f'{path}: not a valid ONNX model ({reason}); if it is another '
                               'kind of teacher, set kind') from error
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise TeacherError(f'{path}: the ONNX model must take one input (an image batch), '
                               f'it takes {len(inputs)}')
        self.input = inputs[0]
        if self.input.type not in _NUMPY_TYPES or len(self.input.shape) != 4:
            raise TeacherError(f'{path}: the ONNX input {self.input.name!r} is '
                               f'{self.input.type} {self.input.shape}, expected a float '
                               '(N, 3, H, W) image batch')
        names = [node.name for node in self.session.get_outputs()]
        self.output_index = choose_output(names, task, output, str(path))
        self.architecture = f'onnx output {names[self.output_index]!r}'
        batch, _, height, width = self.input.shape
        self.fixed_batch = batch if isinstance(batch, int) else None
        fixed_size = (height, width) if isinstance(height, int) and isinstance(width, int) \
            else None
        self.defaults = Preprocessing(input_size=fixed_size)

    @classmethod
    def detect(cls, path: Path) -> bool:
        """Any other file: the registry tries this kind last (ONNX files carry no magic)."""
        return path.is_file()

    def forward(self, images: torch.Tensor) -> RawOutput:
        array = images.detach().cpu().numpy().astype(_NUMPY_TYPES[self.input.type])
        chunk = self.fixed_batch or len(array)
        results = []
        for start in range(0, len(array), chunk):
            part = array[start:start + chunk]
            padding = chunk - len(part)
            if padding:  # a fixed batch size: repeat the last image, drop its outputs
                part = np.concatenate([part, np.repeat(part[-1:], padding, axis=0)])
            output = self.session.run(None, {self.input.name: part})[self.output_index]
            results.append(output[:len(output) - padding])
        prediction = torch.from_numpy(np.ascontiguousarray(np.concatenate(results)))
        return RawOutput(prediction.float().to(images.device), {})
