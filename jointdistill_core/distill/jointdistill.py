"""`jointdistill`: adaptive multi-teacher distillation with a knowledge trajectory.

After Cheng et al. 2025. Three parts, each switchable off for ablations:

1. Fusion connector (`fusion`): the two teachers' last decoder features, resized to the finer
   of the two sizes and concatenated, go through Conv3x3, Conv3x3, BN, ReLU and per-task 1x1
   heads h_seg, h_depth. With `connector_residual` (the default) the heads correct the
   teachers' own predictions and start at zero, so the fused targets equal the teachers' at
   step 0: p_seg^F = z_T + h_seg, p_depth^F = min(d_T * exp(h_depth), max_depth) (h resized
   to the teachers' output size). Without it (the paper's plain form) p_seg^F = h_seg and
   p_depth^F = max_depth * sigmoid(h_depth), which start random. The connector is trained on
   the labels (its own terms 'connector/seg', 'connector/depth'; the
   teacher features carry no gradient, so these terms train only the connector). The student
   distils from the fused predictions, which carry no gradient back into the connector:
   L_kd = omega_seg T^2 KL(softmax(p_seg^F/T) || softmax(z_S/T)) + omega_depth D(d_S, p_depth^F),
   D = L1 in metres (`depth_kd_loss` l1) or the scale-invariant log loss (silog).
   With `fusion` off the targets are the teachers' own predictions.
2. Self-adaptive teacher weights (`adaptive_weights`): every K steps the student is evaluated
   on the held-aside validation batch (eval mode, no gradient); the teachers once, in setup().
   Ability a_seg = mIoU_S / mIoU_T, a_depth = absrel_T / absrel_S (error metric inverted), both
   clamped to [1e-3, 1e3]. With a' = a ('follow_ability') or 1/a ('favor_weaker'):
   tau = mean(omega) * a' * mean(a')^(alpha - 1);  omega <- omega - beta * omega * (omega - tau);
   omega <- omega * N / sum(omega), N = 2. 0 < beta <= 1/N keeps every weight positive.
3. Knowledge trajectory (`trajectory`): attention A(F) = sum_c F_c^2, flattened, unit L2 norm
   per image, at `trajectory_layers`, on a fixed probe set (the first `probe_size` images of
   setup()'s probe batch). The validation score is mean(a) (the student-over-teacher ability
   averaged over tasks). Whenever an evaluation beats the best score so far, a snapshot is
   stored: per layer and probe image the `topk` largest attention values and their locations
   e. The last `buffer_size` snapshots are kept (a ring buffer). Each step:
   L_traj = sum_snapshots sum_layers mean_probe sum_{e} (A_S(probe)[e] - A_stored[e])^2,
   with A_S computed by an extra eval-mode forward pass of the student on the probe images
   (eval mode, as the snapshots were taken, so batch-norm statistics are untouched).

L = sum_i w_i L_task,i + lambda_kd L_kd + lambda_traj L_traj (+ connector terms).

Foreign teachers (jointdistill_core.teachers, docs/teachers.md): the KL skips a class-mapped
teacher's void pixels (`seg_void`). A relative depth teacher ('relative' or 'relative_inverse')
keeps the fused depth target in its own space: the residual head corrects it without the
max_depth cap, the connector's depth term matches it to the labels and the student's D matches
it to the student anchored to the labels on frames with depth and by the
scale-and-shift-invariant loss (`ssi_loss`, per image) on the others (`teacher_depth_loss`), so
the student's metric scale comes only from its labels. The depth ability then compares like
with like: teacher and student predictions are both aligned per image to the labels
(least-squares scale and shift in the teacher's space) before abs rel.

`step` in on_step_end counts completed optimizer steps from 1; evaluations happen when
step % eval_every == 0. All state (omega, best score, weight history, snapshots, connector)
is in the module's state_dict as tensors, so a resumed run continues exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from jointdistill_core.config import setting, subset_of
from jointdistill_core.data.sample import IGNORE_INDEX, Sample
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.losses import (
    aligned_depth,
    anchor_labels,
    attention_map,
    depth_distance,
    depth_in_kind,
    kl_with_temperature,
    masked_cross_entropy,
    module_device,
    probe_teacher_channels,
    resize_to,
    seeded_init,
    ssi_label_loss,
    task_loss_terms,
    teacher_depth_loss,
    valid_depth_mask,
)
from jointdistill_core.distill.mtl import TaskWeights
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.tasks import TASKS

ABILITY_RANGE = (1e-3, 1e3)
TRAJECTORY_LAYER_CHOICES = ('enc', 'enc_mid', 'dec_seg', 'dec_depth')


@dataclass
class JointDistillParams(TaskWeights):
    """See the module docstring for the formulas.

    fusion / adaptive_weights / trajectory: switch each part on or off.
    lambda_kd: weight of L_kd; temperature: T of the segmentation KL; depth_kd_loss: D_depth,
      'l1' (metres), 'log_l1' (log metres) or 'silog' (Eigen's scale-invariant log loss with
      silog_variance_weight, as in `amalgamation`).
    connector_channels: width of the fusion connector; connector_weight: weight of its own
      supervised loss on the labels; connector_residual: heads correct the teachers'
      predictions (zero-initialised) instead of predicting from scratch.
    eval_every: K, steps between validation evaluations.
    alpha, beta, direction: the adaptive-weight update (direction 'follow_ability' gives more
      weight to the task the student already learns well, 'favor_weaker' to the other).
    lambda_traj: weight of L_traj; trajectory_layers: student features whose attention is
      guarded; probe_size: M probe images; topk: locations kept per map; buffer_size: B."""

    fusion: bool = True
    adaptive_weights: bool = True
    trajectory: bool = True
    lambda_kd: float = setting(1.0, ge=0)
    temperature: float = setting(1.0, gt=0)
    depth_kd_loss: Literal['l1', 'log_l1', 'silog'] = 'l1'
    silog_variance_weight: float = setting(0.5, ge=0, le=1)
    connector_channels: int = setting(64, ge=1)
    connector_weight: float = setting(1.0, ge=0)
    connector_residual: bool = True
    eval_every: int = setting(50, ge=1)
    alpha: float = 1.0
    # 0 < beta <= 1/N keeps every teacher weight positive (module docstring).
    beta: float = setting(0.3, gt=0, le=1 / len(TASKS))
    direction: Literal['follow_ability', 'favor_weaker'] = 'follow_ability'
    lambda_traj: float = setting(0.1, ge=0)
    trajectory_layers: list[str] = setting(default_factory=lambda: ['enc_mid', 'enc'],
                                           check=subset_of(TRAJECTORY_LAYER_CHOICES))
    probe_size: int = setting(4, ge=1)
    topk: int = setting(64, ge=1)
    buffer_size: int = setting(5, ge=1)


def batch_miou(logits: torch.Tensor, labels: torch.Tensor, num_classes: int,
               void: torch.Tensor | None = None) -> float:
    """mIoU of argmax(logits (N, C, h, w)) against labels (N, H, W) over one batch: one
    confusion matrix, void labels ignored, mean over classes present in ground truth or
    prediction. `void` (N, h, w) bool marks predictions of no class (a class-mapped teacher's
    void): they count as misses of the labelled class."""
    prediction = resize_to(logits, labels.shape[-2:]).argmax(dim=1)
    if void is not None:
        void = resize_to(void[:, None], labels.shape[-2:], mode='nearest')[:, 0]
        prediction = prediction.masked_fill(void, num_classes)
    valid = labels != IGNORE_INDEX
    columns = num_classes + 1  # the last column: predicted void
    pairs = labels[valid] * columns + prediction[valid]
    confusion = torch.bincount(pairs, minlength=num_classes * columns).reshape(
        num_classes, columns)
    true_positive = confusion.diag().double()
    union = confusion[:, :num_classes].sum(0).double() + confusion.sum(1).double() \
        - true_positive
    present = union > 0
    return float((true_positive[present] / union[present]).mean()) if bool(present.any()) else 0.0


def batch_abs_rel(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """mean |p - g| / g over valid target pixels of one batch (prediction resized to target)."""
    prediction = resize_to(prediction, target.shape[-2:])
    mask = valid_depth_mask(target)
    return float(((prediction[mask] - target[mask]).abs() / target[mask]).mean())


def ability_from_metrics(student_miou: float, student_abs_rel: float,
                         teacher_miou: float, teacher_abs_rel: float) -> torch.Tensor:
    """(a_seg, a_depth): student over teacher, error metric inverted, clamped to ABILITY_RANGE."""
    tiny = 1e-12
    ability = torch.tensor([student_miou / max(teacher_miou, tiny),
                            teacher_abs_rel / max(student_abs_rel, tiny)], dtype=torch.float64)
    return ability.clamp(*ABILITY_RANGE)


def updated_weights(omega: torch.Tensor, ability: torch.Tensor, alpha: float, beta: float,
                    direction: str) -> torch.Tensor:
    """One self-adaptive update of the teacher weights omega (N,) given abilities (N,)."""
    drive = ability if direction == 'follow_ability' else 1.0 / ability
    target = omega.mean() * drive * drive.mean() ** (alpha - 1.0)
    omega = omega - beta * omega * (omega - target)
    return omega * len(omega) / omega.sum()


class FusionConnector(nn.Module):
    """Teachers' decoder features -> fused seg logits (N, C, h, w) and depth (N, 1, h, w) m.

    residual: the heads (zero-initialised) correct the teachers' predictions (teacher_logits
    (N, C, H, W), teacher_depth (N, 1, H, W) of `depth_kind`: metres, capped at max_depth, or
    a relative teacher's own units, uncapped); otherwise the heads predict from the features
    alone and the teachers' predictions are ignored."""

    def __init__(self, seg_channels: int, depth_channels: int, width: int, num_classes: int,
                 max_depth: float, residual: bool):
        super().__init__()
        self.max_depth = max_depth
        self.residual = residual
        self.trunk = nn.Sequential(
            nn.Conv2d(seg_channels + depth_channels, width, 3, padding=1),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.seg_head = nn.Conv2d(width, num_classes, 1)
        self.depth_head = nn.Conv2d(width, 1, 1)
        if residual:
            for head in (self.seg_head, self.depth_head):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, seg_features: torch.Tensor, depth_features: torch.Tensor,
                teacher_logits: torch.Tensor, teacher_depth: torch.Tensor,
                depth_kind: str = 'metric') -> tuple[torch.Tensor, torch.Tensor]:
        size = max(seg_features.shape[-2:], depth_features.shape[-2:],
                   key=lambda hw: hw[0] * hw[1])
        fused = self.trunk(torch.cat([resize_to(seg_features, size),
                                      resize_to(depth_features, size)], dim=1))
        seg, depth = self.seg_head(fused), self.depth_head(fused)
        if not self.residual:
            return seg, self.max_depth * torch.sigmoid(depth)
        seg = teacher_logits + resize_to(seg, teacher_logits.shape[-2:])
        depth = teacher_depth * torch.exp(resize_to(depth, teacher_depth.shape[-2:]))
        return seg, depth.clamp(max=self.max_depth) if depth_kind == 'metric' else depth


class JointDistill(DistillMethod):
    """The `jointdistill` method (module docstring)."""
    name = 'jointdistill'
    Params = JointDistillParams
    teachers_needed = TASKS
    uses_labels = True

    def __init__(self, params: JointDistillParams, student: nn.Module, num_classes: int,
                 max_depth: float):
        super().__init__(params, student, num_classes, max_depth)
        self.register_buffer('omega', torch.ones(len(TASKS), dtype=torch.float64))
        self.register_buffer('best_score', torch.tensor(-math.inf, dtype=torch.float64))
        self.register_buffer('history_table', torch.zeros(0, 3, dtype=torch.float64))
        self.register_buffer('snapshot_count', torch.zeros((), dtype=torch.long))
        self.register_buffer('snapshot_next', torch.zeros((), dtype=torch.long))
        self.last_ability = torch.full((len(TASKS),), math.nan, dtype=torch.float64)
        self.teacher_metrics: tuple[float, float] | None = None
        self.depth_kind = 'metric'  # the depth teacher's, read in setup()
        self.connector: FusionConnector | None = None

    # ----------------------------------------------------------------- set-up
    def setup(self, probe_batch: Sample, val_batch: Sample, teachers: dict[str, nn.Module]) -> None:
        device = module_device(self.student)
        params = self.params
        if params.fusion:
            self._build_connector(probe_batch['image'][:1].to(device), teachers, device)
        if self.needs_evaluation:
            self._store_validation(val_batch, teachers, device)
        if params.trajectory:
            self._build_snapshot_buffers(probe_batch['image'][:params.probe_size].to(device))
        if len(self.history_table) == 0:
            self._record_history(0)

    @property
    def needs_evaluation(self) -> bool:
        return self.params.adaptive_weights or self.params.trajectory

    def _build_connector(self, images: torch.Tensor, teachers: dict[str, nn.Module],
                         device: torch.device) -> None:
        seg = probe_teacher_channels(teachers['seg'], images, 'seg', ['dec_seg'])['dec_seg']
        depth = probe_teacher_channels(teachers['depth'], images, 'depth',
                                       ['dec_depth'])['dec_depth']
        with seeded_init(5):
            self.connector = FusionConnector(seg, depth, self.params.connector_channels,
                                             self.num_classes, self.max_depth,
                                             self.params.connector_residual).to(device)

    @torch.no_grad()
    def _store_validation(self, val_batch: Sample, teachers: dict[str, nn.Module],
                          device: torch.device) -> None:
        images = val_batch['image'].to(device)
        labels = val_batch['labels'].to(device)
        depth = val_batch['depth'].to(device)
        if not bool((labels != IGNORE_INDEX).any()) or not bool(valid_depth_mask(depth).any()):
            raise ValueError('jointdistill: the validation batch needs labelled pixels and '
                             'valid depth to measure the student against the teachers; '
                             'validate on data with both (data.val_spec, e.g. synthetic)')
        self.register_buffer('val_images', images, persistent=False)
        self.register_buffer('val_labels', labels, persistent=False)
        self.register_buffer('val_depth', depth, persistent=False)
        seg_out, depth_out = teachers['seg'](images), teachers['depth'](images)
        self.depth_kind = depth_out.depth_kind
        self.teacher_metrics = (
            batch_miou(seg_out.seg_logits, labels, self.num_classes, seg_out.seg_void),
            self._abs_rel(depth_out.depth))

    def _abs_rel(self, depth: torch.Tensor) -> float:
        """abs rel on the validation batch of depth (N, 1, h, w) of the depth teacher's kind;
        relative depth is aligned per image to the labels first (least squares, in its space)."""
        metres = aligned_depth(depth, self.val_depth, self.depth_kind, self.max_depth)
        return batch_abs_rel(metres, self.val_depth)

    @torch.no_grad()
    def _build_snapshot_buffers(self, probe_images: torch.Tensor) -> None:
        self.register_buffer('probe_images', probe_images, persistent=False)
        attention = self._probe_attention(self.student, grad=False)
        capacity = self.params.buffer_size
        for index, maps in enumerate(attention):
            k = min(self.params.topk, maps.shape[1])
            shape = (capacity, maps.shape[0], k)
            self.register_buffer(f'snapshot_locations_{index}',
                                 torch.zeros(shape, dtype=torch.long, device=maps.device))
            self.register_buffer(f'snapshot_values_{index}',
                                 torch.zeros(shape, dtype=maps.dtype, device=maps.device))

    # ----------------------------------------------------------------- losses
    def losses(self, batch: Sample, student_out: ModelOutput,
               teacher_outs: dict[str, ModelOutput]) -> dict[str, torch.Tensor]:
        params = self.params
        terms = task_loss_terms(batch, student_out, params.seg_weight, params.depth_weight,
                                params.depth_loss)
        if params.lambda_kd:
            seg_target, depth_target = self._distillation_targets(batch, teacher_outs, terms)
            omega = self.omega.float()
            terms['kd/seg'] = params.lambda_kd * omega[0] * kl_with_temperature(
                student_out.seg_logits, seg_target, params.temperature,
                ignore=teacher_outs['seg'].seg_void)
            depth_target = resize_to(depth_target, student_out.depth.shape[-2:])
            terms['kd/depth'] = params.lambda_kd * omega[1] * teacher_depth_loss(
                student_out.depth, depth_target, teacher_outs['depth'].depth_kind,
                params.depth_kd_loss, params.silog_variance_weight,
                anchor_labels(batch, teacher_outs['depth'].depth_kind), self.max_depth)
        if params.trajectory and params.lambda_traj:
            terms['traj'] = params.lambda_traj * self.trajectory_loss()
        return terms

    def _distillation_targets(self, batch: Sample, teacher_outs: dict[str, ModelOutput],
                              terms: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(seg logits, depth of the depth teacher's kind) the student distils from, without
        gradient. With fusion on, also adds the connector's own supervised terms to `terms`:
        its depth is matched to the labels by `depth_loss` for a metric teacher, and by the
        scale-and-shift-invariant loss in the teacher's space for a relative one (so the fused
        target stays relative, like the teacher's)."""
        if not self.params.fusion:
            return teacher_outs['seg'].seg_logits.detach(), teacher_outs['depth'].depth.detach()
        seg_out, depth_out = teacher_outs['seg'], teacher_outs['depth']
        kind = depth_out.depth_kind
        fused_seg, fused_depth = self.connector(
            seg_out.features['dec_seg'].detach(), depth_out.features['dec_depth'].detach(),
            seg_out.seg_logits.detach(), depth_out.depth.detach(), kind)
        weight = self.params.connector_weight
        if weight:
            terms['connector/seg'] = weight * masked_cross_entropy(fused_seg, batch['labels'])
            terms['connector/depth'] = weight * (
                depth_distance(self.params.depth_loss, fused_depth, batch['depth'])
                if kind == 'metric' else ssi_label_loss(fused_depth, batch['depth'], kind))
        return fused_seg.detach(), fused_depth.detach()

    def trajectory_loss(self) -> torch.Tensor:
        """sum over stored snapshots and layers of mean_probe || A_S[e] - A_stored[e] ||^2."""
        count = int(self.snapshot_count)
        if count == 0:
            return torch.zeros((), device=self.omega.device)
        attention = self._probe_attention(self.student, grad=True)
        total = 0.0
        for index, maps in enumerate(attention):
            locations = getattr(self, f'snapshot_locations_{index}')[:count]
            values = getattr(self, f'snapshot_values_{index}')[:count]
            current = maps.unsqueeze(0).expand(count, -1, -1).gather(2, locations)
            total = total + ((current - values) ** 2).sum(dim=2).mean(dim=1).sum()
        return total

    def _probe_attention(self, student: nn.Module, grad: bool) -> list[torch.Tensor]:
        """Attention maps (M, H_l*W_l) of the student on the probe images, one per layer,
        computed in eval mode (the mode the snapshots are taken in)."""
        was_training = student.training
        student.eval()
        try:
            with torch.set_grad_enabled(grad):
                features = student(self.probe_images).features
        finally:
            student.train(was_training)
        return [attention_map(features[key]) for key in self.params.trajectory_layers]

    # ----------------------------------------------------------------- per step
    def on_step_end(self, step: int, student: nn.Module) -> dict[str, float]:
        if self.needs_evaluation and step % self.params.eval_every == 0:
            self._evaluate_and_adapt(step, student)
        return {'omega/seg': float(self.omega[0]), 'omega/depth': float(self.omega[1]),
                'ability/seg': float(self.last_ability[0]),
                'ability/depth': float(self.last_ability[1]),
                'traj/snapshots': float(self.snapshot_count)}

    def _evaluate_and_adapt(self, step: int, student: nn.Module) -> None:
        ability = self.measure_ability(student).to(self.omega.device)
        self.last_ability = ability.cpu()
        params = self.params
        if params.adaptive_weights:
            self.omega.copy_(updated_weights(self.omega, ability, params.alpha, params.beta,
                                             params.direction))
            self._record_history(step)
        score = float(ability.mean())
        if score > float(self.best_score):
            self.best_score.fill_(score)
            if params.trajectory:
                self.take_snapshot()

    @torch.no_grad()
    def measure_ability(self, student: nn.Module) -> torch.Tensor:
        """(a_seg, a_depth) of the student on the stored validation batch (eval mode)."""
        was_training = student.training
        student.eval()
        try:
            out = student(self.val_images)
        finally:
            student.train(was_training)
        teacher_miou, teacher_abs_rel = self.teacher_metrics
        # Like with like: against a relative teacher the student is aligned the same way, so
        # the ability compares the shape both predict (the student's scale comes from labels).
        return ability_from_metrics(batch_miou(out.seg_logits, self.val_labels, self.num_classes),
                                    self._abs_rel(depth_in_kind(out.depth, self.depth_kind)),
                                    teacher_miou, teacher_abs_rel)

    @torch.no_grad()
    def take_snapshot(self) -> None:
        """Store the top-k attention values and locations of the student on the probe set."""
        slot = int(self.snapshot_next)
        for index, maps in enumerate(self._probe_attention(self.student, grad=False)):
            locations = getattr(self, f'snapshot_locations_{index}')
            values, top = maps.topk(locations.shape[2], dim=1)
            locations[slot] = top
            getattr(self, f'snapshot_values_{index}')[slot] = values
        self.snapshot_next.fill_((slot + 1) % self.params.buffer_size)
        self.snapshot_count.fill_(min(int(self.snapshot_count) + 1, self.params.buffer_size))

    @property
    def snapshots(self) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Stored snapshots, oldest first; each a list over layers of (locations, values),
        both (M, k)."""
        count, capacity = int(self.snapshot_count), self.params.buffer_size
        slots = [(int(self.snapshot_next) - count + i) % capacity for i in range(count)]
        return [[(getattr(self, f'snapshot_locations_{j}')[slot],
                  getattr(self, f'snapshot_values_{j}')[slot])
                 for j in range(len(self.params.trajectory_layers))] for slot in slots]

    # ----------------------------------------------------------------- history
    def _record_history(self, step: int) -> None:
        row = torch.tensor([[float(step), float(self.omega[0]), float(self.omega[1])]],
                           dtype=torch.float64, device=self.history_table.device)
        self.history_table = torch.cat([self.history_table, row])

    @property
    def weight_history(self) -> list[tuple[int, float, float]]:
        """[(step, omega_seg, omega_depth)] at set-up and after every weight update."""
        return [(int(s), float(a), float(b)) for s, a, b in self.history_table.tolist()]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The history grows during training: take the stored length before loading.
        stored = state_dict.get(prefix + 'history_table')
        if stored is not None:
            self.history_table = torch.zeros_like(stored, device=self.history_table.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
