"""Multi-camera batching in the Predictor, without ROS: the newest 640x480 frame of N cameras
(N = 1, 2, 4) through one `predict_batch` call (one (N, 3, h, w) forward pass, what the
multi-camera node does) against N `predict` calls one after the other, timed round-robin so
the ratio is paired per round. The shipped student at the node's model input (256x512), on
the backend and precision the node picks for the device (onnxruntime fp32 on the CPU,
PyTorch fp16 on CUDA).

    .venv/bin/python -m benchmarks.bench_batching [--device cuda] [--rounds 20] [--json PATH]

`make bench` runs it on its device; `--device cuda --json docs/benchmarks_cuda_batching.json`
on a GPU machine records the figures docs/benchmarks.md shows for that GPU.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.bench_models import deployed_backend, load_network
from benchmarks.common import interleaved, machine_description, paired_ratio, summarize
from jointdistill_core.geometry import default_intrinsics
from jointdistill_core.inference import Predictor

CAMERA_SIZE = (480, 640)
MODEL_INPUT = (256, 512)
CAMERA_COUNTS = (1, 2, 4)


def _camera_frames(count: int) -> list[np.ndarray]:
    from jointdistill_core.data.synthetic import render_scene
    return [render_scene(seed, *CAMERA_SIZE).image for seed in range(count)]


def benchmark_batching(device: str = 'cpu', rounds: int = 20,
                       counts: tuple[int, ...] = CAMERA_COUNTS) -> dict:
    """Per camera count: median ms of one batched call and of N single calls, ms per frame of
    each, and the paired ratio one-by-one / batched (> 1: batching is faster). Times are the
    process's CPU time on the CPU and wall time on CUDA."""
    model, source = load_network('student')
    predictor = Predictor.from_model(model.eval(), MODEL_INPUT, device=device,
                                     backend=deployed_backend(device))
    K = default_intrinsics(*CAMERA_SIZE)
    results: dict = {'camera': f'{CAMERA_SIZE[1]}x{CAMERA_SIZE[0]} rgb8',
                     'model_input': f'{MODEL_INPUT[0]}x{MODEL_INPUT[1]}', 'weights': source,
                     'device': str(predictor.device), 'backend': predictor.backend,
                     'precision': predictor.precision, 'rounds': rounds,
                     'clock': 'wall' if predictor.device.type == 'cuda' else 'CPU time',
                     'counts': {}}
    for count in tqdm(counts, desc='batching', leave=False):
        frames = _camera_frames(count)
        wall, cpu = interleaved({
            'batched': lambda: predictor.predict_batch(frames, [K] * count),
            'one by one': lambda: [predictor.predict(frame, K) for frame in frames]},
            rounds)
        timed = wall if predictor.device.type == 'cuda' else cpu
        batched, single = summarize(timed['batched']), summarize(timed['one by one'])
        results['counts'][str(count)] = {
            'batched_ms': round(batched.median_ms, 2),
            'one_by_one_ms': round(single.median_ms, 2),
            'batched_ms_per_frame': round(batched.median_ms / count, 2),
            'one_by_one_ms_per_frame': round(single.median_ms / count, 2),
            'speedup': {key: round(value, 3) for key, value in
                        paired_ratio(timed['one by one'], timed['batched']).items()}}
    return results


def render_batching_markdown(batching: dict) -> list[str]:
    """Markdown lines of the batching section of docs/benchmarks.md."""
    lines = [
        '## Multi-camera batching in the Predictor', '',
        f"N cameras' {batching['camera']} frames through one `predict_batch` call (one forward "
        'pass of N images, as the multi-camera node runs them) against N `predict` calls, '
        f"round-robin over {batching['rounds']} rounds; model input {batching['model_input']}, "
        f"{batching['backend']} {batching['precision']} on {batching['device']}, weights: "
        f"{batching['weights']}. Times: {batching['clock']} (CPU time of the process on the CPU, "
        'robust to other load on a shared machine; wall time on a GPU), medians; speed-up: '
        'paired per round, median (min-max).',
        '', '| cameras | batched ms | one by one ms | ms per frame batched | ms per frame one '
        'by one | speed-up |', '|---|---|---|---|---|---|']
    for count, row in batching['counts'].items():
        speedup = row['speedup']
        lines.append(f"| {count} | {row['batched_ms']} | {row['one_by_one_ms']} | "
                     f"{row['batched_ms_per_frame']} | {row['one_by_one_ms_per_frame']} | "
                     f"{speedup['median']:.2f}x ({speedup['min']:.2f}-{speedup['max']:.2f}) |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """The command line: prints the JSON results and the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default cpu)')
    parser.add_argument('--rounds', type=int, default=20,
                        help='timed rounds per camera count (default 20)')
    parser.add_argument('--json', type=Path, default=None,
                        help='also write the results (with the machine) to this JSON file')
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f'--rounds must be >= 1, got {args.rounds}')
    results = {'machine': machine_description(),
               **benchmark_batching(args.device, args.rounds)}
    print(json.dumps(results, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + '\n')
    print('\n'.join(render_batching_markdown(results)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
