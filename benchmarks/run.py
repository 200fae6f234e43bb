"""The benchmark suite in one run: `make bench` (or `python -m benchmarks.run`).

Writes docs/benchmarks.json and docs/benchmarks.md. Every figure of one run comes from the
same machine and device; ratios are paired per round (see benchmarks/common.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import machine_description

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = [(256, 512), (480, 640)]


def parse_size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition('x')
    if not (height.isdigit() and width.isdigit()):
        raise argparse.ArgumentTypeError(f'size must be HxW, got {text!r}')
    return int(height), int(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', nargs='+', type=parse_size, default=DEFAULT_SIZES,
                        help='model input sizes HxW (default: 256x512 480x640)')
    parser.add_argument('--rounds', type=int, default=20,
                        help='timed round-robin rounds per size (default 20)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--skip-node', action='store_true',
                        help='only the network benchmarks (no ROS node processes)')
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'docs',
                        help='folder for benchmarks.json and benchmarks.md (default docs/)')
    args = parser.parse_args(argv)

    from benchmarks.bench_models import benchmark_models
    started = time.time()
    results = {'machine': machine_description(), 'device': args.device}
    results['models'] = benchmark_models(args.sizes, args.rounds, device=args.device)
    results['latency_ms'] = {
        size: {name: round(entry[name]['median_ms'], 2)
               for name in ('student', 'teachers', 'peer_pair')}
        for size, entry in results['models']['sizes'].items()}
    if not args.skip_node:
        from benchmarks.bench_node import benchmark_node
        results['node'] = benchmark_node(device=args.device)
        results['node_overhead_ms'] = results['node']['overhead_ms']
    results['wall_s'] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'benchmarks.json').write_text(json.dumps(results, indent=2) + '\n')
    markdown = render_markdown(results)
    (args.out / 'benchmarks.md').write_text(markdown)
    print(markdown)
    return 0


def _ratio(entry: dict, name: str) -> str:
    ratio = entry['ratios'][name]
    return f"{ratio['median']:.1f}x ({ratio['min']:.1f}-{ratio['max']:.1f})"


def render_markdown(results: dict) -> str:
    machine = results['machine']
    models = results['models']
    lines = [
        '# Benchmarks',
        '',
        'Written by `make bench` (`python -m benchmarks.run`); numbers below are from one run.',
        f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), GPU: {machine['gpu'] or 'none'}; "
        f"device `{results['device']}`.",
        '',
        '## Networks through the Predictor (camera image = model input size)',
        '',
        f"Parameters: student {models['parameters']['student'] / 1e6:.2f} M; both teachers "
        f"{models['parameters']['teachers'] / 1e6:.2f} M; weights: {models['sources']['student']}.",
        'Timed round-robin, median and p95 of the rounds; ratios paired per round '
        '(median, min-max).',
        '',
        '| input | student ms (p95) | teachers ms (p95) | peer pair ms (p95) | '
        'peer/student | teachers/student |',
        '|---|---|---|---|---|---|',
    ]
    for size, entry in models['sizes'].items():
        cells = [f"{entry[n]['median_ms']:.1f} ({entry[n]['p95_ms']:.1f})"
                 for n in ('student', 'teachers', 'peer_pair')]
        lines.append(f"| {size} | {' | '.join(cells)} | {_ratio(entry, 'peer_pair/student')} | "
                     f"{_ratio(entry, 'teachers/student')} |")
    onnx_rows = [(size, entry) for size, entry in models['sizes'].items()
                 if 'student_onnxruntime' in entry]
    if onnx_rows:
        lines += ['', '### Student backends', '',
                  '| input | PyTorch eager ms | ONNX Runtime ms | eager/ORT |', '|---|---|---|---|']
        for size, entry in onnx_rows:
            lines.append(f"| {size} | {entry['student']['median_ms']:.1f} | "
                         f"{entry['student_onnxruntime']['median_ms']:.1f} | "
                         f"{_ratio(entry, 'student/student_onnxruntime')} |")
    lines += ['', '## Compute efficiency of the student', '',
              f"Measured fp32 matrix-multiply peak: {models['matmul_peak_gflops']} GFLOP/s.", '',
              '| input | GFLOP/frame | forward ms | achieved GFLOP/s | fraction of peak |',
              '|---|---|---|---|---|']
    for size, entry in models['sizes'].items():
        c = entry['student_compute']
        lines.append(f"| {size} | {c['gflops_per_frame']} | {c['forward_median_ms']} | "
                     f"{c['achieved_gflops']} | {c['fraction_of_matmul_peak']:.0%} |")
    if 'node' in results:
        from benchmarks.bench_node import render_node_markdown
        lines += [''] + render_node_markdown(results['node'])
    lines += ['', f"Whole run: {results['wall_s']} s.", '']
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
