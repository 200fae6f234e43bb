"""Cost of the trainer's per-step finite-weights check: per tensor (one device sync each, the
check before issue 15) against `nonfinite_tensors` (one float64 sum per tensor, one sync).

    python -m benchmarks.finite_check [--rounds 300] [--device cpu]

Prints the median milliseconds of each and their paired ratio, for the default student's
state_dict; the figure is quoted in docs/training.md.
"""
from __future__ import annotations

from jointdistill_core.openmp import passive_openmp_waiting

passive_openmp_waiting()  # before torch loads, as in the trainer's CLI

import argparse  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402

from benchmarks.common import interleaved, machine_description, paired_ratio  # noqa: E402
from jointdistill_core.models.factory import build_model  # noqa: E402
from jointdistill_core.training.trainer import nonfinite_tensors  # noqa: E402


def per_tensor_check(state: dict[str, torch.Tensor]) -> list[str]:
    """The reference: every floating-point tensor checked and synchronised on its own."""
    return [name for name, tensor in state.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=300)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    state = build_model({'arch': 'student'}).to(args.device).state_dict()
    assert per_tensor_check(state) == nonfinite_tensors(state) == []
    wall, cpu = interleaved({'per tensor': lambda: per_tensor_check(state),
                             'batched': lambda: nonfinite_tensors(state)}, args.rounds)
    print(f'{len(state)} tensors, {sum(t.numel() for t in state.values())} values; '
          f'{machine_description()}')
    for name in wall:
        print(f'{name}: median {statistics.median(wall[name]):.2f} ms wall, '
              f'{statistics.median(cpu[name]):.2f} ms CPU')
    for label, times in (('wall', wall), ('CPU', cpu)):
        ratio = paired_ratio(times['batched'], times['per tensor'])
        print(f'batched / per tensor ({label}): median {ratio["median"]:.2f} '
              f'(min {ratio["min"]:.2f}, max {ratio["max"]:.2f})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
