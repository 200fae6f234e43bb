"""The training loop behind `jointdistill train` (single process, or DDP under torchrun).

Per step (the contract of jointdistill_core.distill.base): the student and the frozen
teachers see the batch, the method returns named loss terms, their sum is minimised with
AdamW; `method.on_step_end` returns values to log (e.g. adaptive teacher weights).

Files under the output folder:
  config.yaml              the resolved configuration
  last.{safetensors,json}  the model after the latest validation (a checkpoint)
  best.{safetensors,json}  the model with the best validation score so far
  resume.safetensors       everything --resume needs (see `TrainingState`)
  model_card.md            what `best` is, its provenance and metrics (model_card.py)
  metrics.csv, tensorboard/  logs
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from jointdistill_core.canonical import canonical_targets, model_canonical_focal
from jointdistill_core.config import ConfigError, from_dict, to_dict
from jointdistill_core.data.sample import Sample
from jointdistill_core.device import DeviceUnavailableError, resolve_device
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.provenance import run_provenance
from jointdistill_core.tasks import TASKS
from jointdistill_core.training.config import TrainConfig
from jointdistill_core.training.ddp import (
    DistContext,
    init_distributed,
    shutdown_distributed,
    synchronize_batch_norm,
)
from jointdistill_core.training.evaluate import evaluate_model, selection_score
from jointdistill_core.training.logging import RunLogger
from jointdistill_core.training.sampling import SeededDataset, StepBatchSampler
from jointdistill_core.training.state import capture_rng, load_state, restore_rng, save_state

RESUME_NAME = 'resume.safetensors'
MODEL_CARD_NAME = 'model_card.md'
# Keys that may differ between the saved and the resumed configuration.
RESUMABLE_CHANGES = ('steps', 'val_every', 'log_every', 'out', 'data.workers')
TASK_ARCH_OUTPUTS = {'multi': ('seg_logits', 'depth'), 'seg': ('seg_logits',),
                     'depth': ('depth',)}


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why and where."""


class TrainingDiverged(TrainingError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished `train` returns: folder, steps, best score, last metrics, time (s)."""
    out_dir: Path
    steps: int
    best_score: float
    last_metrics: dict[str, float]
    wall_time_s: float


def cpu_has_bf16() -> bool:
    """True when this CPU computes bf16 natively (avx512_bf16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def nonfinite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of `state` that hold a NaN or an infinity.

    One device sync per call: the sum of every tensor, accumulated in float64 (so finite
    float32 / float16 weights cannot overflow it), is finite exactly when all values are;
    only when it is not does the per-tensor search (one sync per tensor) name the culprits.
    For the student this costs about a third of checking each tensor (docs/training.md).
    """
    floats = {name: tensor for name, tensor in state.items() if tensor.is_floating_point()}
    sums = [tensor.sum(dtype=torch.float64) for tensor in floats.values()]
    if not sums or bool(torch.isfinite(torch.stack(sums).sum())):
        return []
    return [name for name, tensor in floats.items() if not bool(torch.isfinite(tensor).all())]


def lr_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of the base learning rates for (0-based) `step`."""
    schedule = config.schedule
    if step < schedule.warmup:
        return (step + 1) / schedule.warmup
    if schedule.name == 'step':
        return schedule.gamma ** ((step - schedule.warmup) // schedule.step_every)
    span = max(1, config.steps - schedule.warmup - 1)
    progress = min(1.0, (step - schedule.warmup) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return schedule.min_factor + (1.0 - schedule.min_factor) * cosine


class LossModule(nn.Module):
    """Student plus method: forward(batch, teacher_outs) -> named loss terms. One module so
    DDP averages the gradients of the method's own parameters too."""

    def __init__(self, student: nn.Module, method: nn.Module):
        super().__init__()
        self.student, self.method = student, method

    def forward(self, batch: Sample, teacher_outs: dict[str, ModelOutput]
                ) -> dict[str, torch.Tensor]:
        student_out = self.student(batch['image'])
        hidden = {'labels', 'depth'} - set(self.method.label_keys)
        batch = {key: value for key, value in batch.items() if key not in hidden}
        return self.method.losses(batch, student_out, teacher_outs)


def set_determinism(seed: int) -> None:
    """Seed every generator and ask torch for deterministic kernels."""
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def _to_device(batch: Sample, device: torch.device) -> Sample:
    return {key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
            for key, value in batch.items()}


def _fixed_batch(dataset, count: int, seed: int) -> Sample:
    """`count` samples at seeded positions of `dataset`, collated; seeded per sample, so
    augmentation (if on) is reproducible."""
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(dataset), generator=generator)[:count].tolist()
    samples = [SeededDataset(dataset)[(index, seed + index)] for index in indices]
    return torch.utils.data.default_collate(samples)


class Trainer:
    """One training run of `config` (module docstring); `run()` trains."""
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True,
                 stop_at: int | None = None, command: str | None = None,
                 depth_scale: str | None = None):
        """stop_at: end this invocation after that global step, with a resumable state saved
        (for job time limits); None = run to `config.steps`. command: the command line, and
        depth_scale: where the student's metric depth scale comes from, both recorded in the
        checkpoints' provenance (jointdistill_core.provenance)."""
        self.config = config
        self.command = command
        self.depth_scale = depth_scale
        self.provenance: dict = {}
        self.resume = resume
        if stop_at is not None and stop_at < 1:
            raise ConfigError(f'stop_at must be >= 1, got {stop_at}')
        self.stop_at = stop_at
        self.progress = progress
        self.out_dir = Path(config.out)
        try:
            self.device = resolve_device(config.device)
        except DeviceUnavailableError as error:
            raise ConfigError(f'device: {error}') from None
        if config.amp and self.device.type == 'cpu' and not cpu_has_bf16():
            raise ConfigError('amp: this CPU has no native bf16 (avx512_bf16 or AMX), so mixed '
                              'precision would be slower than fp32; set amp: false')
        self.memory_format = torch.channels_last if config.channels_last \
            else torch.contiguous_format
        self.dist = DistContext()
        # Built by setup() (which run() calls): data, networks, method and optimizer.
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.num_classes = 0
        self.input_size: tuple[int, int] | None = None  # (H, W) pixels
        self.student: nn.Module | None = None
        self.max_depth = 0.0  # metres
        self.canonical_focal: float | None = None  # pixels
        self.teachers: dict[str, nn.Module] = {}
        self.method: DistillMethod | None = None
        self.loss_module: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        # Progress: optimizer steps done, best validation score, step of the last checkpoint.
        self.step = 0
        self.best_score = -math.inf
        self._saved_step: int | None = None

    # ---- set-up ---------------------------------------------------------------------------
    def _build_data(self) -> None:
        from jointdistill_core.data.registry import build_dataset
        data = self.config.data
        size = data.size_pixels()
        try:
            canonical = self.config.model.kwargs.get('canonical_focal_px') is not None
            self.train_set, self.num_classes = build_dataset(
                data.spec, data.train_split, size=size, num_frames=data.num_frames,
                augment=data.augment, num_classes=self.config.model.kwargs.get('num_classes'),
                seed=self.config.seed, canonical_depth=canonical)
            self.val_set, _ = build_dataset(
                data.val_spec or data.spec, data.val_split, size=size, num_frames=data.val_frames,
                augment=False, num_classes=self.num_classes, seed=self.config.seed + 1,
                canonical_depth=canonical)
        except (ValueError, OSError) as error:
            raise ConfigError(f'data: {error}') from error
        if len(self.val_set) == 0:
            raise ConfigError(f'data.val_split: {data.spec} split {data.val_split!r} is empty')
        self.input_size = size or tuple(self.train_set[0]['image'].shape[-2:])

    def _build_student(self) -> nn.Module:
        from jointdistill_core.models.factory import ModelSpecError, build_model
        spec = {'arch': self.config.model.arch, **self.config.model.kwargs}
        if self.config.task != 'depth' and 'num_classes' not in spec:
            spec['num_classes'] = self.num_classes
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                model = build_model(spec)
        except ModelSpecError as error:
            raise ConfigError(f'model: {error}') from error
        if self.config.task != 'depth' and \
                getattr(model, 'num_classes', self.num_classes) not in (self.num_classes, None):
            raise ConfigError(f'model.kwargs.num_classes: {model.num_classes} but the dataset '
                              f'{self.config.data.spec} has {self.num_classes} classes')
        return model.to(self.device, memory_format=self.memory_format)

    def _check_outputs(self, model: nn.Module) -> None:
        """The model must produce what its task trains, before any step is spent."""
        probe = self.val_set[0]['image'][None].to(self.device)
        model.eval()
        with torch.no_grad():
            output = model(probe)
        model.train()
        for name in TASK_ARCH_OUTPUTS[self.config.task]:
            if getattr(output, name) is None:
                raise ConfigError(f'model.arch: {self.config.model.arch!r} produces no '
                                  f'{name}, which task {self.config.task!r} trains')

    def _build_teachers(self) -> dict[str, nn.Module]:
        """The configured teachers through their adapters (jointdistill_core.teachers), each
        run once on a validation image so a class count or output that does not fit the
        student stops here, naming the option."""
        from jointdistill_core.teachers import TeacherError, build_teacher
        probe = self.val_set[0]['image'][None].to(self.device)
        teachers = {}
        for task in TASKS:
            spec = getattr(self.config.teachers, task)
            if spec is None:
                continue
            try:
                teacher = build_teacher(spec, task, self.device)
                teacher.check(probe, self.num_classes)
            except (ValueError, OSError) as error:
                key = error.key if isinstance(error, TeacherError) else 'path'
                raise ConfigError(f'teachers.{task}.{key}: {error}') from error
            self._check_canonical_camera(task, teacher)
            teacher.to(memory_format=self.memory_format)
            teachers[task] = teacher
        return teachers

    def _check_canonical_camera(self, task: str, teacher: nn.Module) -> None:
        """A metric depth teacher must predict depth for the student's camera convention (a
        relative teacher has no scale to disagree on)."""
        if task != 'depth' or getattr(teacher, 'depth_kind', 'metric') != 'metric':
            return
        teacher_focal = model_canonical_focal(teacher)
        if teacher_focal != self.canonical_focal:
            raise ConfigError(
                f'teachers.depth.path: the teacher predicts depth for '
                f'{_describe_camera(teacher_focal)} but the student for '
                f'{_describe_camera(self.canonical_focal)}; set model.kwargs.canonical_focal_px '
                f'to {teacher_focal} or use a teacher trained with the same value')

    def _canonical(self, batch: Sample) -> Sample:
        """The batch with its ground-truth depth converted to the student's canonical camera."""
        if self.canonical_focal is None or 'depth' not in batch:
            return batch
        return {**batch, 'depth': canonical_targets(batch['depth'], batch['K'],
                                                    self.canonical_focal)}

    def _build_method(self, student: nn.Module) -> DistillMethod:
        from jointdistill_core.distill import build_method
        method_config = self.config.method
        params = dict(method_config.params)
        if self.config.task != 'multi':
            if method_config.name != 'mtl':
                raise ConfigError(f'method.name: task {self.config.task!r} trains a teacher '
                                  f"with the plain task loss; use method 'mtl', not "
                                  f'{method_config.name!r}')
            params['depth_weight' if self.config.task == 'seg' else 'seg_weight'] = 0.0
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed + 1)
                method = build_method(method_config.name, params, student, self.num_classes,
                                      self.max_depth)
        except (ValueError, TypeError, KeyError) as error:
            raise ConfigError(f'method: {error}') from error
        missing = [t for t in method.teachers_needed if t not in self.teachers]
        if missing:
            raise ConfigError(f'teachers: method {method_config.name!r} needs teacher(s) '
                              f'{", ".join(missing)}; set teachers.<task>.path')
        return method

    def _build_optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        groups = [{'params': [p for p in self.student.parameters() if p.requires_grad],
                   'lr': optim.lr, 'name': 'model'}]
        method_params = [p for p in self.method.parameters() if p.requires_grad]
        if method_params:
            adaptor_lr = optim.lr if optim.adaptor_lr is None else optim.adaptor_lr
            groups.append({'params': method_params, 'lr': adaptor_lr, 'name': 'method'})
        for group in groups:
            group['base_lr'] = group['lr']
        return torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay,
                                 eps=optim.eps)

    def setup(self) -> None:
        config = self.config
        set_determinism(config.seed)
        self.dist = init_distributed(self.device)
        if self.device.type == 'cuda' and self.dist.enabled:
            self.device = self.dist.device  # cuda:LOCAL_RANK
        self._build_data()
        self.student = self._build_student()
        self._check_outputs(self.student)
        self.max_depth = float(getattr(self.student, 'max_depth', None) or 80.0)
        self.canonical_focal = model_canonical_focal(self.student)
        self.teachers = self._build_teachers()
        if self.dist.is_main:
            self.provenance = run_provenance(config, self.teachers, self.command,
                                             self.depth_scale)
        self.method = self._build_method(self.student)
        # The same probe and validation batches on every process and for every process count
        # (global batch size, at least the method's probe_size), so the method's decisions
        # do not depend on how the run is split.
        probe_count = max(config.data.batch_size,
                          int(getattr(self.method.params, 'probe_size', 0) or 0))
        probe = self._canonical(_to_device(_fixed_batch(self.train_set, probe_count,
                                                        config.seed), self.device))
        val = self._canonical(_to_device(_fixed_batch(self.val_set, config.data.batch_size,
                                                      config.seed + 1), self.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 2)
            self.method.setup(probe, val, self.teachers)
        self.method.to(self.device)  # once, after setup() built the method's own modules
        self.loss_module = LossModule(self.student, self.method)
        if self.dist.enabled:
            synchronize_batch_norm(self.loss_module)
            self.loss_module = DistributedDataParallel(
                self.loss_module, device_ids=[self.device.index] if self.device.type == 'cuda'
                else None, find_unused_parameters=True)
        self.optimizer = self._build_optimizer()
        self.scaler = torch.amp.GradScaler('cuda', enabled=config.amp
                                           and self.device.type == 'cuda')
        self.step = 0
        self.best_score = -math.inf
        if self.resume:
            self._load_resume_state()

    # ---- state ----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            'step': self.step,
            'best_score': self.best_score,
            'config': to_dict(self.config),
            'model': self.student.state_dict(),
            'method': self.method.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'scaler': self.scaler.state_dict(),
            'rng': capture_rng(),
        }

    def _load_resume_state(self) -> None:
        path = self.out_dir / RESUME_NAME
        try:
            state = load_state(path)
        except (FileNotFoundError, ValueError) as error:
            raise TrainingError(f'--resume: {error}') from error
        # Through the dataclass, so keys added to the config since then get their defaults.
        saved = to_dict(from_dict(TrainConfig, state['config'], source=str(path)))
        _check_resumable(saved, to_dict(self.config), path)
        if state['step'] >= self.config.steps:
            raise TrainingError(f'--resume: {path} is at step {state["step"]}, the run has '
                                f'steps: {self.config.steps}; raise steps to continue')
        self.student.load_state_dict(state['model'])
        self.method.load_state_dict(state['method'])
        self.optimizer.load_state_dict(state['optimizer'])
        if state['scaler']:
            self.scaler.load_state_dict(state['scaler'])
        restore_rng(state['rng'])
        self.step = int(state['step'])
        self.best_score = float(state['best_score'])

    def _save(self, metrics: dict[str, float], is_best: bool) -> None:
        from jointdistill_core.checkpoint import save_checkpoint
        extra = {'input_size': list(self.input_size), 'step': self.step, 'metrics': metrics,
                 'num_classes': self.num_classes, 'train_config': to_dict(self.config),
                 'provenance': self.provenance}
        save_checkpoint(self.out_dir / 'last', self.student, extra)
        if is_best:
            save_checkpoint(self.out_dir / 'best', self.student, extra)
        save_state(self.out_dir / RESUME_NAME, self._state())

    # ---- loop -----------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        data = self.config.data
        sampler = StepBatchSampler(len(self.train_set), data.batch_size, self.config.seed,
                                   self.step, self.config.steps, self.dist.rank,
                                   self.dist.world_size)
        # Own generator: creating the loader then draws no number from the global RNG.
        return DataLoader(SeededDataset(self.train_set), batch_sampler=sampler,
                          num_workers=data.workers, pin_memory=self.device.type == 'cuda',
                          generator=torch.Generator())

    def _teacher_outputs(self, images: torch.Tensor) -> dict:
        with torch.no_grad(), self._autocast():
            return {task: self.teachers[task](images) for task in self.method.teachers_needed}

    def _autocast(self):
        if self.device.type == 'cpu':
            return torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.config.amp)
        return torch.autocast('cuda', dtype=torch.float16, enabled=self.config.amp)

    def _train_step(self, batch: Sample) -> tuple[dict[str, float], float]:
        for group in self.optimizer.param_groups:
            group['lr'] = group['base_lr'] * lr_factor(self.config, self.step)
        batch = self._canonical(batch)
        batch['image'] = batch['image'].contiguous(memory_format=self.memory_format)
        teacher_outs = self._teacher_outputs(batch['image'])
        with self._autocast():
            terms = self.loss_module(batch, teacher_outs)
        total = sum(terms.values())
        values = {f'loss/{name}': float(term.detach()) for name, term in terms.items()}
        values['loss/total'] = float(total.detach())
        if self.dist.any_true(not math.isfinite(values['loss/total'])):
            self._diverged('the loss is not finite', values)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        broken = nonfinite_tensors(self.student.state_dict())
        if self.dist.any_true(bool(broken)):
            self._diverged('its update made the weights non-finite ('
                           + ', '.join(broken[:3]) + (' ...' if len(broken) > 3 else '') + ')',
                           values)
        self.step += 1
        method_logs = self.method.on_step_end(self.step, self.student) or {}
        values.update({f'method/{key}': float(value) for key, value in method_logs.items()})
        return values, self.optimizer.param_groups[0]['lr']

    def _diverged(self, what: str, values: dict[str, float]) -> None:
        """Stop: name the step (1-based) and its loss terms; nothing is saved."""
        terms = ', '.join(f'{name}={value:.6g}' for name, value in values.items())
        raise TrainingDiverged(
            f'training diverged at step {self.step + 1}: {what}; loss terms: {terms}. '
            f'{self._kept_checkpoint()} Lower optim.lr or check the data.')

    def _kept_checkpoint(self) -> str:
        if self._saved_step is None:
            return 'No checkpoint had been written yet.'
        return (f'The last good checkpoint (step {self._saved_step}) is kept: '
                f'{self.out_dir / "last.safetensors"}.')

    def _validate(self) -> dict[str, float]:
        metrics = evaluate_model(self.student, self.val_set, self.num_classes, self.device,
                                 batch_size=self.config.data.batch_size,
                                 tasks=TASK_ARCH_OUTPUTS[self.config.task])
        self.student.train()
        return metrics

    def run(self) -> TrainResult:
        self.setup()
        start_time = time.perf_counter()
        self._saved_step = self.step if self.resume else None
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / 'config.yaml').write_text(yaml.safe_dump(to_dict(self.config),
                                                                    sort_keys=False))
            logger = RunLogger(self.out_dir, start_step=self.step)
        self.student.train()
        last_metrics: dict[str, float] = {}
        window: list[dict[str, float]] = []
        bar = tqdm(total=self.config.steps, initial=self.step, desc='train', unit='step',
                   disable=not (self.progress and self.dist.is_main), dynamic_ncols=True)
        tick = time.perf_counter()
        try:
            for batch in self._loader():
                values, lr = self._train_step(_to_device(batch, self.device))
                window.append(values)
                if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                    now = time.perf_counter()
                    images_per_s = (len(window) * self.config.data.batch_size
                                    / max(now - tick, 1e-9))
                    tick = now
                    averaged = {key: float(np.mean([v[key] for v in window if key in v]))
                                for key in window[-1]}
                    window = []
                    bar.set_postfix(loss=f'{averaged["loss/total"]:.4f}',
                                    img_s=f'{images_per_s:.1f}')
                    if self.dist.is_main:
                        logger.log(self.step, {**averaged, 'lr': lr, 'images_per_s': images_per_s})
                bar.update(1)
                stopping = self.step == self.stop_at
                if (self.step % self.config.val_every == 0 or self.step == self.config.steps
                        or stopping):
                    last_metrics = self._validate_and_save(logger if self.dist.is_main else None)
                if stopping:
                    break
        finally:
            bar.close()
            if self.dist.is_main:
                logger.close()
            shutdown_distributed(self.dist)
        if self.dist.is_main and (self.out_dir / 'best.json').is_file():
            from jointdistill_core.model_card import write_model_card
            write_model_card(self.out_dir / 'best', self.out_dir / MODEL_CARD_NAME)
        return TrainResult(self.out_dir, self.step, self.best_score, last_metrics,
                           time.perf_counter() - start_time)

    def _validate_and_save(self, logger: RunLogger | None) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            metrics = self._validate()
            score = selection_score(metrics, self.config.task)
            # A validation split without ground truth (an unlabelled recording) scores -inf
            # every time: nothing to choose by, so `best` follows the latest.
            is_best = score > self.best_score or score == -math.inf
            self.best_score = max(score, self.best_score)
            logger.log(self.step, {**{f'val/{k}': v for k, v in metrics.items()},
                                   'val/score': score})
            self._save(metrics, is_best)
            self._saved_step = self.step
        self.dist.barrier()
        return metrics


def _describe_camera(canonical_focal: float | None) -> str:
    if canonical_focal is None:
        return 'the input as given (metric depth, canonical_focal_px null)'
    return f'a canonical camera of focal length {canonical_focal:g} px'


def _check_resumable(saved: dict, current: dict, path: Path) -> None:
    differences = [key for key in _flat_keys(saved) | _flat_keys(current)
                   if _lookup(saved, key) != _lookup(current, key)
                   and not any(key == allowed or key.startswith(allowed + '.')
                               for allowed in RESUMABLE_CHANGES)]
    if differences:
        raise TrainingError(f'--resume: the configuration differs from the one saved in {path} '
                            f'at: {", ".join(sorted(differences))} (only '
                            f'{", ".join(RESUMABLE_CHANGES)} may change)')


def _flat_keys(mapping: dict, prefix: str = '') -> set[str]:
    keys = set()
    for key, value in mapping.items():
        path = f'{prefix}{key}'
        if isinstance(value, dict) and value:
            keys |= _flat_keys(value, path + '.')
        else:
            keys.add(path)
    return keys


def _lookup(mapping: dict, dotted: str):
    node = mapping
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def train(config: TrainConfig, resume: bool = False, progress: bool = True,
          stop_at: int | None = None, command: str | None = None,
          depth_scale: str | None = None) -> TrainResult:
    """Train `config` to the end (or to `stop_at`); see `Trainer`."""
    return Trainer(config, resume=resume, progress=progress, stop_at=stop_at, command=command,
                   depth_scale=depth_scale).run()
