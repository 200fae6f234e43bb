"""Training cost per method: images per second of one optimizer step of the student.

Each method runs through the trainer's own code path (`Trainer.setup` builds the student,
the default teachers, the method via `build_method`, its optimizer; `Trainer._train_step`
runs teachers, losses, backward, AdamW and the method's `on_step_end`) from the shipped
configs `config/train/<method>.yaml`, on one fixed batch of synthetic images of the same
size for every method. Steps are timed round-robin (mtl, static_kd, ..., mtl, ...) so that
machine drift hits every method alike; the cost relative to `mtl` is paired per round.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.bench_models import load_network
from jointdistill_core.checkpoint import read_checkpoint_config, save_checkpoint
from jointdistill_core.distill import METHODS
from jointdistill_core.tasks import TASKS
from jointdistill_core.training.config import load_train_config
from jointdistill_core.training.trainer import Trainer, _fixed_batch, _to_device

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIGS = REPO_ROOT / 'config' / 'train'
METHOD_ORDER = ('mtl', 'static_kd', 'jointdistill', 'sd_mtcnn', 'xdistill', 'amalgamation')


def _teacher_checkpoints(scratch: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The shipped teachers, or default ones with random weights saved to `scratch` (a
    training step costs the same whatever the weights)."""
    paths, sources = {}, {}
    for task in TASKS:
        model, source = load_network(f'{task}_teacher')
        paths[task] = save_checkpoint(scratch / f'teacher_{task}', model.eval())
        sources[task] = source
    return paths, sources


def _trainer(method: str, teachers: dict[str, Path], size: tuple[int, int], batch_size: int,
             device: str, scratch: Path, extra: tuple[str, ...] = ()) -> Trainer:
    path = TRAIN_CONFIGS / f'{method}.yaml'
    if not path.is_file():
        raise FileNotFoundError(f'{path}: the training config of method {method!r} is missing')
    overrides = [f'data.size={size[0]}x{size[1]}', f'data.batch_size={batch_size}',
                 f'data.num_frames={max(4 * batch_size, 32)}', f'data.val_frames={batch_size}',
                 'data.augment=false', f'device={device}', f'out={scratch / method}']
    overrides += [f'teachers.{task}.path={teachers[task]}'
                  for task in METHODS[method].teachers_needed]
    if 'depth' in METHODS[method].teachers_needed:
        # The student predicts depth for the depth teacher's camera (the trainer refuses a
        # mismatch); the shipped teachers use a canonical camera, random ones do not.
        focal = read_checkpoint_config(teachers['depth'])['model'].get('canonical_focal_px')
        overrides.append(f"model.kwargs.canonical_focal_px={'null' if focal is None else focal}")
    overrides += list(extra)
    trainer = Trainer(load_train_config(path, overrides), progress=False)
    trainer.setup()
    return trainer


def benchmark_training(methods: tuple[str, ...] = METHOD_ORDER, size: tuple[int, int] = (128, 256),
                       batch_size: int = 8, rounds: int = 3, device: str = 'cpu') -> dict:
    """Per method: median and min seconds per step and images per second (batch_size
    images at size (H, W)), and the per-round step time relative to `mtl`."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        teachers, sources = _teacher_checkpoints(scratch)
        trainers, batches = {}, {}
        for method in tqdm(methods, desc='training: set up methods', leave=False):
            trainers[method] = _trainer(method, teachers, size, batch_size, device, scratch)
            batches[method] = _to_device(_fixed_batch(trainers[method].train_set, batch_size, 0),
                                         trainers[method].device)
        samples: dict[str, list[float]] = {method: [] for method in methods}
        for round_index in tqdm(range(rounds + 1), desc='training steps (round-robin)',
                                leave=False):
            for method in methods:
                start = time.perf_counter()
                trainers[method]._train_step(batches[method])
                if round_index > 0:  # round 0 warms up allocators and lazy state
                    samples[method].append(time.perf_counter() - start)
    torch.use_deterministic_algorithms(deterministic)  # Trainer.setup switched it on
    results = {'batch_size': batch_size, 'input_size': f'{size[0]}x{size[1]}',
               'rounds': rounds, 'teachers': sources, 'methods': {}}
    for method in methods:
        step_s = statistics.median(samples[method])
        entry = {'step_s_median': round(step_s, 4), 'step_s_min': round(min(samples[method]), 4),
                 'images_per_s': round(batch_size / step_s, 2),
                 'teachers': list(METHODS[method].teachers_needed)}
        if 'mtl' in samples:
            ratios = [a / b for a, b in zip(samples[method], samples['mtl'])]
            entry['cost_vs_mtl'] = round(statistics.median(ratios), 2)
        results['methods'][method] = entry
    return results


def render_training_markdown(training: dict) -> list[str]:
    """Markdown lines of the training-cost section of docs/benchmarks.md."""
    lines = [
        '## Training cost per method',
        '',
        f"One optimizer step of the student on {training['batch_size']} images of "
        f"{training['input_size']} through the trainer (teachers forward, losses, backward, "
        f"AdamW, the method's step-end hook), {training['rounds']} rounds round-robin after "
        f"one warm-up round; teachers: {training['teachers']['seg']} and "
        f"{training['teachers']['depth']}.",
        '',
        '| method | teachers run | step ms (median) | images/s | step time vs mtl |',
        '|---|---|---|---|---|',
    ]
    for method, row in training['methods'].items():
        teachers = ', '.join(row['teachers']) or 'none'
        ratio = f"{row['cost_vs_mtl']:.2f}x" if 'cost_vs_mtl' in row else '-'
        lines.append(f"| {method} | {teachers} | {row['step_s_median'] * 1e3:.0f} | "
                     f"{row['images_per_s']} | {ratio} |")
    return lines


# Precision and memory layout of a training step (`amp`, `channels_last` training keys).
PRECISIONS = {'fp32': (), 'channels_last': ('channels_last=true',),
              'bf16': ('amp=true',), 'bf16 + channels_last': ('amp=true', 'channels_last=true')}


def benchmark_precision(size: tuple[int, int] = (128, 256), batch_size: int = 8,
                        rounds: int = 3) -> dict:
    """One `mtl` student step on the CPU in fp32, channels_last, bf16 autocast and both,
    round-robin; per variant the median step time and its paired ratio to fp32. The bf16
    variants need a CPU with native bf16 and are left out elsewhere."""
    from jointdistill_core.training.trainer import cpu_has_bf16
    variants = {name: extra for name, extra in PRECISIONS.items()
                if cpu_has_bf16() or 'amp=true' not in extra}
    deterministic = torch.are_deterministic_algorithms_enabled()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        trainers = {name: _trainer('mtl', {}, size, batch_size, 'cpu', scratch / name, extra)
                    for name, extra in variants.items()}
        batch = _fixed_batch(trainers['fp32'].train_set, batch_size, 0)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for round_index in tqdm(range(rounds + 1), desc='training precision (round-robin)',
                                leave=False):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                trainer._train_step(dict(batch))
                if round_index > 0:
                    samples[name].append(time.perf_counter() - start)
    torch.use_deterministic_algorithms(deterministic)
    results = {'batch_size': batch_size, 'input_size': f'{size[0]}x{size[1]}',
               'rounds': rounds, 'threads': torch.get_num_threads(), 'variants': {}}
    for name, times in samples.items():
        ratios = [fp32 / other for fp32, other in zip(samples['fp32'], times)]
        results['variants'][name] = {'step_s_median': round(statistics.median(times), 4),
                                     'speedup_vs_fp32': round(statistics.median(ratios), 2)}
    return results


def render_precision_markdown(precision: dict) -> list[str]:
    """Markdown lines of the training-precision section of docs/benchmarks.md."""
    lines = [
        '## Training step: precision and memory layout',
        '',
        f"One `mtl` student step (config/train/mtl.yaml) on {precision['batch_size']} images "
        f"of {precision['input_size']}, {precision['threads']} threads, "
        f"{precision['rounds']} rounds round-robin after a warm-up round; speed-up paired "
        'per round against fp32 (`amp`, `channels_last` in docs/training.md).',
        '',
        '| variant | step ms (median) | speed-up vs fp32 |',
        '|---|---|---|',
    ]
    for name, row in precision['variants'].items():
        lines.append(f"| {name} | {row['step_s_median'] * 1e3:.0f} | "
                     f"{row['speedup_vs_fp32']:.2f}x |")
    return lines
