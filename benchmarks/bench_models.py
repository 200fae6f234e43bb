"""Network latency side by side: the student, both teachers one after the other, and the peer
pair (SegFormer-B0 + Depth-Anything-V2-Small), all through the same `predict` signature on
the same device, timed round-robin so ratios are paired per round. Also the student's
compute efficiency against a matrix-multiply peak measured in the same run.

Runtimes: `student` and `teachers` run on the backend the node picks by default
(`backend: auto`: onnxruntime on the CPU, PyTorch fp16 on CUDA); on the CPU the same two
networks also run in eager PyTorch (`student_torch`, `teachers_torch`), the runtime the peer
pair has, so every ratio can be read runtime for runtime.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.common import interleaved, matmul_peak_gflops, paired_ratio, summarize
from benchmarks.peers import PeerPair
from jointdistill_core.checkpoint import load_checkpoint
from jointdistill_core.inference import Prediction, Predictor
from jointdistill_core.models.blocks import fuse_conv_bn
from jointdistill_core.models.factory import build_model
from jointdistill_core.models.profile import count_flops, count_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    'student': REPO_ROOT / 'models' / 'jointdistill_student.safetensors',
    'seg_teacher': REPO_ROOT / 'models' / 'teacher_seg.safetensors',
    'depth_teacher': REPO_ROOT / 'models' / 'teacher_depth.safetensors',
}
# Paired ratios reported per input size: (slower, faster).
RATIOS = (('peer_pair', 'student'), ('teachers', 'student'), ('peer_pair', 'student_torch'),
          ('teachers_torch', 'student_torch'), ('student_torch', 'student'))


def load_network(arch: str) -> tuple[torch.nn.Module, str]:
    """The shipped checkpoint when present, else a default network with random weights
    (latency does not depend on the weights). Returns (model, where it came from)."""
    path = SHIPPED[arch]
    if path.exists():
        model, _ = load_checkpoint(path)
        return model, str(path.relative_to(REPO_ROOT))
    return build_model({'arch': arch}), 'random init (no shipped checkpoint)'


def deployed_backend(device: str) -> str:
    """What the node's `backend: auto` runs on `device`."""
    return 'torch' if device.startswith('cuda') else 'onnxruntime'


class TeacherPair:
    """Both single-task teachers one after the other: what distillation replaces."""

    def __init__(self, seg: Predictor, depth: Predictor):
        self.seg, self.depth = seg, depth

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(depth=self.depth.predict(image).depth,
                          labels=self.seg.predict(image).labels)


def _contenders(networks: dict[str, torch.nn.Module], size: tuple[int, int],
                device: str) -> dict[str, object]:
    def predictor(arch: str, backend: str) -> Predictor:
        # As the node runs them: NHWC convolutions for eager PyTorch on the CPU.
        channels_last = backend == 'torch' and device == 'cpu'
        return Predictor.from_model(networks[arch], size, device=device, backend=backend,
                                    channels_last=channels_last)

    backends = {'': deployed_backend(device)}
    if backends[''] != 'torch':
        backends['_torch'] = 'torch'
    contenders: dict[str, object] = {}
    for suffix, backend in backends.items():
        contenders[f'student{suffix}'] = predictor('student', backend)
        contenders[f'teachers{suffix}'] = TeacherPair(predictor('seg_teacher', backend),
                                                      predictor('depth_teacher', backend))
    contenders['peer_pair'] = PeerPair(size, device=device)
    return contenders


def benchmark_models(sizes: list[tuple[int, int]], rounds: int, device: str = 'cpu') -> dict:
    """Per model input size (H, W): latency statistics (ms, wall clock and CPU time of this
    process), paired ratios, and the student's compute efficiency."""
    networks, sources = {}, {}
    for arch in SHIPPED:
        networks[arch], sources[arch] = load_network(arch)
    results: dict = {
        'sources': sources,
        'backend': deployed_backend(device),
        'parameters': {'student': count_parameters(networks['student']),
                       'teachers': count_parameters(networks['seg_teacher'])
                       + count_parameters(networks['depth_teacher'])},
        'sizes': {},
    }
    peak = matmul_peak_gflops(device=device)
    results['matmul_peak_gflops'] = round(peak, 1)
    for height, width in sizes:
        key = f'{height}x{width}'
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        contenders = _contenders(networks, (height, width), device)
        results['parameters'].setdefault('peer_pair', contenders['peer_pair'].parameter_count())
        calls = {name: (lambda p=p: p.predict(image)) for name, p in contenders.items()}
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        with tqdm(total=rounds, desc=f'networks at {key}', leave=False) as bar:
            wall, cpu = interleaved(calls, rounds, progress=lambda: bar.update())
        entry = {name: {**summarize(wall[name]).as_dict(),
                        'cpu_ms_median': round(float(np.median(cpu[name])), 2)}
                 for name in calls}
        entry['ratios'] = {f'{slow}/{fast}': paired_ratio(wall[slow], wall[fast])
                           for slow, fast in RATIOS if slow in wall and fast in wall}
        entry['cpu_ratios'] = {f'{slow}/{fast}': paired_ratio(cpu[slow], cpu[fast])
                               for slow, fast in RATIOS if slow in cpu and fast in cpu}
        if device.startswith('cuda'):
            entry['gpu_peak_memory_mb'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        entry['student_compute'] = _compute_efficiency(networks['student'], contenders['student'],
                                                       (height, width), peak)
        results['sizes'][key] = entry
    return results


def _compute_efficiency(model: torch.nn.Module, student: Predictor, size: tuple[int, int],
                        peak_gflops: float, runs: int = 15) -> dict:
    """FLOPs of one student forward over the median time of the network alone (the runtime's
    forward on a prepared input: no resizing, copies or arg-max)."""
    forward = _bare_forward(model, student, size)
    times = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        forward()
        times.append((time.perf_counter() - start) * 1e3)
    forward_ms = float(np.median(times[2:]))
    flops = count_flops(model, size)
    achieved = flops / (forward_ms / 1e3) / 1e9
    return {'gflops_per_frame': round(flops / 1e9, 3), 'forward_median_ms': round(forward_ms, 2),
            'achieved_gflops': round(achieved, 1),
            'fraction_of_matmul_peak': round(achieved / peak_gflops, 3),
            'backend': student.backend}


def _bare_forward(model: torch.nn.Module, student: Predictor, size: tuple[int, int]):
    """A callable running only the network, on the runtime `student` uses."""
    height, width = size
    if student.backend == 'onnxruntime':
        session = student._runner(student.input_size).session  # the very session the Predictor runs
        inputs = {session.get_inputs()[0].name: np.random.rand(1, 3, height, width)
                  .astype(np.float32)}
        return lambda: session.run(None, inputs)
    fused = fuse_conv_bn(model).to(student.device).eval()
    batch = torch.rand(1, 3, height, width, device=student.device)
    precision = torch.float16 if student.precision == 'fp16' else torch.float32

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(student.device.type, dtype=precision,
                                                    enabled=student.precision == 'fp16'):
            fused(batch)
        if student.device.type == 'cuda':
            torch.cuda.synchronize()
    return forward
