"""Teachers: one registry of adapters from a teacher's file or folder to the networks' interface.

    teacher = build_teacher(config, 'seg', device)     # config: a TeacherConfig
    out = teacher(images)                               # ModelOutput at the images' size

Kinds (`TEACHER_KINDS`, detected from the path when `kind` is 'auto', in this order):
    transformers  a folder with config.json (Hugging Face save_pretrained)
    checkpoint    X.safetensors + X.json written by `jointdistill train`
    torchscript   a TorchScript archive (a zip file)
    onnx          any other file
Every kind returns segmentation logits over the student's classes (through `class_map`) or
depth of a declared kind (`depth_kind`), at the input resolution; the checkpoint and
transformers kinds also return intermediate features, which static_kd, jointdistill's fusion
connector and amalgamation's feature terms distil (see docs/teachers.md).
"""
from __future__ import annotations

from pathlib import Path

import torch

from jointdistill_core.tasks import TASKS
from jointdistill_core.teachers.base import (
    RawOutput,
    TeacherAdapter,
    TeacherBackend,
    TeacherError,
    check_options,
)
from jointdistill_core.teachers.checkpoint import CheckpointTeacher
from jointdistill_core.teachers.class_map import (
    ClassMap,
    ClassMapError,
    load_class_map,
    shipped_class_maps,
)
from jointdistill_core.teachers.hf import TransformersTeacher
from jointdistill_core.teachers.onnx_file import OnnxTeacher
from jointdistill_core.teachers.torchscript import TorchScriptTeacher

TEACHER_KINDS: dict[str, type[TeacherBackend]] = {
    'transformers': TransformersTeacher,
    'checkpoint': CheckpointTeacher,
    'torchscript': TorchScriptTeacher,
    'onnx': OnnxTeacher,
}
# Options only some kinds accept (the others, path, kind, class_map, depth_kind, apply to all).
KIND_OPTIONS = ('input_size', 'size_multiple', 'mean', 'std', 'channel_order', 'output_stride',
                'output_kind', 'output')

__all__ = ['TASKS', 'TEACHER_KINDS', 'ClassMap', 'ClassMapError', 'RawOutput', 'TeacherAdapter',
           'TeacherBackend', 'TeacherError', 'build_teacher', 'check_options', 'detect_kind',
           'load_class_map', 'shipped_class_maps']


def detect_kind(path: str | Path) -> str:
    """The kind of teacher at `path` (see the module docstring), or a TeacherError."""
    path = Path(path)
    if not path.exists() and not CheckpointTeacher.detect(path):
        raise TeacherError(f'{path}: not found')
    for kind, backend in TEACHER_KINDS.items():
        if backend.detect(path):
            return kind
    raise TeacherError(f'{path}: a folder without config.json is not a transformers model '
                       f'(kinds: {", ".join(TEACHER_KINDS)})')


def build_teacher(config, task: str, device: torch.device | str = 'cpu') -> TeacherAdapter:
    """The frozen teacher for `task` ('seg' or 'depth') described by `config` (a TeacherConfig:
    path, kind, class_map, depth_kind and the pre/post-processing options), on `device`.
    Errors are TeacherError whose `key` names the option at fault."""
    if task not in TASKS:
        raise TeacherError(f'task must be one of {TASKS}, got {task!r}', 'task')
    for key, problem in check_options(config, task):
        raise TeacherError(problem, key)
    device = torch.device(device)
    path = Path(config.path)
    kind = detect_kind(path) if config.kind == 'auto' else config.kind
    if kind not in TEACHER_KINDS:
        raise TeacherError(f'unknown kind {kind!r} (kinds: auto, {", ".join(TEACHER_KINDS)})',
                           'kind')
    backend_class = TEACHER_KINDS[kind]
    for key in KIND_OPTIONS:
        if getattr(config, key) is not None and key not in backend_class.options:
            raise TeacherError(f'{kind} teachers take no {key} (their options: '
                               f'{", ".join(sorted(backend_class.options)) or "none"})', key)
    if not path.exists() and kind != 'checkpoint':
        raise TeacherError(f'{path}: not found')
    extra = {'output': config.output} if 'output' in backend_class.options else {}
    backend = backend_class(path, task, device, **extra)
    return TeacherAdapter(backend, config).to(device)
