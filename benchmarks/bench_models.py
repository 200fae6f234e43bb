"""Network latency side by side: the student, both teachers one after the other, and the peer
pair (SegFormer-B0 + Depth-Anything-V2-Small), all through the same `predict` signature on
the same device, timed round-robin so ratios are paired per round. Also the student's
compute efficiency against a matrix-multiply peak measured in the same run.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.common import interleaved, matmul_peak_gflops, paired_ratio, summarize
from benchmarks.peers import PeerPair
from jointdistill_core.checkpoint import load_checkpoint
from jointdistill_core.export import export_model
from jointdistill_core.inference import Predictor
from jointdistill_core.models.factory import build_model
from jointdistill_core.models.profile import count_flops, count_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    'student': REPO_ROOT / 'models' / 'jointdistill_student.safetensors',
    'seg_teacher': REPO_ROOT / 'models' / 'teacher_seg.safetensors',
    'depth_teacher': REPO_ROOT / 'models' / 'teacher_depth.safetensors',
}


def load_network(arch: str) -> tuple[torch.nn.Module, str]:
    """The shipped checkpoint when present, else a default network with random weights
    (latency does not depend on the weights). Returns (model, where it came from)."""
    path = SHIPPED[arch]
    if path.exists():
        model, _ = load_checkpoint(path)
        return model, str(path.relative_to(REPO_ROOT))
    return build_model({'arch': arch}), 'random init (no shipped checkpoint)'


class TeacherPair:
    """Both single-task teachers one after the other: what distillation replaces."""

    def __init__(self, seg: Predictor, depth: Predictor):
        self.seg, self.depth = seg, depth

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, labels = self.seg.predict(image)
        depth, _ = self.depth.predict(image)
        return depth, labels


def benchmark_models(sizes: list[tuple[int, int]], rounds: int, device: str = 'cpu',
                     with_onnxruntime: bool = True) -> dict:
    """Per model input size (H, W): latency statistics (ms) and paired ratios."""
    student, student_source = load_network('student')
    seg_teacher, seg_source = load_network('seg_teacher')
    depth_teacher, depth_source = load_network('depth_teacher')
    results: dict = {
        'sources': {'student': student_source, 'seg_teacher': seg_source,
                    'depth_teacher': depth_source},
        'parameters': {'student': count_parameters(student),
                       'teachers': count_parameters(seg_teacher) + count_parameters(depth_teacher)},
        'sizes': {},
    }
    peak = matmul_peak_gflops(device=device)
    results['matmul_peak_gflops'] = round(peak, 1)
    for height, width in sizes:
        key = f'{height}x{width}'
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        contenders = {
            'student': Predictor.from_model(student, (height, width), device=device),
            'teachers': TeacherPair(Predictor.from_model(seg_teacher, (height, width), device=device),
                                    Predictor.from_model(depth_teacher, (height, width), device=device)),
            'peer_pair': PeerPair((height, width)),
        }
        with tempfile.TemporaryDirectory() as scratch:
            if with_onnxruntime and device == 'cpu':
                onnx_path = Path(scratch) / 'student.onnx'
                export_model(student, 'onnx', (height, width), onnx_path)
                contenders['student_onnxruntime'] = Predictor.from_exported(onnx_path, device='cpu')
            calls = {name: (lambda p=p: p.predict(image)) for name, p in contenders.items()}
            with tqdm(total=1, desc=f'models {key} ({rounds} rounds)', leave=False):
                samples = interleaved(calls, rounds)
        student_forward_ms = _forward_ms(contenders['student'], image)
        flops = count_flops(student, (height, width))
        entry = {name: summarize(times).as_dict() for name, times in samples.items()}
        entry['ratios'] = {
            'peer_pair/student': paired_ratio(samples['peer_pair'], samples['student']),
            'teachers/student': paired_ratio(samples['teachers'], samples['student']),
        }
        if 'student_onnxruntime' in samples:
            entry['ratios']['student/student_onnxruntime'] = paired_ratio(
                samples['student'], samples['student_onnxruntime'])
        achieved = flops / (student_forward_ms / 1e3) / 1e9
        entry['student_compute'] = {
            'gflops_per_frame': round(flops / 1e9, 3),
            'forward_median_ms': round(student_forward_ms, 2),
            'achieved_gflops': round(achieved, 1),
            'fraction_of_matmul_peak': round(achieved / peak, 3),
        }
        results['sizes'][key] = entry
    return results


def _forward_ms(predictor: Predictor, image: np.ndarray, runs: int = 15) -> float:
    """Median network-forward time of the student alone (no resize or copies)."""
    times = []
    for _ in range(runs):
        predictor.predict(image)
        times.append(predictor.timings['forward_ms'])
    return float(np.median(times))
