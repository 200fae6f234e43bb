"""Where a student comes from: its teachers, its data and the command that trained it.

`jointdistill train` and `jointdistill distill` store this record in every checkpoint they
write, under the JSON's `extra.provenance`, and the model card (`model_card.py`) shows it:

    {"teachers": {"seg": {"name", "path", "kind", "architecture", "sha256", "class_map",
                          "class_map_sha256", "depth_kind"}, "depth": {...}},
     "data": {"spec", "val_spec", "train_split", "val_split", "size"},
     "command": "jointdistill distill --data ...",
     "depth_scale": "where the student's metric depth scale comes from" (distill only)}

A teacher's `sha256` identifies exactly the weights that taught: the SHA-256 of the file for
ONNX and TorchScript teachers, of the weights file (X.safetensors) for a checkpoint, and for a
transformers folder the SHA-256 over its files (each file's path relative to the folder, a
NUL byte, then the file's SHA-256 hex, in sorted path order), so renaming the folder keeps it.
Checkpoints written before provenance was recorded have none; they still load.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (teacher files can be GBs)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """SHA-256 over a folder's files (module docstring): independent of the folder's name."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob('*') if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b'\0')
        digest.update(file_sha256(path).encode() + b'\n')
    return digest.hexdigest()


def teacher_sha256(path: str | Path, kind: str) -> str:
    """The hash that identifies a teacher's weights (module docstring)."""
    path = Path(path)
    if kind == 'checkpoint':
        from jointdistill_core.checkpoint import checkpoint_paths
        return file_sha256(checkpoint_paths(path)[0])
    if path.is_dir():
        return folder_sha256(path)
    return file_sha256(path)


def teacher_record(teacher, config) -> dict:
    """Provenance of one built teacher: `teacher` a TeacherAdapter, `config` its TeacherConfig."""
    path = Path(teacher.path)
    class_map = teacher.class_map
    name = path.with_suffix('').name if teacher.kind == 'checkpoint' else path.name
    return {
        'name': name,
        'path': str(path),
        'kind': teacher.kind,
        'architecture': teacher.backend.architecture,
        'sha256': teacher_sha256(path, teacher.kind),
        'class_map': config.class_map,
        'class_map_sha256': file_sha256(class_map.source) if class_map is not None else None,
        'depth_kind': teacher.depth_kind,
    }


def run_provenance(config, teachers: dict, command: str | None,
                   depth_scale: str | None = None) -> dict:
    """The record of a training run: `config` its TrainConfig, `teachers` {task: adapter} as
    built, `command` the command line (None when not run from the CLI), `depth_scale` where
    the metric depth scale comes from (said by `distill`; None = not stated)."""
    data = config.data
    record = {
        'teachers': {task: teacher_record(teacher, getattr(config.teachers, task))
                     for task, teacher in teachers.items()},
        'data': {'spec': data.spec, 'val_spec': data.val_spec, 'train_split': data.train_split,
                 'val_split': data.val_split, 'size': data.size},
        'command': command,
    }
    if depth_scale is not None:
        record['depth_scale'] = depth_scale
    return record
