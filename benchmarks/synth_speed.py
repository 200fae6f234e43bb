"""Synthetic scene rendering speed on one CPU core, as Markdown tables.

    .venv/bin/python -m benchmarks.synth_speed [--frames 40] [--repeats 2] [--mix MIX]
        [--baseline OLD.py]

Renders `--frames` different scenes (seeds 0..N-1 of the default scene mix) at 128x256,
240x320 and 480x640 with numpy, OpenCV and torch limited to one thread, each `--repeats`
times. The machine the project develops on is shared, so wall time mostly measures the
other users; the main column is therefore CPU time of this process (the fastest repeat of
every scene), the estimate for an idle core. Wall-clock frames/s over all repeats and the
load average are printed beside it, then CPU time per layout at the smallest size.

--baseline takes a renderer module file from an older checkout, e.g. `git show
ed6b213:jointdistill_core/data/synthetic.py > /tmp/old.py`, and times its
render_scene(seed, 128, 256) against this one's, interleaved scene by scene, as a ratio.
"""
from __future__ import annotations

import os

for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_variable] = '1'   # before numpy is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import machine_description, paired_ratio  # noqa: E402
from jointdistill_core.data.synthetic import DEFAULT_MIX, SceneMix, render_scene  # noqa: E402

SIZES = ((128, 256), (240, 320), (480, 640))


def time_size(height: int, width: int, frames: int, repeats: int, mix: SceneMix
              ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """frames/s from CPU time (fastest repeat of each scene) and from wall time (all
    repeats), and the fastest CPU seconds of each scene grouped by layout."""
    render_scene(10_000, height, width, mix)   # warm-up: imports, caches
    best_cpu, wall = [], []
    by_layout: dict[str, list[float]] = {}
    for seed in range(frames):
        cpu_samples = []
        for _ in range(repeats):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            frame = render_scene(seed, height, width, mix)
            cpu_samples.append(time.process_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
        best_cpu.append(min(cpu_samples))
        by_layout.setdefault(frame.layout, []).append(min(cpu_samples))
    result = {'cpu_fps': 1.0 / statistics.mean(best_cpu),
              'cpu_median_ms': 1000 * statistics.median(best_cpu),
              'wall_fps': 1.0 / statistics.mean(wall)}
    return result, by_layout


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location('baseline_renderer', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def compare(baseline: Path, frames: int, repeats: int) -> dict[str, list[float]]:
    """CPU ms per scene (fastest repeat) of the baseline ('old') and of this renderer
    ('new') at 128x256, the two timed alternately on the same seeds."""
    old = _load_module(baseline).render_scene
    old(10_000, 128, 256)
    render_scene(10_000, 128, 256)
    times: dict[str, list[float]] = {'old': [], 'new': []}
    for seed in range(frames):
        for name, render in (('old', old), ('new', render_scene)):
            samples = []
            for _ in range(repeats):
                start = time.process_time()
                render(seed, 128, 256)
                samples.append(1000 * (time.process_time() - start))
            times[name].append(min(samples))
    return times


def main() -> None:
    """Measure every size and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=40, help='different scenes per size (40)')
    parser.add_argument('--repeats', type=int, default=2, help='renders of each scene (2)')
    parser.add_argument('--mix', type=SceneMix.parse, default=DEFAULT_MIX,
                        help=f'scene mix (default {DEFAULT_MIX})')
    parser.add_argument('--baseline', type=Path,
                        help='an older renderer module file to compare with at 128x256')
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    load_before = os.getloadavg()[0]
    rows = [(size, *time_size(*size, args.frames, args.repeats, args.mix)) for size in SIZES]
    load_after = os.getloadavg()[0]
    machine = machine_description()
    print(f'CPU: {machine["cpu"]} ({machine["cpu_cores"]} logical cores), one thread; '
          f'mix {args.mix}; '
          f'{args.frames} scenes x {args.repeats} repeats per size; '
          f'1-min load average {load_before:.1f} before, {load_after:.1f} after\n')
    print('| size (HxW) | frames/s (CPU time) | median ms/frame (CPU time) '
          '| frames/s (wall, shared machine) |')
    print('|---|---|---|---|')
    for (height, width), result, _ in rows:
        print(f'| {height}x{width} | {result["cpu_fps"]:.1f} | {result["cpu_median_ms"]:.1f} '
              f'| {result["wall_fps"]:.1f} |')
    (height, width), _, by_layout = rows[0]
    print(f'\n| layout | scenes | mean ms/frame at {height}x{width} (CPU time) |')
    print('|---|---|---|')
    for layout, seconds in sorted(by_layout.items()):
        print(f'| {layout} | {len(seconds)} | {1000 * statistics.mean(seconds):.0f} |')
    if args.baseline:
        times = compare(args.baseline, args.frames, args.repeats)
        old_fps, new_fps = (1000 / statistics.mean(times[name]) for name in ('old', 'new'))
        ratio = paired_ratio(times['new'], times['old'])
        print(f'\n{args.baseline} (default arguments) against this renderer at 128x256, '
              f'interleaved: {old_fps:.1f} and {new_fps:.1f} frames/s (CPU time); this one '
              f'takes {old_fps / new_fps:.2f} times as long per frame (per scene: median '
              f'{ratio["median"]:.2f}, {ratio["min"]:.2f}-{ratio["max"]:.2f})')


if __name__ == '__main__':
    main()
