"""The benchmark suite in one run: `make bench` (or `python -m benchmarks.run`).

Writes docs/benchmarks.json and docs/benchmarks.md. Every figure of one run comes from the
same machine and device; ratios are paired per round (see benchmarks/common.py).
"""
from __future__ import annotations

from jointdistill_core.openmp import passive_openmp_waiting

# Before torch is imported. Every eager network here (student, teachers, peer pair) runs under
# the node's policy; set OMP_WAIT_POLICY=ACTIVE to measure with spinning.
passive_openmp_waiting()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from benchmarks.common import machine_description  # noqa: E402
from benchmarks.hot_path import JPEG_DECODE_STEP  # noqa: E402
from jointdistill_core.cli.arguments import size_argument  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = [(256, 512), (480, 640)]
CUDA_BATCHING = REPO_ROOT / 'docs' / 'benchmarks_cuda_batching.json'


def main(argv: list[str] | None = None) -> int:
    """The command line of `make bench`; writes docs/benchmarks.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', nargs='+', type=size_argument(multiple=32),
                        default=DEFAULT_SIZES,
                        help='model input sizes HxW (default: 256x512 480x640)')
    parser.add_argument('--rounds', type=int, default=20,
                        help='timed round-robin rounds per size (default 20)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--skip-node', action='store_true',
                        help='leave out the ROS node benchmarks (no node processes)')
    parser.add_argument('--node-frames', type=int, default=30,
                        help='frames per output set in the node overhead benchmark (default 30)')
    parser.add_argument('--transport-frames', type=int, default=150,
                        help='frames the 30 Hz camera sends per transport run (default 150)')
    parser.add_argument('--camera-seconds', type=int, default=10,
                        help='seconds per run of the many-cameras benchmark (default 10)')
    parser.add_argument('--hot-path-repeats', type=int, default=30,
                        help='timed calls per node step in the CPU-time table (default 30)')
    parser.add_argument('--skip-training', action='store_true',
                        help='leave out the training cost per method')
    parser.add_argument('--training-rounds', type=int, default=3,
                        help='timed round-robin training steps per method (default 3)')
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'docs',
                        help='folder for benchmarks.json and benchmarks.md (default docs/)')
    args = parser.parse_args(argv)
    for name in ('rounds', 'hot_path_repeats', 'node_frames', 'transport_frames',
                 'camera_seconds', 'training_rounds'):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    from benchmarks.bench_models import benchmark_models
    started = time.time()
    results = {'machine': machine_description(), 'device': args.device}
    results['models'] = benchmark_models(args.sizes, args.rounds, device=args.device)
    results['latency_ms'] = {
        size: {name: round(entry[name]['median_ms'], 2)
               for name in ('student', 'teachers', 'peer_pair')}
        for size, entry in results['models']['sizes'].items()}
    from benchmarks.hot_path import measure as measure_hot_path
    results['hot_path_cpu_ms'] = {step: round(ms, 3)
                                  for step, ms in measure_hot_path(args.hot_path_repeats).items()}
    results['jpeg_decode_ms'] = results['hot_path_cpu_ms'][JPEG_DECODE_STEP]
    if not args.skip_node:
        from benchmarks.bench_node import benchmark_node
        results['node'] = benchmark_node(device=args.device, overhead_frames=args.node_frames,
                                         transport_frames=args.transport_frames)
        results['node_overhead_ms'] = results['node']['overhead_ms']
        from benchmarks.bench_cameras import benchmark_cameras
        results['cameras'] = benchmark_cameras(device=args.device, seconds=args.camera_seconds)
    from benchmarks.bench_batching import benchmark_batching
    results['batching'] = benchmark_batching(device=args.device, rounds=args.rounds)
    if not args.skip_training:
        from benchmarks.bench_training import benchmark_training
        results['training'] = benchmark_training(rounds=args.training_rounds, device=args.device)
        if args.device in ('cpu', 'auto') and not torch.cuda.is_available():
            from benchmarks.bench_training import benchmark_precision
            results['training_precision'] = benchmark_precision(rounds=args.training_rounds)
    results['targets'] = evaluate_targets(results)
    results['load_average_1min_at_end'] = round(os.getloadavg()[0], 2)
    results['wall_s'] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'benchmarks.json').write_text(json.dumps(results, indent=2) + '\n')
    markdown = render_markdown(results)
    (args.out / 'benchmarks.md').write_text(markdown)
    print(markdown)
    return 0


def evaluate_targets(results: dict) -> list[dict]:
    """Issue 7's targets against this run's figures: name, measured value, bound, holds."""
    targets = []

    def add(name: str, value: float, bound: float, at_least: bool) -> None:
        holds = value >= bound if at_least else value <= bound
        targets.append({'target': name, 'value': round(value, 3),
                        'relation': '>=' if at_least else '<=', 'bound': bound,
                        'holds': bool(holds)})

    for size, entry in results['models']['sizes'].items():
        add(f'student vs peer pair at {size} (x faster)',
            entry['ratios']['peer_pair/student']['median'], 10.0, True)
        add(f'student vs both teachers at {size} (x faster)',
            entry['ratios']['teachers/student']['median'], 3.0, True)
        add(f'student compute efficiency at {size} (fraction of matmul peak)',
            entry['student_compute']['fraction_of_matmul_peak'], 0.30, True)
    node = results.get('node')
    if node:
        transport = node['transport']['shipped Fast DDS profile']
        add('frames/s through the node, 640x480 camera, 256x512 model input',
            transport['processed_fps'], 20.0, True)
        add('node overhead, depth + labels (fraction of frame time)',
            node['overhead']['depth+labels']['overhead_fraction'], 0.10, False)
    return targets


def _ratio(entry: dict, name: str, key: str = 'ratios') -> str:
    if name not in entry[key]:
        return '-'
    ratio = entry[key][name]
    return f"{ratio['median']:.1f}x ({ratio['min']:.1f}-{ratio['max']:.1f})"


def render_markdown(results: dict) -> str:
    """docs/benchmarks.md from the results of one run."""
    machine = results['machine']
    models = results['models']
    lines = [
        '# Benchmarks',
        '',
        'Written by `make bench` (`python -m benchmarks.run`); every number below is from one '
        'run on one machine. How the figures are taken and what was optimised: '
        '[performance.md](performance.md).',
        '',
        f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), GPU: {machine['gpu'] or 'none'}; device "
        f"`{results['device']}`. Load average (1 min) at start {machine['load_average_1min']}, "
        f"at end {results['load_average_1min_at_end']}. OpenMP wait policy (eager PyTorch): "
        f"{machine['omp_wait_policy']}.",
    ]
    # A section re-measured later by itself says so here (the JSON's 'notes').
    lines += [line for note in results.get('notes', []) for line in ('', note)]
    if results['device'] == 'cpu':
        lines += ['', 'No GPU figures: this run had no GPU. On a machine with one, the same '
                  'command (`--device cuda`, the default there) records them, fp16, with the GPU '
                  'named above and its peak memory per input size.']
    lines += ['', '## Targets (issue 7)', '', '| target | measured | bound | holds |',
              '|---|---|---|---|']
    for target in results['targets']:
        lines.append(f"| {target['target']} | {target['value']} | {target['relation']} "
                     f"{target['bound']} | "
                     f"{'yes' if target['holds'] else '**no**'} |")
    lines += _render_models(models)
    if 'node' in results:
        from benchmarks.bench_cameras import render_cameras_markdown
        from benchmarks.bench_node import render_node_markdown
        lines += [''] + render_node_markdown(results['node'])
        lines += [''] + render_cameras_markdown(results['cameras'])
    lines += _render_batching(results)
    from benchmarks.hot_path import render_markdown as render_hot_path
    lines += [''] + render_hot_path(results['hot_path_cpu_ms'])
    if 'training' in results:
        from benchmarks.bench_training import render_training_markdown
        lines += [''] + render_training_markdown(results['training'])
    if 'training_precision' in results:
        from benchmarks.bench_training import render_precision_markdown
        lines += [''] + render_precision_markdown(results['training_precision'])
    lines += ['', f"Whole run: {results['wall_s']} s.", '']
    return '\n'.join(lines)


def _render_batching(results: dict) -> list[str]:
    """This run's batching section, then the one recorded on a GPU machine (CUDA_BATCHING,
    written by `python -m benchmarks.bench_batching --device cuda --json ...`) if present."""
    from benchmarks.bench_batching import render_batching_markdown
    lines = [''] + render_batching_markdown(results['batching']) if 'batching' in results \
        else []
    if CUDA_BATCHING.exists():
        cuda = json.loads(CUDA_BATCHING.read_text())
        machine = cuda['machine']
        lines += ['', f"### On {machine['gpu']} (recorded separately, "
                  f"`{CUDA_BATCHING.relative_to(REPO_ROOT)}`)", '',
                  f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores, torch "
                  f"{machine['torch']}, GPU: {machine['gpu']}.", '']
        lines += render_batching_markdown(cuda)[2:]
    return lines


def _render_models(models: dict) -> list[str]:
    backend = models['backend']
    names = [name for name in ('student', 'student_torch', 'teachers', 'teachers_torch',
                               'peer_pair') if name in next(iter(models['sizes'].values()))]
    labels = {'student': f'student ({backend})', 'student_torch': 'student (torch eager)',
              'teachers': f'teachers ({backend})', 'teachers_torch': 'teachers (torch eager)',
              'peer_pair': 'peer pair (torch eager)'}
    parameters = models['parameters']
    lines = [
        '', '## Networks through the Predictor (camera image = model input size)', '',
        f"Parameters: student {parameters['student'] / 1e6:.2f} M; both teachers "
        f"{parameters['teachers'] / 1e6:.2f} M; peer pair {parameters['peer_pair'] / 1e6:.2f} M "
        f"(random weights). Student and teacher weights: {models['sources']['student']}, "
        f"{models['sources']['seg_teacher']}, {models['sources']['depth_teacher']}.",
        f"Round-robin, {next(iter(models['sizes'].values()))['student']['runs']} rounds; wall "
        'clock median (p95) in ms, and CPU time of all threads per call (median). `student` '
        f"and `teachers` run on `{backend}`, the node's default backend on this device.",
        '', '| input | ' + ' | '.join(labels[n] for n in names) + ' |',
        '|---' * (len(names) + 1) + '|',
    ]
    for size, entry in models['sizes'].items():
        cells = [f"{entry[n]['median_ms']:.1f} ({entry[n]['p95_ms']:.1f}); CPU "
                 f"{entry[n]['cpu_ms_median']:.0f}" for n in names]
        lines.append(f"| {size} | {' | '.join(cells)} |")
    lines += ['', 'Speed-ups, paired per round: median (min-max) of wall-clock ratios; CPU-time '
              'ratio median in brackets.', '',
              '| input | peer pair / student | teachers / student | peer pair / student '
              '(both eager) | teachers / student (both eager) | student eager / ' + backend + ' |',
              '|---|---|---|---|---|---|']
    for size, entry in models['sizes'].items():
        cells = []
        for name in ('peer_pair/student', 'teachers/student', 'peer_pair/student_torch',
                     'teachers_torch/student_torch', 'student_torch/student'):
            cpu = entry['cpu_ratios'].get(name)
            cells.append(_ratio(entry, name) + (f" [{cpu['median']:.1f}x]" if cpu else ''))
        lines.append(f"| {size} | {' | '.join(cells)} |")
    gpu = [(size, entry['gpu_peak_memory_mb']) for size, entry in models['sizes'].items()
           if 'gpu_peak_memory_mb' in entry]
    if gpu:
        lines += ['', 'GPU peak memory (all networks of the size): ' +
                  ', '.join(f'{size}: {mb} MiB' for size, mb in gpu) + '.']
    lines += ['', '## Compute efficiency of the student', '',
              f"Measured fp32 matrix-multiply peak: {models['matmul_peak_gflops']} GFLOP/s (best "
              'of square 1024 and 2048 products, all threads). Forward = the network alone on a '
              'prepared input, median of 15.', '',
              '| input | backend | GFLOP/frame | forward ms | achieved GFLOP/s | '
              'fraction of peak |',
              '|---|---|---|---|---|---|']
    for size, entry in models['sizes'].items():
        c = entry['student_compute']
        lines.append(f"| {size} | {c['backend']} | {c['gflops_per_frame']} | "
                     f"{c['forward_median_ms']} | {c['achieved_gflops']} | "
                     f"{c['fraction_of_matmul_peak']:.0%} |")
    return lines


if __name__ == '__main__':
    sys.exit(main())
