"""OpenMP's waiting policy, set by every entry point (the CLI, the node, the benchmarks)."""
from __future__ import annotations

import os


def passive_openmp_waiting(environ: dict[str, str] | None = None) -> None:
    """Let PyTorch's OpenMP threads sleep at barriers instead of spinning
    (OMP_WAIT_POLICY=PASSIVE) unless the user chose a policy. Must run before torch is
    imported.

    Why: on a shared CPU (a robot's computer, a CI runner) busy-waiting threads spin against
    other processes. Eager PyTorch on 2 threads took 980 ms per frame instead of 50 ms while
    one other process kept a core of the 2-core machine busy, and a training step ran 5-15x
    slower, no slower than 1 thread with passive waiting (docs/performance.md). Sleeping costs
    eager networks up to 1.5x on an idle machine; a robot's CPU always has other work.
    """
    environ = os.environ if environ is None else environ
    environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
