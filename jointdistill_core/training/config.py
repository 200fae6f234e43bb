"""The typed training configuration (`jointdistill train --config FILE`).

Every key is documented in docs/training.md. Loaded strictly: unknown keys and wrong types
are errors naming the key path and the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jointdistill_core.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml_mapping,
    setting,
)
from jointdistill_core.device import check_device_name
from jointdistill_core.geometry import parse_size
from jointdistill_core.tasks import TASKS
from jointdistill_core.teachers.base import check_options


@dataclass
class ModelConfig:
    """The network to train: `arch` is 'student', 'seg_teacher' or 'depth_teacher'; `kwargs`
    go to its constructor (width, max_depth, num_classes, ...)."""
    arch: str = 'student'
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodConfig:
    """Distillation method (registry name) and its hyperparameters (the method's `Params`
    dataclass, checked when the configuration loads)."""
    name: str = 'mtl'
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TeacherConfig:
    """A frozen teacher (docs/teachers.md). `path`: a transformers model folder, an ONNX or
    TorchScript file, or a checkpoint of this project; `kind`: 'auto' (detected from the path),
    'transformers', 'onnx', 'torchscript' or 'checkpoint'. `class_map` (segmentation): a shipped
    map's name or a YAML file mapping the teacher's classes to the student's. `depth_kind`
    (depth): 'metric', 'relative' or 'relative_inverse'; null = the model's own (transformers)
    or 'metric'. Pre- and post-processing (null = the kind's default): `input_size` 'HxW' or
    `size_multiple` pixels, `mean` / `std` per channel for images in [0, 1], `channel_order`
    'rgb' or 'bgr', `output_stride` (the output is the input divided by it), `output_kind`
    'logits' or 'probabilities', `output` (name or index of the output to use)."""
    path: str = ''
    kind: Literal['auto', 'transformers', 'onnx', 'torchscript', 'checkpoint'] = 'auto'
    class_map: str | None = None
    depth_kind: Literal['metric', 'relative', 'relative_inverse'] | None = None
    input_size: str | None = setting(None, check=parse_size)
    size_multiple: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    channel_order: Literal['rgb', 'bgr'] | None = None
    output_stride: int | None = None
    output_kind: Literal['logits', 'probabilities'] | None = None
    output: str | None = None


@dataclass
class TeachersConfig:
    """The frozen teachers per task; null = no teacher for that task."""
    seg: TeacherConfig | None = None
    depth: TeacherConfig | None = None


@dataclass
class DataConfig:
    """`spec` as for the dataset registry: synthetic, synthetic:DIR, nyuv2:DIR, cityscapes:DIR,
    folder:DIR, camvid:DIR, or a mixed spec `A@w,B@w` (docs/datasets.md). `val_spec`: the
    validation data when it differs from `spec` (null = `spec`'s `val_split`). `size` is 'HxW'
    pixels or null for the dataset's own size. `batch_size` is the GLOBAL batch: under DDP
    each of the P processes loads batch_size / P samples."""
    spec: str = 'synthetic'
    val_spec: str | None = None
    train_split: str = 'train'
    val_split: str = 'val'
    size: str | None = setting('128x256', check=parse_size)
    num_frames: int | None = setting(None, ge=1)
    val_frames: int | None = setting(None, ge=1)
    augment: bool = False
    batch_size: int = setting(8, ge=1)
    workers: int = setting(0, ge=0)

    def size_pixels(self) -> tuple[int, int] | None:
        """`size` as (height, width) pixels; None for the dataset's own size."""
        return None if self.size is None else parse_size(self.size)


@dataclass
class OptimConfig:
    """AdamW. `adaptor_lr` is the learning rate of the method's own modules (adaptors,
    connectors, translators); null = `lr`. `eps` is AdamW's denominator epsilon."""
    lr: float = setting(1e-3, ge=0)
    weight_decay: float = setting(1e-4, ge=0)
    adaptor_lr: float | None = setting(None, ge=0)
    eps: float = setting(1e-8, gt=0)


@dataclass
class ScheduleConfig:
    """Learning-rate factor per step: linear warm-up over `warmup` steps, then 'cosine'
    (down to `min_factor` at the last step) or 'step' (times `gamma` every `step_every`)."""
    name: Literal['cosine', 'step'] = 'cosine'
    warmup: int = setting(0, ge=0)
    min_factor: float = setting(0.0, ge=0, le=1)
    step_every: int = setting(1000, ge=1)
    gamma: float = 0.1


@dataclass
class TrainConfig:
    """task: 'multi' trains the student with `method`; 'seg' / 'depth' train a single-task
    teacher with its plain task loss (cross-entropy / L1 on valid pixels).

    amp: mixed precision, fp16 autocast with loss scaling on CUDA, bf16 autocast on CPUs
    with native bf16 (avx512_bf16 or AMX). channels_last: NHWC memory layout for the
    student and teachers (same results, faster convolutions on CPUs and tensor cores)."""
    task: Literal['multi', 'seg', 'depth'] = 'multi'
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    teachers: TeachersConfig = field(default_factory=TeachersConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps: int = setting(1000, ge=1)
    val_every: int = setting(200, ge=1)
    log_every: int = setting(10, ge=1)
    seed: int = 0
    out: str = 'runs/train'
    device: str = setting('auto', check=check_device_name)
    amp: bool = False
    channels_last: bool = False


def validate(config: TrainConfig, source: str) -> TrainConfig:
    """Checks across fields and the method's parameters (per-field rules ran while loading);
    errors name the file and the key."""
    from jointdistill_core.distill import method_params  # imports torch and every method

    def fail(key: str, message: str):
        raise ConfigError(f'{source}: {key}: {message}')

    method_params(config.method.name, config.method.params, source, 'method.params')
    for task in TASKS:
        teacher = getattr(config.teachers, task)
        if teacher is None:
            continue
        if not teacher.path:
            fail(f'teachers.{task}.path', 'is empty')
        for key, problem in check_options(teacher, task):
            fail(f'teachers.{task}.{key}', problem)
    if config.task != 'multi' and (config.teachers.seg or config.teachers.depth):
        fail('teachers', f'task {config.task!r} trains a teacher from labels; remove teachers')
    return config


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read FILE, apply `key=value` overrides, check types and cross-field rules.
    Relative teacher paths are resolved against the current directory (where the command
    runs), as are `out` and dataset directories."""
    mapping = apply_overrides(load_yaml_mapping(path), overrides or [])
    return validate(from_dict(TrainConfig, mapping, source=str(path)), str(path))
