"""`jointdistill distill`: from a recording (or any dataset spec) and two teachers to a
deployable student, its evaluation on the held-back part, a model card and a report.

    plan = plan_distillation(DistillRequest(data='bag:rec.mcap', seg=..., depth=..., out=...))
    result = train(plan.config, command=..., depth_scale=plan.depth_scale)
    metrics = evaluate_distilled(plan, checkpoint)

The plan decides, from the teachers and what the data annotates (docs/your_robot.md):
  method   'auto': jointdistill when the training and the held-back data both have labels
           and metric depth (it needs them to weigh its teachers), else the label-free
           amalgamation.
  scale    a metric depth teacher gives the metric scale itself; a relative one cannot, so
           the scale comes from metric depth in the data; when the data has none, synthetic
           frames (or `scale_data`) are mixed in for it (`scale_weight` of the samples) and
           amalgamation reads their depth (its depth_label_weight).
  student  with a relative depth teacher, a canonical-camera student (focal 300 px, the
           real-camera recipe's), so depth learnt on the scale data's camera transfers to the
           robot's through each frame's K; with a foreign metric teacher, a student of the
           robot's own camera (the teacher predicts depth for it); with a checkpoint teacher,
           the teacher's camera convention (and the canonical max depth, 400 m).
  features teachers without features (ONNX, TorchScript) switch off the feature terms
           (jointdistill fusion, amalgamation lambda_feat).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from jointdistill_core.canonical import DEFAULT_CANONICAL_FOCAL_PX
from jointdistill_core.config import ConfigError, apply_overrides, from_dict
from jointdistill_core.data.mixed import split_mixed_spec
from jointdistill_core.data.registry import build_dataset
from jointdistill_core.metrics import DepthAccumulator, SegmentationAccumulator
from jointdistill_core.training.config import TeacherConfig, TrainConfig, validate
from jointdistill_core.training.evaluate import predict_batch

METHOD_CHOICES = ('auto', 'amalgamation', 'jointdistill')
PREDICTION_ONLY_KINDS = ('onnx', 'torchscript')
ANNOTATION_PROBES = 16  # samples inspected per split to tell what the data annotates
CANONICAL_MAX_DEPTH = 400.0  # metres of the canonical camera, as config/train/real/
DISTILL_DEPTH_LOSS = 'log_l1'  # robots see 0.5 m to 100+ m: relative errors, not metres


@dataclass
class DistillRequest:
    """What the user asks for (the command's options). data: a dataset spec; seg, depth:
    the teachers; scale_data: the spec mixed in for the metric scale when needed (None =
    on-the-fly 'synthetic'); scale_weight: its share of the training samples; size: (H, W)
    training pixels; overrides: 'key=value' for the training config."""

    data: str
    seg: TeacherConfig
    depth: TeacherConfig
    out: str
    steps: int = 2000
    method: str = 'auto'
    scale_data: str | None = None
    scale_weight: float = 0.3
    size: tuple[int, int] = (192, 256)
    classes: int = 7
    batch_size: int = 8
    seed: int = 0
    device: str = 'auto'
    overrides: list[str] = field(default_factory=list)


@dataclass
class Annotations:
    """Whether a split of a dataset has class labels / metric depth anywhere (probed)."""

    labels: bool
    depth: bool


@dataclass
class DistillPlan:
    """The training configuration and what was decided, in words for the report."""

    config: TrainConfig
    depth_scale: str
    held_back: Annotations
    decisions: list[str]


def probe_annotations(spec: str, split: str, size: tuple[int, int] | None,
                      classes: int) -> Annotations:
    """Labels / metric depth in up to ANNOTATION_PROBES samples spread over the split."""
    dataset, _ = build_dataset(spec, split, size=size, num_classes=classes)
    count = len(dataset)
    if count == 0:
        raise ConfigError(f'data: {spec} split {split!r} is empty')
    indices = sorted({round(i * (count - 1) / max(1, ANNOTATION_PROBES - 1))
                      for i in range(min(count, ANNOTATION_PROBES))})
    samples = [dataset[index] for index in indices]
    return Annotations(labels=any(bool((s['labels'] != 255).any()) for s in samples),
                       depth=any(bool((s['depth'] > 0).any()) for s in samples))


def mixed_with(spec: str, extra: str, share: float) -> str:
    """`spec` plus `extra` weighted so that `extra` is `share` of the samples."""
    total = sum(weight for _, weight in split_mixed_spec(spec))
    return f'{spec},{extra}@{total * share / (1.0 - share):.6g}'


def _teacher_facts(config: TeacherConfig, task: str) -> tuple[str, str | None, float | None]:
    """(kind, depth kind, canonical focal px) of a teacher, read by building it on the CPU."""
    from jointdistill_core.teachers import build_teacher
    try:
        teacher = build_teacher(config, task, 'cpu')
    except (ValueError, OSError) as error:  # TeacherError, CheckpointError, ONNX errors
        key = getattr(error, 'key', 'path')
        raise ConfigError(f'{task} teacher: {key}: {error}') from None
    return teacher.kind, teacher.depth_kind, teacher.canonical_focal_px


def plan_distillation(request: DistillRequest) -> DistillPlan:
    """The training configuration for `request` (module docstring); ConfigError names the
    option at fault."""
    if request.method not in METHOD_CHOICES:
        raise ConfigError(f'--method must be one of {", ".join(METHOD_CHOICES)}')
    if not 0 < request.scale_weight < 1:
        raise ConfigError(f'--scale-weight must be in (0, 1), got {request.scale_weight}')
    seg_kind, _, _ = _teacher_facts(request.seg, 'seg')
    depth_kind_of_file, depth_kind, teacher_focal = _teacher_facts(request.depth, 'depth')
    try:
        train_data = probe_annotations(request.data, 'train', request.size, request.classes)
        held_back = probe_annotations(request.data, 'val', request.size, request.classes)
    except ValueError as error:
        raise ConfigError(f'--data: {error}') from None
    decisions = []
    method = request.method
    if method == 'jointdistill' and not (held_back.labels and held_back.depth):
        raise ConfigError('--method jointdistill weighs its teachers by their scores on the '
                          'held-back data, which has no class labels and metric depth; use '
                          '--method auto or amalgamation')
    if method == 'auto':
        labelled = train_data.labels and train_data.depth and held_back.labels \
            and held_back.depth
        method = 'jointdistill' if labelled else 'amalgamation'
        decisions.append(f'method {method}: ' + (
            'the data has class labels and metric depth' if labelled else
            'label-free (the training or the held-back data lacks class labels or metric '
            'depth)'))
    spec, params, model = request.data, {}, {'num_classes': request.classes}
    if depth_kind == 'metric':
        depth_scale = f'the metric depth teacher {Path(request.depth.path).name}'
        model['canonical_focal_px'] = teacher_focal
        if teacher_focal is not None:  # a canonical checkpoint teacher: its camera's range
            model['max_depth'] = CANONICAL_MAX_DEPTH
        else:
            decisions.append('a student of the recording\'s own camera: the metric depth '
                             'teacher predicts depth for the input camera')
    else:
        model.update(canonical_focal_px=DEFAULT_CANONICAL_FOCAL_PX,
                     max_depth=CANONICAL_MAX_DEPTH)
        if train_data.depth:
            depth_scale = f'the metric depth ground truth of {request.data}'
        else:
            scale = request.scale_data or 'synthetic'
            spec = mixed_with(request.data, scale, request.scale_weight)
            depth_scale = (f'the metric depth ground truth of {scale}, mixed in as '
                           f'{request.scale_weight:.0%} of the training samples (the data has '
                           f'none and the depth teacher is {depth_kind})')
        depth_scale += (f', through a canonical camera of focal length '
                        f'{DEFAULT_CANONICAL_FOCAL_PX:g} px and each frame\'s K')
        if method == 'amalgamation':
            params['depth_label_weight'] = 1.0
    if method == 'amalgamation':
        params['depth_loss'] = DISTILL_DEPTH_LOSS
    else:
        params.update(depth_loss=DISTILL_DEPTH_LOSS, depth_kd_loss=DISTILL_DEPTH_LOSS)
    if {seg_kind, depth_kind_of_file} & set(PREDICTION_ONLY_KINDS):
        if method == 'jointdistill':
            params['fusion'] = False
        else:
            params['lambda_feat'] = 0.0
        decisions.append('no feature terms: an ONNX or TorchScript teacher has no features')
    decisions.append(f'metric depth scale from {depth_scale}')
    mapping = {
        'task': 'multi',
        'model': {'arch': 'student', 'kwargs': {k: v for k, v in model.items()
                                                if v is not None}},
        'method': {'name': method, 'params': params},
        'teachers': {'seg': _plain_teacher(request.seg), 'depth': _plain_teacher(request.depth)},
        'data': {'spec': spec, 'val_spec': request.data if spec != request.data else None,
                 'size': f'{request.size[0]}x{request.size[1]}', 'augment': True,
                 'batch_size': request.batch_size},
        'schedule': {'name': 'cosine', 'warmup': min(200, request.steps // 10)},
        'steps': request.steps, 'val_every': max(1, request.steps // 4),
        'log_every': max(1, min(50, request.steps // 20)), 'seed': request.seed,
        'out': request.out, 'device': request.device,
    }
    try:
        mapping = apply_overrides(mapping, request.overrides)
        config = validate(from_dict(TrainConfig, mapping, source='distill'), 'distill')
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return DistillPlan(config, depth_scale, held_back, decisions)


def _plain_teacher(config: TeacherConfig) -> dict:
    from jointdistill_core.config import to_dict
    return {key: value for key, value in to_dict(config).items() if value is not None}


# ---- agreement with the teachers on the held-back frames -----------------------------------
@dataclass
class HeldBackOutputs:
    """For the report's figure: per frame, the image and the teachers' and student's outputs
    (labels (H, W) uint8, 255 void; depth (H, W) metres, a relative teacher aligned to the
    student per image)."""

    images: list[np.ndarray] = field(default_factory=list)
    teacher_labels: list[np.ndarray] = field(default_factory=list)
    teacher_depth: list[np.ndarray] = field(default_factory=list)
    student_labels: list[np.ndarray] = field(default_factory=list)
    student_depth: list[np.ndarray] = field(default_factory=list)


@torch.no_grad()
def teacher_agreement(student: torch.nn.Module, teachers: dict, dataset: Dataset,
                      num_classes: int, device: torch.device, batch_size: int = 8,
                      keep: int = 4) -> tuple[dict[str, float], HeldBackOutputs]:
    """How closely the student reproduces its teachers on `dataset` (no ground truth needed).

    seg: 'agreement_miou' and 'agreement_pixel_acc' of the student's classes against the seg
    teacher's (through its class map; the teacher's void pixels are left out). depth, metric
    teacher: 'agreement_abs_rel' and 'agreement_delta1' of the student's metric depth against
    the teacher's; relative teacher: 'agreement_ssi', the scale-and-shift-invariant distance
    of the student's depth (in the teacher's space) to the teacher's, per image, averaged (the
    loss the student was trained with: 0 = the same shape, 1 = a flat depth map). Also returns
    the first `keep` frames' outputs for the figure (a relative teacher's depth drawn after a
    least-squares alignment to the student's: it has no scale of its own)."""
    from jointdistill_core.distill.losses import (
        aligned_depth,
        depth_in_kind,
        ssi_loss,
        teacher_hard_labels,
    )
    segmentation = SegmentationAccumulator(num_classes)
    depth_errors = DepthAccumulator()
    ssi_total, frames = 0.0, 0
    kept = HeldBackOutputs()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        generator=torch.Generator())
    max_depth = float(getattr(student, 'max_depth', None) or 80.0)
    student.eval()
    for batch in loader:
        images = batch['image'].to(device)
        labels, depth = predict_batch(student, images, batch['K'].to(device))
        seg_out, depth_out = teachers['seg'](images), teachers['depth'](images)
        kind = depth_out.depth_kind
        teacher_labels = teacher_hard_labels(seg_out)
        segmentation.update(labels.cpu().numpy(), teacher_labels.cpu().numpy())
        teacher_depth = aligned_depth(depth_out.depth.float(), depth[:, None].float(), kind,
                                      max_depth)[:, 0]
        if kind == 'metric':
            depth_errors.update(depth.float().cpu().numpy(), teacher_depth.cpu().numpy())
        else:
            ssi_total += float(ssi_loss(depth_in_kind(depth[:, None].float(), kind),
                                        depth_out.depth.float())) * images.shape[0]
        frames += images.shape[0]
        for index in range(min(images.shape[0], keep - len(kept.images))):
            kept.images.append((batch['image'][index].permute(1, 2, 0).numpy() * 255)
                               .round().astype(np.uint8))
            kept.teacher_labels.append(teacher_labels[index].cpu().numpy().astype(np.uint8))
            kept.teacher_depth.append(teacher_depth[index].cpu().numpy())
            kept.student_labels.append(labels[index].cpu().numpy().astype(np.uint8))
            kept.student_depth.append(depth[index].float().cpu().numpy())
    seg = segmentation.compute()
    metrics = {'agreement_miou': seg['miou'], 'agreement_pixel_acc': seg['pixel_acc']}
    if depth_errors.compute()['valid_pixels']:
        errors = depth_errors.compute()
        metrics.update(agreement_abs_rel=errors['abs_rel'], agreement_delta1=errors['delta1'])
    else:
        metrics['agreement_ssi'] = ssi_total / max(frames, 1)
    return metrics, kept
