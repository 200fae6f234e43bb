"""Synthetic street scene generation speed on one CPU core, as a Markdown table.

    .venv/bin/python benchmarks/synth_speed.py [--frames 40] [--repeats 3]

Renders `--frames` different scenes at 128x256 and at 480x640 with numpy and torch limited to
one thread, each `--repeats` times. The machine the project develops on is shared, so wall
time mostly measures the other users; the main column is therefore CPU time of this process
(the fastest repeat of every scene), the estimate for an idle core. Wall-clock frames/s over
all repeats and the load average are printed beside it.
"""
from __future__ import annotations

import os

for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_variable] = '1'   # before numpy is imported

import argparse
import platform
import statistics
import subprocess
import time

import torch

from jointdistill_core.data.synthetic import render_scene

SIZES = ((128, 256), (480, 640))


def cpu_model() -> str:
    try:
        output = subprocess.run(['lscpu'], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or 'unknown CPU'
    for line in output.splitlines():
        if line.startswith('Model name:'):
            return line.split(':', 1)[1].strip()
    return 'unknown CPU'


def time_size(height: int, width: int, frames: int, repeats: int) -> dict[str, float]:
    """frames/s from CPU time (fastest repeat of each scene) and from wall time (all repeats)."""
    render_scene(10_000, height, width)   # warm-up: imports, caches
    best_cpu, wall = [], []
    for seed in range(frames):
        cpu_samples = []
        for _ in range(repeats):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            render_scene(seed, height, width)
            cpu_samples.append(time.process_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
        best_cpu.append(min(cpu_samples))
    return {'cpu_fps': 1.0 / statistics.mean(best_cpu), 'cpu_median_ms': 1000 * statistics.median(best_cpu),
            'wall_fps': 1.0 / statistics.mean(wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=40, help='different scenes per size (40)')
    parser.add_argument('--repeats', type=int, default=3, help='renders of each scene (3)')
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    rows = [(size, time_size(*size, args.frames, args.repeats)) for size in SIZES]
    load_after = os.getloadavg()[0]
    print(f'CPU: {cpu_model()} ({os.cpu_count()} logical cores), one thread; '
          f'{args.frames} scenes x {args.repeats} repeats per size; '
          f'1-min load average {load_before:.1f} before, {load_after:.1f} after\n')
    print('| size (HxW) | frames/s (CPU time) | median ms/frame (CPU time) | frames/s (wall, shared machine) |')
    print('|---|---|---|---|')
    for (height, width), result in rows:
        print(f'| {height}x{width} | {result["cpu_fps"]:.1f} | {result["cpu_median_ms"]:.1f} '
              f'| {result["wall_fps"]:.1f} |')

if __name__ == '__main__':
    main()
