"""The shared half of every teacher adapter: pre-processing, post-processing, checks.

A teacher = a backend (one per kind: a project checkpoint, an ONNX file, a TorchScript file, a
transformers folder) that runs the model on its own input, wrapped in a `TeacherAdapter` that
    1. resizes the image batch (N, 3, H, W), RGB in [0, 1], to the model's input size (a
       declared `input_size`, else H and W rounded to the nearest `size_multiple`), orders
       the channels as the model wants them (RGB or BGR) and normalises them ((x - mean) / std
       per channel, mean and std given in the model's channel order);
    2. runs the backend without gradients;
    3. brings the prediction back: segmentation scores to logits (log of probabilities),
       through the class map, resized bilinearly to (H, W); depth resized to (H, W) and
       labelled with its depth kind;
and returns a `ModelOutput` plus whatever intermediate features the backend exposes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from jointdistill_core.distill.losses import resize_to
from jointdistill_core.geometry import parse_size
from jointdistill_core.models.outputs import DEPTH_KINDS, ModelOutput
from jointdistill_core.teachers.class_map import ClassMap, ClassMapError, load_class_map

OUTPUT_KINDS = ('logits', 'probabilities')
CHANNEL_ORDERS = ('rgb', 'bgr')
DECODER_STRIDE = 4  # decoder features finer than this are area-pooled to it (the students')
_PROBABILITY_FLOOR = 1e-8


class TeacherError(ValueError):
    """A teacher cannot be built or returns something unusable. `key` names the teacher
    option at fault ('path', 'kind', 'class_map', 'input_size', ...)."""

    def __init__(self, message: str, key: str = 'path') -> None:
        super().__init__(message)
        self.key = key


@dataclass
class RawOutput:
    """What a backend returns for its own input (N, 3, h, w): `prediction` (N, C, h', w')
    class scores or (N, 1, h', w') depth; `features` named maps (N, C_f, h_f, w_f) among
    'enc', 'enc_mid', 'dec_seg', 'dec_depth' (empty when the model exposes none)."""

    prediction: torch.Tensor
    features: dict[str, torch.Tensor]


@dataclass
class Preprocessing:
    """channel_order: 'rgb' or 'bgr', the model's. mean, std: per channel in the model's channel
    order, in the units of an image in [0, 1] (a model that takes 0-255 has std 1/255).
    input_size: (H, W) pixels the model always gets, or None; size_multiple: otherwise H and
    W are rounded to the nearest multiple of it (halves round up), at least one multiple."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = 'rgb'
    input_size: tuple[int, int] | None = None
    size_multiple: int = 1

    def model_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.input_size is not None:
            return self.input_size
        multiple = self.size_multiple
        return tuple(max(multiple, int(side / multiple + 0.5) * multiple) for side in size)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        size = self.model_size(tuple(images.shape[-2:]))
        if size != tuple(images.shape[-2:]):
            shrinking = size[0] < images.shape[-2] or size[1] < images.shape[-1]
            images = F.interpolate(images, size=size, mode='bilinear', align_corners=False,
                                   antialias=shrinking)
        if self.channel_order == 'bgr':
            images = images.flip(1)
        if self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0):
            mean = images.new_tensor(self.mean).view(1, 3, 1, 1)
            std = images.new_tensor(self.std).view(1, 3, 1, 1)
            images = (images - mean) / std
        return images


class TeacherBackend(nn.Module):
    """One kind of teacher file. Subclasses set `kind`, `options` (the teacher options,
    beyond path, kind, class_map, depth_kind, that the kind accepts) and in __init__ fill:
      defaults       Preprocessing the model needs unless the user declares otherwise
      output_kind    'logits' or 'probabilities' (segmentation)
      depth_kind     a DEPTH_KINDS entry read from the model, or None (then 'metric')
      architecture   a short description for messages and provenance
      canonical_focal_px  the focal length (pixels) of the canonical camera its metric depth
                     is for (jointdistill_core.canonical), None for depth of the input camera
    and implement `detect(path)` (does this file or folder look like this kind?) and
    `forward(images) -> RawOutput` on the pre-processed batch."""

    kind: ClassVar[str]
    options: ClassVar[frozenset[str]]

    def __init__(self, path: Path, task: str) -> None:
        super().__init__()
        self.path = path
        self.task = task
        self.defaults = Preprocessing()
        self.output_kind = 'logits'
        self.depth_kind: str | None = None
        self.architecture = self.kind
        self.canonical_focal_px: float | None = None

    @classmethod
    def detect(cls, path: Path) -> bool:
        raise NotImplementedError(f'{cls.__name__} must implement detect()')

    def forward(self, images: torch.Tensor) -> RawOutput:
        raise NotImplementedError(f'{type(self).__name__} must implement forward()')


class TeacherAdapter(nn.Module):
    """A frozen teacher for task 'seg' or 'depth' behind the networks' interface.

    forward(x: (N, 3, H, W) RGB in [0, 1]) -> ModelOutput at (H, W): seg_logits over the
    student's classes (through the class map, with `seg_void`), or depth of `depth_kind`;
    `features` as the backend exposes them (at the model's own resolution; decoder features
    at most at stride 4). Always in eval mode, no gradients.
    """

    def __init__(self, backend: TeacherBackend, config) -> None:
        super().__init__()
        self.backend = backend
        self.task = backend.task
        self.kind = backend.kind
        self.path = backend.path
        self.preprocessing = _preprocessing(backend, config)
        self.output_kind = config.output_kind or backend.output_kind
        self.output_stride = config.output_stride
        self.depth_kind = (config.depth_kind or backend.depth_kind or 'metric') \
            if self.task == 'depth' else None
        self.canonical_focal_px = backend.canonical_focal_px
        self.class_map = _class_map(config.class_map)
        self.eval()

    @property
    def description(self) -> str:
        return f'{self.task} teacher ({self.kind}, {self.backend.architecture}: {self.path})'

    def train(self, mode: bool = True) -> TeacherAdapter:
        """Always stays in eval mode: a teacher is frozen."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> ModelOutput:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'{self.description}: expected an image batch (N, 3, H, W), got '
                             f'{tuple(x.shape)}')
        images = self.preprocessing(x.float())
        raw = self.backend(images)
        prediction = self._checked_prediction(raw.prediction, images)
        features = {key: _at_most_stride(value, images, key) for key, value in raw.features.items()}
        size = tuple(x.shape[-2:])
        if self.task == 'depth':
            return ModelOutput(depth=resize_to(prediction, size), features=features,
                               depth_kind=self.depth_kind)
        logits, void = self._seg_logits(prediction)
        if void is not None:
            void = resize_to(void[:, None], size, mode='nearest')[:, 0]
        return ModelOutput(seg_logits=resize_to(logits, size), features=features, seg_void=void)

    def _seg_logits(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = scores.clamp_min(_PROBABILITY_FLOOR).log() \
            if self.output_kind == 'probabilities' else scores
        if self.class_map is None:
            return logits, None
        try:
            return self.class_map.apply(logits)
        except ClassMapError as error:
            raise TeacherError(f'{self.description}: {error}', 'class_map') from error

    def _checked_prediction(self, prediction: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(prediction, torch.Tensor):
            raise TeacherError(f'{self.description}: the model returned '
                               f'{type(prediction).__name__}, not a tensor', 'output')
        if self.task == 'depth' and prediction.dim() == 3:
            prediction = prediction[:, None]
        n, _, height, width = images.shape
        channels_ok = prediction.dim() == 4 and (
            prediction.shape[1] >= 2 if self.task == 'seg' else prediction.shape[1] == 1)
        if not channels_ok or prediction.shape[0] != n:
            expected = f'(N={n}, C>=2, h, w) class scores' if self.task == 'seg' else \
                f'(N={n}, 1, h, w) depth'
            raise TeacherError(f'{self.description}: output shape {tuple(prediction.shape)}, '
                               f'expected {expected}', 'output')
        if self.output_stride is not None:
            expected_size = [(math.floor(side / self.output_stride),
                              math.ceil(side / self.output_stride)) for side in (height, width)]
            if not all(low <= got <= high for (low, high), got
                       in zip(expected_size, prediction.shape[-2:])):
                raise TeacherError(f'{self.description}: output_stride {self.output_stride}: the '
                                   f'model input is {height}x{width} and its output '
                                   f'{prediction.shape[-2]}x{prediction.shape[-1]}',
                                   'output_stride')
        return prediction.float()

    def check(self, images: torch.Tensor, num_classes: int) -> ModelOutput:
        """Run once on `images` and check the output fits a student with `num_classes`
        classes; returns the output. Errors name the option to change."""
        out = self(images)
        if self.task == 'seg' and out.seg_logits.shape[1] != num_classes:
            hint = ('the class map targets a different class set' if self.class_map else
                    'set class_map (shipped: cityscapes19_to_7, ade20k_to_7) or a YAML file')
            raise TeacherError(f'{self.description} returns {out.seg_logits.shape[1]} classes, '
                               f'the student has {num_classes}: {hint}', 'class_map')
        return out


def _at_most_stride(features: torch.Tensor, images: torch.Tensor, key: str) -> torch.Tensor:
    """Decoder features finer than stride DECODER_STRIDE are area-pooled to it."""
    if not key.startswith('dec_'):
        return features
    size = tuple(-(-side // DECODER_STRIDE) for side in images.shape[-2:])
    if features.shape[-2] <= size[0] and features.shape[-1] <= size[1]:
        return features
    return F.adaptive_avg_pool2d(features, size)


def _preprocessing(backend: TeacherBackend, config) -> Preprocessing:
    defaults = backend.defaults
    try:
        input_size = parse_size(config.input_size) if config.input_size else None
    except ValueError as error:
        raise TeacherError(f'{backend.kind} teacher {backend.path}: input_size: {error}',
                           'input_size') from None
    if input_size is not None and defaults.input_size is not None and \
            input_size != defaults.input_size:
        raise TeacherError(f'{backend.kind} teacher {backend.path}: the model takes '
                           f'{defaults.input_size[0]}x{defaults.input_size[1]} only, '
                           f'input_size is {config.input_size}', 'input_size')
    return Preprocessing(
        mean=tuple(config.mean) if config.mean is not None else defaults.mean,
        std=tuple(config.std) if config.std is not None else defaults.std,
        channel_order=config.channel_order or defaults.channel_order,
        input_size=input_size or defaults.input_size,
        size_multiple=config.size_multiple or defaults.size_multiple)


def _class_map(name: str | None) -> ClassMap | None:
    if not name:
        return None
    try:
        return load_class_map(name)
    except ClassMapError as error:
        raise TeacherError(str(error), 'class_map') from error


def check_options(config, task: str) -> list[tuple[str, str]]:
    """(option, problem) for every teacher option whose value is invalid on its own or for
    `task`, before any file is read (the kind-specific checks follow when it is built)."""
    problems = []
    if config.class_map and task != 'seg':
        problems.append(('class_map', 'applies to segmentation teachers only'))
    if config.output_kind is not None and task != 'seg':
        problems.append(('output_kind', 'applies to segmentation teachers only'))
    if config.depth_kind is not None and task != 'depth':
        problems.append(('depth_kind', 'applies to depth teachers only'))
    if config.depth_kind is not None and config.depth_kind not in DEPTH_KINDS:
        problems.append(('depth_kind', f'must be one of {", ".join(DEPTH_KINDS)}'))
    for key in ('mean', 'std'):
        value = getattr(config, key)
        if value is not None and len(value) != 3:
            problems.append((key, f'must list 3 values (one per channel), got {len(value)}'))
    if config.std is not None and any(v <= 0 for v in config.std):
        problems.append(('std', f'must be > 0, got {config.std}'))
    for key in ('size_multiple', 'output_stride'):
        value = getattr(config, key)
        if value is not None and value < 1:
            problems.append((key, f'must be >= 1, got {value}'))
    if config.input_size is not None and config.size_multiple is not None:
        problems.append(('size_multiple', 'give input_size or size_multiple, not both'))
    return problems
