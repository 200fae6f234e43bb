"""Shared timing helpers for the benchmark suite: repeated runs, medians, machine description."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class Timing:
    """Latency statistics of repeated calls, milliseconds."""

    median_ms: float
    p95_ms: float
    min_ms: float
    runs: int

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms

    def as_dict(self) -> dict:
        return {**asdict(self), 'fps': round(self.fps, 2)}


def summarize(samples_ms: list[float]) -> Timing:
    """Median, p95 and min of timings in milliseconds."""
    array = np.asarray(samples_ms, np.float64)
    return Timing(median_ms=float(np.median(array)), p95_ms=float(np.percentile(array, 95)),
                  min_ms=float(array.min()), runs=len(samples_ms))


def interleaved(functions: dict[str, Callable[[], object]], runs: int, warmup: int = 2,
                progress: Callable[[], object] | None = None
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time several callables round-robin (A B C A B C ...) so that machine drift hits all
    alike. Returns (wall-clock ms, CPU ms of this process) per name, lists pairable by index
    for ratios. CPU time counts every thread of the process, so it is the cost a call takes
    from the machine, and it is far less disturbed than wall time by other jobs on a shared
    CPU. `progress` is called after every round."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    wall: dict[str, list[float]] = {name: [] for name in functions}
    cpu: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            cpu_start, start = time.process_time(), time.perf_counter()
            function()
            wall[name].append((time.perf_counter() - start) * 1e3)
            cpu[name].append((time.process_time() - cpu_start) * 1e3)
        if progress is not None:
            progress()
    return wall, cpu


def paired_ratio(numerator_ms: list[float], denominator_ms: list[float]) -> dict:
    """Median, min and max of the per-round ratios numerator/denominator."""
    ratios = [a / b for a, b in zip(numerator_ms, denominator_ms)]
    return {'median': statistics.median(ratios), 'min': min(ratios), 'max': max(ratios)}


def machine_description() -> dict:
    """CPU model, core count, torch threads and GPU (if any): the machine a figure is from."""
    cpu_model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            if line.startswith('Model name:'):
                cpu_model = line.split(':', 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    description = {
        'cpu': cpu_model,
        'cpu_cores': os.cpu_count(),
        'torch': torch.__version__,
        'torch_threads': torch.get_num_threads(),
        'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        'python': platform.python_version(),
        'load_average_1min': round(os.getloadavg()[0], 2),
        'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', 'library default (spinning)'),
    }
    return description


def matmul_peak_gflops(sizes: tuple[int, ...] = (1024, 2048), runs: int = 10,
                       device: str = 'cpu') -> float:
    """Measured fp32 matrix-multiply throughput (GFLOP/s) on `device`: the best over `sizes`
    of the fastest of `runs` square size x size products, counting 2*size^3 floating-point
    operations each. The best, not a typical value: the peak an efficiency is compared to."""
    best_gflops = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=device)
        b = torch.randn(size, size, device=device)
        best = float('inf')
        for _ in range(runs + 2):
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            torch.mm(a, b)
            if device == 'cuda':
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        best_gflops = max(best_gflops, 2.0 * size ** 3 / best / 1e9)
    return best_gflops
