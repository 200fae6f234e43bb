"""Does a student distilled through the foreign-teacher adapters do as well as one distilled
from the same teachers through the built-in path?

The project's own teachers are taught twice, on the same data, budget and seeds:
  builtin  the checkpoints as they are (7 classes, metric depth);
  adapted  exported to ONNX and disguised as foreign models (benchmarks/foreign_teachers.py):
           segmentation as a 19-class model through the `cityscapes19_to_7` class map
           (logits permuted into 19 channels, the others padded), depth as a
           `relative_inverse` model (s / depth + b with s, b changing per image), so the
           teacher's depth has no scale of its own: it is anchored to each frame's depth
           labels (every synthetic frame has them) and the metric scale comes from the labels
           alone.
Both use `jointdistill` without the fusion connector (ONNX teachers have no features), the
depth losses log-L1, and are scored on the test split. Writes OUT/comparison.json,
OUT/comparison.md (per seed, mean, sample standard deviation, paired differences) and
OUT/comparison.png.

    python -m benchmarks.adapter_comparison --out runs/adapter_comparison
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import torch
import yaml

from benchmarks.foreign_teachers import (
    CATEGORY_POSITIONS,
    CITYSCAPES_19,
    export_onnx,
    inverse_depth_onnx,
    run_command,
    widen_seg_onnx,
)
from jointdistill_core.checkpoint import load_checkpoint
from jointdistill_core.data.registry import build_dataset
from jointdistill_core.device import resolve_device
from jointdistill_core.provenance import file_sha256
from jointdistill_core.training import load_train_config, train
from jointdistill_core.training.evaluate import evaluate_model

METRICS = ('miou', 'pixel_acc', 'abs_rel', 'rmse', 'delta1')
PATHS = ('builtin', 'adapted')
FRAMES = {'train': 800, 'val': 100, 'test': 200}
# A pad logit this low gives the padding classes probability 0 (exp(-1e4) underflows), so the
# merged 7-class distribution is the teacher's own: the seg paths differ by float rounding.
PAD_LOGIT = -1e4


def render_data(out: Path, size: str, workers: int) -> str:
    """Synthetic scenes written once (FRAMES per split), shared by every run."""
    for split, count in FRAMES.items():
        if not (out / split).is_dir():
            run_command(['data', 'synth', '--out', str(out), '--split', split, '--num',
                         str(count), '--size', size, '--workers', str(workers)])
    return f'synthetic:{out}'


def teachers(seg: Path, depth: Path, out: Path, size: str) -> dict[str, dict]:
    """The `teachers` config section of each path."""
    out.mkdir(parents=True, exist_ok=True)
    copies = {}
    for task, source in (('seg', seg), ('depth', depth)):  # a snapshot: models/ may change
        for suffix in ('.safetensors', '.json'):
            shutil.copy(source.with_suffix(suffix), out / f'teacher_{task}{suffix}')
        copies[task] = out / f'teacher_{task}.safetensors'
    seg_onnx = widen_seg_onnx(export_onnx(copies['seg'], out / 'seg.onnx', size),
                              out / 'seg19.onnx', CATEGORY_POSITIONS, CITYSCAPES_19, PAD_LOGIT)
    depth_onnx = inverse_depth_onnx(export_onnx(copies['depth'], out / 'depth.onnx', size),
                                    out / 'disparity.onnx')
    return {'builtin': {task: {'path': str(path)} for task, path in copies.items()},
            'adapted': {'seg': {'path': str(seg_onnx), 'class_map': 'cityscapes19_to_7'},
                        'depth': {'path': str(depth_onnx), 'depth_kind': 'relative_inverse'}}}


def student_kwargs(depth_teacher: Path) -> dict:
    """The student keeps the depth teacher's camera convention (docs/real_world.md)."""
    focal = getattr(load_checkpoint(depth_teacher)[0], 'canonical_focal_px', None)
    return {'canonical_focal_px': focal} if focal else {}


def run_config(data: str, size: str, student: dict, teacher_section: dict, steps: int,
               seed: int, out: Path, device: str) -> dict:
    """The training config of one run (both paths identical but for `teacher_section`)."""
    return {'task': 'multi', 'model': {'arch': 'student', 'kwargs': student},
            'method': {'name': 'jointdistill',
                       'params': {'fusion': False, 'depth_loss': 'log_l1',
                                  'depth_kd_loss': 'log_l1', 'eval_every': 50}},
            'teachers': teacher_section,
            'data': {'spec': data, 'size': size, 'batch_size': 8, 'augment': False},
            'optim': {'lr': 2e-3}, 'schedule': {'name': 'cosine', 'warmup': steps // 10},
            'steps': steps, 'val_every': steps, 'log_every': max(1, steps // 10), 'seed': seed,
            'out': str(out), 'device': device}


def evaluate_on_test(run_dir: Path, data: str, size: str,
                     device: torch.device) -> dict[str, float]:
    """METRICS of the run's last checkpoint on the test split."""
    model, config = load_checkpoint(run_dir / 'last', device)
    height, width = (int(v) for v in size.split('x'))
    dataset, classes = build_dataset(data, 'test', size=(height, width))
    metrics = evaluate_model(model, dataset, classes, device)
    return {key: metrics[key] for key in METRICS}


def summarize(results: dict[str, dict[int, dict[str, float]]]) -> dict:
    """Per path and metric: mean and sample standard deviation over seeds; per metric the
    paired difference adapted - builtin (mean, standard deviation)."""
    seeds = sorted(results['builtin'])
    summary = {'seeds': seeds, 'paths': {}, 'paired_difference': {}}
    for path in PATHS:
        summary['paths'][path] = {
            metric: {'mean': statistics.mean(results[path][s][metric] for s in seeds),
                     'std': statistics.stdev(results[path][s][metric] for s in seeds)}
            for metric in METRICS}
    for metric in METRICS:
        differences = [results['adapted'][s][metric] - results['builtin'][s][metric]
                       for s in seeds]
        summary['paired_difference'][metric] = {'mean': statistics.mean(differences),
                                                'std': statistics.stdev(differences)}
    return summary


def _value(metric: str, value: float) -> str:
    return f'{100 * value:.2f}' if metric in ('miou', 'pixel_acc', 'delta1') else f'{value:.4f}'


def markdown(results: dict, summary: dict, command: str) -> str:
    """The table of every run, the means and spreads, and the paired differences."""
    seeds = summary['seeds']
    header = '| path | seed | ' + ' | '.join(METRICS) + ' |'
    rows = [header, '|---' * (len(METRICS) + 2) + '|']
    for path in PATHS:
        for seed in seeds:
            rows.append(f'| {path} | {seed} | ' + ' | '.join(
                _value(m, results[path][seed][m]) for m in METRICS) + ' |')
        rows.append(f'| {path} | mean ± sd | ' + ' | '.join(
            f'{_value(m, summary["paths"][path][m]["mean"])} ± '
            f'{_value(m, summary["paths"][path][m]["std"])}' for m in METRICS) + ' |')
    rows.append('| adapted - builtin | paired mean ± sd | ' + ' | '.join(
        f'{_value(m, summary["paired_difference"][m]["mean"])} ± '
        f'{_value(m, summary["paired_difference"][m]["std"])}' for m in METRICS) + ' |')
    return '\n'.join([f'Command: `{command}`', '', *rows,
                      '', 'mIoU, pixel accuracy and delta1 in percent; abs rel a ratio; RMSE in '
                      'metres. sd: sample standard deviation over the seeds.']) + '\n'


def figure(results: dict, summary: dict, path: Path) -> None:
    """One panel per metric: each seed's value per path (dots) and the mean (bar)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure_, axes = plt.subplots(1, len(METRICS), figsize=(3 * len(METRICS), 3))
    for axis, metric in zip(axes, METRICS):
        for position, name in enumerate(PATHS):
            values = [results[name][seed][metric] for seed in summary['seeds']]
            axis.bar(position, summary['paths'][name][metric]['mean'], color='#c6dbef',
                     width=0.6)
            axis.scatter([position] * len(values), values, color='#08519c', zorder=3)
        axis.set_xticks(range(len(PATHS)), PATHS)
        axis.set_title(metric)
        low = min(results[n][s][metric] for n in PATHS for s in summary['seeds'])
        high = max(results[n][s][metric] for n in PATHS for s in summary['seeds'])
        axis.set_ylim(low - 0.5 * (high - low) - 1e-6, high + 0.5 * (high - low) + 1e-6)
    figure_.suptitle('Student distilled through the ONNX adapters vs the built-in path '
                     f'(seeds {", ".join(map(str, summary["seeds"]))})')
    figure_.tight_layout()
    figure_.savefig(path, dpi=100)
    plt.close(figure_)


def main(argv: list[str] | None = None) -> int:
    """Render the data, disguise the teachers, train and evaluate both paths per seed."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('runs/adapter_comparison'))
    parser.add_argument('--seg-teacher', type=Path, default=Path('models/teacher_seg.safetensors'))
    parser.add_argument('--depth-teacher', type=Path,
                        default=Path('models/teacher_depth.safetensors'))
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--size', default='64x128')
    parser.add_argument('--device', default='auto', help='training device (auto, cpu, cuda)')
    parser.add_argument('--workers', type=int, default=1, help='processes rendering the data')
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error('--seeds: give at least two seeds (the spread needs them)')
    import sys
    command = ' '.join(['python -m benchmarks.adapter_comparison',
                       *(sys.argv[1:] if argv is None else argv)])
    data = render_data(args.out / 'data', args.size, args.workers)
    sections = teachers(args.seg_teacher, args.depth_teacher, args.out / 'teachers', args.size)
    student = student_kwargs(args.depth_teacher)
    results: dict[str, dict[int, dict[str, float]]] = {path: {} for path in PATHS}
    for seed in args.seeds:
        for path in PATHS:
            run_dir = args.out / f'{path}_seed{seed}'
            config_path = args.out / f'{path}_seed{seed}.yaml'
            config_path.write_text(yaml.safe_dump(run_config(
                data, args.size, student, sections[path], args.steps, seed, run_dir,
                args.device)))
            config = load_train_config(config_path)
            result = train(config, progress=False)
            results[path][seed] = evaluate_on_test(run_dir, data, args.size,
                                                   resolve_device(args.device))
            print(f'{path} seed {seed} ({result.wall_time_s:.0f} s): '
                  + ', '.join(f'{k} {v:.4f}' for k, v in results[path][seed].items()),
                  flush=True)
    summary = summarize(results)
    (args.out / 'comparison.json').write_text(json.dumps(
        {'results': results, 'summary': summary, 'steps': args.steps, 'size': args.size,
         'command': command, 'device': str(resolve_device(args.device)),
         'torch': torch.__version__,
         'teachers_sha256': {task: file_sha256(path) for task, path
                             in (('seg', args.seg_teacher), ('depth', args.depth_teacher))}},
        indent=2) + '\n')
    (args.out / 'comparison.md').write_text(markdown(results, summary, command))
    figure(results, summary, args.out / 'comparison.png')
    print((args.out / 'comparison.md').read_text())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
