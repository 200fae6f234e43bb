"""Loss pieces shared by the distillation methods.

Conventions: segmentation logits (N, C, H, W); labels (N, H, W) int64 with 255 = void;
depth (N, 1, H, W) in metres with 0 (or non-finite) = invalid; feature maps (N, C, H, W).
Every function returns a scalar tensor that stays connected to its inputs' graph even when
no pixel is valid (then its value is 0), so callers can always sum and backpropagate.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from jointdistill_core.config import ConfigError
from jointdistill_core.data.sample import IGNORE_INDEX, Sample
from jointdistill_core.models.outputs import ModelOutput

_EPS = 1e-12


def resize_to(tensor: torch.Tensor, size: tuple[int, int] | torch.Size,
              mode: str = 'bilinear') -> torch.Tensor:
    """Resize (N, C, H, W) to spatial `size` (H', W'); a no-op when the size already matches.

    mode 'bilinear' for logits/features/depth, 'nearest' for class ids (pass them as float
    or long with a channel axis), 'area' for shrinking feature maps.
    """
    size = tuple(size)
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    if mode == 'bilinear':
        return F.interpolate(tensor, size=size, mode='bilinear', align_corners=False)
    if mode == 'nearest':
        return F.interpolate(tensor.float(), size=size, mode='nearest').to(tensor.dtype)
    return F.interpolate(tensor, size=size, mode=mode)


def _zero_like_graph(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.sum() * 0.0


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                         ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over labelled pixels; `ignore_index` pixels are skipped.

    logits (N, C, h, w) are resized bilinearly to the labels' (H, W) when they differ.
    """
    logits = resize_to(logits, labels.shape[-2:])
    if not bool((labels != ignore_index).any()):
        return _zero_like_graph(logits)
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


def valid_depth_mask(depth: torch.Tensor) -> torch.Tensor:
    """Boolean mask of usable depth pixels: finite and > 0."""
    return torch.isfinite(depth) & (depth > 0)


def masked_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |prediction - target| in metres over pixels where the target is valid.

    prediction (N, 1, h, w) is resized bilinearly to the target's (H, W) when they differ.
    """
    prediction = resize_to(prediction, target.shape[-2:])
    mask = valid_depth_mask(target)
    if not bool(mask.any()):
        return _zero_like_graph(prediction)
    return (prediction[mask] - target[mask]).abs().mean()


def scale_invariant_log_loss(prediction: torch.Tensor, target: torch.Tensor,
                             variance_weight: float = 0.5) -> torch.Tensor:
    """Eigen et al. (2014) scale-invariant log loss over valid target pixels.

    With d = log(prediction) - log(target): mean(d^2) - variance_weight * mean(d)^2.
    variance_weight = 1 makes it fully scale invariant; Eigen et al. used 0.5.
    """
    prediction = resize_to(prediction, target.shape[-2:])
    mask = valid_depth_mask(target) & (prediction > 0)
    if not bool(mask.any()):
        return _zero_like_graph(prediction)
    log_diff = torch.log(prediction[mask]) - torch.log(target[mask])
    return (log_diff ** 2).mean() - variance_weight * log_diff.mean() ** 2


def masked_log_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |log(prediction) - log(target)| over pixels where both are valid (> 0, finite).

    Relative error: a 10 cm miss at 1 m weighs as much as a 1 m miss at 10 m, as the depth
    metrics abs rel and delta1 do. prediction (N, 1, h, w) is resized to the target's (H, W).
    """
    prediction = resize_to(prediction, target.shape[-2:])
    mask = valid_depth_mask(target) & (prediction > 0)
    if not bool(mask.any()):
        return _zero_like_graph(prediction)
    return (torch.log(prediction[mask]) - torch.log(target[mask])).abs().mean()


DEPTH_LOSSES = ('l1', 'log_l1', 'silog')


def depth_distance(kind: str, prediction: torch.Tensor, target: torch.Tensor,
                   silog_variance_weight: float = 0.5) -> torch.Tensor:
    """Depth loss `kind` over valid target pixels: 'l1' (metres), 'log_l1' (log metres) or
    'silog' (Eigen's scale-invariant log loss with `silog_variance_weight`)."""
    if kind == 'l1':
        return masked_l1(prediction, target)
    if kind == 'log_l1':
        return masked_log_l1(prediction, target)
    if kind == 'silog':
        return scale_invariant_log_loss(prediction, target, silog_variance_weight)
    raise ValueError(f'unknown depth loss {kind!r}; expected one of {DEPTH_LOSSES}')


def channel_normalize(features: torch.Tensor) -> torch.Tensor:
    """n(F): divide each pixel's channel vector by its L2 norm. (N, C, H, W) -> same."""
    return F.normalize(features, p=2, dim=1, eps=_EPS)


def normalized_feature_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean over pixels (and batch) of || n(prediction) - n(target) ||^2 (sum over channels).

    Both (N, C, H, W) with the same C; `prediction` is resized bilinearly to the target's
    spatial size when they differ (callers choose which side is resized by the argument order
    or by resizing first).
    """
    if prediction.shape[1] != target.shape[1]:
        raise ValueError(f'feature channels differ: {prediction.shape[1]} vs {target.shape[1]}')
    prediction = resize_to(prediction, target.shape[-2:])
    difference = channel_normalize(prediction) - channel_normalize(target)
    return (difference ** 2).sum(dim=1).mean()


def kl_with_temperature(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        temperature: float, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton's softened-softmax distillation: T^2 * KL(softmax(t/T) || softmax(s/T)).

    KL summed over classes, averaged over pixels (and batch). The T^2 factor keeps gradient
    magnitudes comparable across temperatures. The teacher's logits are resized bilinearly
    to the student's spatial size when they differ; they receive no gradient. `ignore`
    (N, H, W) bool (a class-mapped teacher's `seg_void`, resized nearest) marks pixels left
    out of the average; 0 when every pixel is ignored.
    """
    teacher_logits = resize_to(teacher_logits.detach(), student_logits.shape[-2:])
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    if ignore is not None:
        keep = ~resize_to(ignore[:, None], kl.shape[-2:], mode='nearest')[:, 0]
        if not bool(keep.any()):
            return _zero_like_graph(student_logits)
        kl = kl[keep]
    return temperature ** 2 * kl.mean()


def teacher_hard_labels(teacher_out, size: tuple[int, int] | torch.Size | None = None
                        ) -> torch.Tensor:
    """The segmentation teacher's argmax (N, H, W) int64, at `size` (default: its own), with
    void (255) where the teacher's most likely class maps to no student class (`seg_void`)."""
    logits = teacher_out.seg_logits.detach()
    if size is not None:
        logits = resize_to(logits, size)
    labels = logits.argmax(dim=1)
    if teacher_out.seg_void is not None:
        void = resize_to(teacher_out.seg_void[:, None], labels.shape[-2:], mode='nearest')[:, 0]
        labels = labels.masked_fill(void, IGNORE_INDEX)
    return labels


# ---- depth kinds: metric teachers are matched in metres, relative ones up to scale and shift
MIN_DEPTH = 1e-3  # metres: the smallest depth turned into inverse depth (1000 per metre)
_SSI_EPS = 1e-6
# Valid ground-truth pixels an image needs before a relative teacher's depth is anchored to them
# (two unknowns, scale and shift, fitted by least squares; a few LiDAR returns suffice).
MIN_ANCHOR_PIXELS = 16


def depth_in_kind(depth: torch.Tensor, kind: str) -> torch.Tensor:
    """Metres (N, 1, H, W) -> the space of depth kind `kind` (DEPTH_KINDS): unchanged for
    'metric' and 'relative', inverse depth 1 / max(depth, MIN_DEPTH) (1/m) for
    'relative_inverse'."""
    if kind == 'relative_inverse':
        return 1.0 / depth.clamp_min(MIN_DEPTH)
    return depth


def _median_mad_normalize(values: torch.Tensor) -> torch.Tensor:
    """(values - median) / mean |values - median| of a 1-D tensor; torch's median is the lower
    of the two middle values for an even count."""
    centred = values - values.median()
    return centred / centred.abs().mean().clamp_min(_SSI_EPS)


def ssi_loss(prediction: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale-and-shift-invariant L1 (Ranftl et al. 2020, MiDaS; the affine-invariant loss
    Depth Anything trains with).

    prediction, target (N, 1, H, W) in the same space (inverse depth for a relative_inverse
    teacher); prediction resized bilinearly to the target's size. Per image, over `mask`
    (default: finite target pixels), both sides are normalised by their median and mean
    absolute deviation, norm(x) = (x - median x) / mean |x - median x|, and the loss is
    mean |norm(prediction) - norm(target)|: unchanged when either side is multiplied by a
    positive scale or shifted. Averaged over images with a valid pixel; 0 (still connected to
    the prediction's graph) when there is none.
    """
    prediction = resize_to(prediction, target.shape[-2:]).float()  # bf16 under autocast
    target = target.float()
    if mask is None:
        mask = torch.isfinite(target)
    per_image = [(_median_mad_normalize(p[m]) - _median_mad_normalize(t[m])).abs().mean()
                 for p, t, m in zip(prediction, target, mask) if bool(m.any())]
    if not per_image:
        return _zero_like_graph(prediction)
    return torch.stack(per_image).mean()


def teacher_depth_loss(student_depth: torch.Tensor, target: torch.Tensor, kind: str,
                       metric_loss: str = 'l1', silog_variance_weight: float = 0.5,
                       depth_labels: torch.Tensor | None = None,
                       max_depth: float | None = None) -> torch.Tensor:
    """The distance between the student's depth (metres, (N, 1, h, w)) and a depth teacher's
    target of depth kind `kind`: `depth_distance(metric_loss, ...)` for 'metric'.

    A relative target has no metric scale of its own. On an image with ground-truth depth
    (`depth_labels` (N, 1, H, W) metres, 0 = invalid; at least MIN_ANCHOR_PIXELS valid) it is
    anchored first: aligned to the labels by least squares in its own space and brought to
    metres within [MIN_DEPTH, the image's farthest label] (`aligned_depth`), then matched like
    a metric target, so the student learns the teacher's dense depth at the labels' scale
    (sparse LiDAR or RGB-D frames included) instead of its shape only. On an image without
    labels the scale-and-shift-invariant loss in the kind's space applies (the student's
    metric scale then comes from the labelled images). The two parts are averaged by image count."""
    if kind == 'metric':
        return depth_distance(metric_loss, student_depth, target, silog_variance_weight)
    anchored = torch.zeros(target.shape[0], dtype=torch.bool, device=target.device)
    if depth_labels is not None:
        if max_depth is None:
            raise ValueError('teacher_depth_loss: anchoring a relative target to depth labels '
                             'needs max_depth')
        anchored = valid_depth_mask(depth_labels).flatten(1).sum(1) >= MIN_ANCHOR_PIXELS
    parts = []
    if bool(anchored.any()):
        labels = depth_labels[anchored].float()
        metres = aligned_depth(target[anchored].float(), labels, kind, max_depth)
        # Beyond the farthest label the fit extrapolates: in inverse depth, far pixels sit near
        # 0, where a small error is a large distance (up to max_depth). Capped there.
        farthest = labels.flatten(1).amax(1).view(-1, 1, 1, 1)
        metres = torch.minimum(metres, farthest)
        parts.append((int(anchored.sum()), depth_distance(
            metric_loss, student_depth[anchored], metres, silog_variance_weight)))
    if not bool(anchored.all()):
        free = ~anchored
        parts.append((int(free.sum()), ssi_loss(depth_in_kind(student_depth[free], kind),
                                                target[free])))
    return sum(count * loss for count, loss in parts) / target.shape[0]


def anchor_labels(batch: Sample, kind: str) -> torch.Tensor | None:
    """The batch's depth labels a depth teacher of kind `kind` is anchored to
    (teacher_depth_loss): for a relative kind, when the batch has depth; else None, and the
    batch's depth is not read."""
    return batch['depth'] if kind != 'metric' and 'depth' in batch else None


def ssi_label_loss(prediction: torch.Tensor, depth_labels: torch.Tensor,
                   kind: str) -> torch.Tensor:
    """ssi_loss of `prediction` (in the space of relative kind `kind`) against ground-truth
    depth labels (metres, 0 = invalid) taken into that space; 0 without a valid label."""
    labels = resize_to(depth_labels, prediction.shape[-2:], mode='nearest')
    mask = valid_depth_mask(labels)
    target = torch.where(mask, depth_in_kind(labels, kind), torch.zeros_like(labels))
    return ssi_loss(prediction, target, mask)


def align_scale_shift(prediction: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
    """s * prediction + b per image (N, 1, H, W), with s, b the least-squares fit of the
    prediction to the target over `mask` (the alignment MiDaS and Depth Anything evaluate
    relative depth with). A constant prediction gets s = 0, b = mean target; an image without
    a valid pixel is returned unchanged."""
    aligned = []
    for p, t, m in zip(prediction, target, mask):
        if not bool(m.any()):
            aligned.append(p)
            continue
        x, y = p[m].double(), t[m].double()
        variance = ((x - x.mean()) ** 2).mean()
        scale = ((x - x.mean()) * (y - y.mean())).mean() / variance if variance > 0 \
            else torch.zeros((), dtype=torch.float64, device=p.device)
        shift = y.mean() - scale * x.mean()
        aligned.append((scale * p.double() + shift).to(p.dtype))
    return torch.stack(aligned)


def aligned_depth(prediction: torch.Tensor, depth_labels: torch.Tensor, kind: str,
                  max_depth: float) -> torch.Tensor:
    """Metres (N, 1, H, W) from a prediction of depth kind `kind`, for metrics against
    `depth_labels` (metres, 0 = invalid; the prediction is resized to their size): 'metric'
    as it is; a relative kind aligned per image by least squares in its own space to the
    labels, then brought back to metres within [MIN_DEPTH, max_depth]."""
    prediction = resize_to(prediction, depth_labels.shape[-2:])
    if kind == 'metric':
        return prediction
    mask = valid_depth_mask(depth_labels)
    target = torch.where(mask, depth_in_kind(depth_labels, kind), torch.zeros_like(depth_labels))
    aligned = align_scale_shift(prediction, target, mask)
    if kind == 'relative_inverse':
        return 1.0 / aligned.clamp(1.0 / max_depth, 1.0 / MIN_DEPTH)
    return aligned.clamp(MIN_DEPTH, max_depth)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Spatial attention A(F) = sum_c F_c^2, flattened and L2-normalised per image.

    features (N, C, H, W) -> (N, H*W) with each row of unit L2 norm (Zagoruyko & Komodakis'
    activation-based attention).
    """
    energy = (features ** 2).sum(dim=1).flatten(1)
    return F.normalize(energy, p=2, dim=1, eps=_EPS)


def group_labels(labels: torch.Tensor, grouping: torch.Tensor) -> torch.Tensor:
    """Map class ids to group ids with lookup table `grouping` (num_classes,) int64.

    Void pixels (255) stay void.
    """
    void = labels == IGNORE_INDEX
    safe = torch.where(void, torch.zeros_like(labels), labels)
    return torch.where(void, torch.full_like(labels, IGNORE_INDEX), grouping[safe])


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Create modules inside this block for deterministic weights that leave the global CPU
    random state untouched (so building adaptors in setup() never shifts the training RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def task_loss_terms(batch: Sample, student_out: ModelOutput, seg_weight: float,
                    depth_weight: float, depth_loss: str = 'l1') -> dict[str, torch.Tensor]:
    """The supervised terms every labelled method shares.

    'task/seg' = seg_weight * masked CE(student seg logits, batch['labels']);
    'task/depth' = depth_weight * depth_distance(depth_loss, student depth, batch['depth'])
    (L1 in metres or in log metres). A weight of 0 drops its term (and its label read).
    """
    terms = {}
    if seg_weight:
        terms['task/seg'] = seg_weight * masked_cross_entropy(student_out.seg_logits,
                                                              batch['labels'])
    if depth_weight:
        terms['task/depth'] = depth_weight * depth_distance(depth_loss, student_out.depth,
                                                            batch['depth'])
    return terms


def feature_key(layer: str, task: str) -> str:
    """Layer 'enc' -> feature 'enc'; layer 'dec' -> the task's decoder feature 'dec_<task>'."""
    return 'enc' if layer == 'enc' else f'dec_{task}'


def student_feature_channels(student: nn.Module) -> dict[str, int]:
    """Channels per feature key of a network (its `feature_channels`); TypeError if it
    has none."""
    channels = getattr(student, 'feature_channels', None)
    if not isinstance(channels, dict):
        raise TypeError(f'{type(student).__name__} has no feature_channels dict; the '
                        'distillation methods need it to size their adaptors')
    return channels


@torch.no_grad()
def probe_teacher_channels(teacher: nn.Module, images: torch.Tensor, task: str,
                           keys: list[str]) -> dict[str, int]:
    """Channel count of each feature `keys` of `teacher`, from one forward pass on `images`.

    A teacher without them (an ONNX or TorchScript file returns predictions only) is a
    configuration error that names the methods and options which work without features.
    """
    features = teacher(images).features
    missing = [key for key in keys if key not in features]
    if missing:
        what = getattr(teacher, 'description', f'{task} teacher')
        raise ConfigError(
            f'teachers.{task}: the {what} returns no feature(s) {missing} (it returns '
            f'{sorted(features) or "none"}), which this method distils; static_kd, '
            'jointdistill with fusion (the default) and amalgamation with lambda_feat > 0 need '
            'teacher features (checkpoint and transformers teachers have them). With '
            'prediction-only teachers use mtl, xdistill, jointdistill with fusion: false, or '
            'amalgamation with lambda_feat: 0')
    return {key: int(features[key].shape[1]) for key in keys}


def module_device(module: nn.Module) -> torch.device:
    """The device of the first parameter of `module` (CPU when it has none)."""
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')
