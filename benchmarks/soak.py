"""Soak: a fast, large camera into the perception node for a long time.

    python -m benchmarks.soak                      # 100 Hz 1920x1080 for 60 s (the issue's test)
    python -m benchmarks.soak --duration 10 --size 480x640 --rate 30 --no-docs

The camera (test/camera_publisher.py, its own process, best effort, stamps = send time) first
sends a few frames slowly (the idle latency), then floods the node for `--duration` seconds.
Measured: the node's resident memory over the run (growth after warm-up), its own per-frame
latency (`~/latency_ms`: header stamp to publish) under load against idle, the stamps of the
processed frames (from `depth/camera_info`) and the frame accounting of `/diagnostics`.

Newest-frame-only shows in three ways: processed stamps strictly increase; after the camera
stops, received = processed + dropped + rejected exactly (a frame is either processed or
replaced by a newer one before the worker took it); and the age of each processed frame when
its inference began (the previous output's arrival minus its stamp: under load the worker
starts the next frame as soon as it publishes) stays near one camera period plus transport,
instead of growing by a queue. Results go to docs/reliability.md (between markers) unless
--no-docs.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Float32
from tqdm import tqdm

from jointdistill_core.cli.arguments import size_argument
from jointdistill_ros.diagnostics import diagnostic_values
from jointdistill_ros.node_process import (
    NODE_NAME,
    NodeProcess,
    fastdds_profile_path,
    node_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMERA_SCRIPT = REPO_ROOT / 'test' / 'camera_publisher.py'
DOCS_PAGE = REPO_ROOT / 'docs' / 'reliability.md'
FIGURE = REPO_ROOT / 'docs' / 'figures' / 'soak.png'
BEGIN_MARK, END_MARK = '<!-- soak results: begin -->', '<!-- soak results: end -->'
START_TIMEOUT_S = 180.0


@dataclass
class SoakResult:
    """Figures of one soak run. Times in milliseconds, memory in MiB, sizes in pixels."""

    size: tuple[int, int]
    rate_hz: float
    duration_s: float
    camera_sent: int
    received: int
    processed: int
    dropped: int
    rejected: int
    outputs_seen: int
    stamps_strictly_increasing: bool
    idle_latency_ms_median: float
    load_latency_ms_median: float
    load_latency_ms_p95: float
    age_at_start_ms_median: float
    age_at_start_ms_p95: float
    rss_mb_after_warmup: float
    rss_mb_end: float
    rss_mb_peak: float
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    idle_latencies_ms: list[float] = field(default_factory=list)
    load_latencies_ms: list[float] = field(default_factory=list)
    ages_at_start_ms: list[float] = field(default_factory=list)

    @property
    def memory_growth_mb(self) -> float:
        return self.rss_mb_end - self.rss_mb_after_warmup

    @property
    def latency_ratio(self) -> float:
        return self.load_latency_ms_median / self.idle_latency_ms_median

    @property
    def accounting_exact(self) -> bool:
        return self.received == self.processed + self.dropped + self.rejected


class SoakProbe:
    """The measuring side, in this process with its own rclpy context."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('soak_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stamps_ns: list[int] = []       # processed frames, in arrival order
        self.arrivals_ns: list[int] = []     # system clock when each output arrived
        self.latencies_ms: list[float] = []
        self.diagnostics: dict[str, str] | None = None
        reliable = QoSProfile(depth=100)
        self.node.create_subscription(CameraInfo, 'depth/camera_info', self._on_info, reliable)
        self.node.create_subscription(Float32, f'/{NODE_NAME}/latency_ms',
                                      lambda msg: self.latencies_ms.append(msg.data), reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_info(self, msg: CameraInfo) -> None:
        self.arrivals_ns.append(time.time_ns())
        self.stamps_ns.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg)
        if values is not None:
            self.diagnostics = values

    def count(self, key: str) -> int:
        return int(self.diagnostics[key]) if self.diagnostics else -1

    def spin_while(self, condition, timeout_s: float, what: str, node: NodeProcess,
                   every=None) -> None:
        """Spin while condition() holds; `every()` is called between spins."""
        deadline = time.monotonic() + timeout_s
        while condition():
            if node.exited():
                raise RuntimeError(f'perception_node exited during {what}: {node.log_tail()}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'timed out after {timeout_s:.0f} s: {what}')
            self.executor.spin_once(timeout_sec=0.01)
            if every is not None:
                every()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def rss_mb(pid: int) -> float | None:
    """Current resident memory of a process (VmRSS), MiB."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def start_camera(env: dict[str, str], size: tuple[int, int], rate_hz: float,
                 frames: int) -> subprocess.Popen:
    """A camera publisher process sending `frames` images of `size` (H, W) at `rate_hz`."""
    return subprocess.Popen(
        [sys.executable, str(CAMERA_SCRIPT), '--frames', str(frames), '--rate', str(rate_hz),
         '--height', str(size[0]), '--width', str(size[1])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_camera(camera: subprocess.Popen) -> int:
    """Wait for the camera process; the number of frames it sent."""
    output, _ = camera.communicate(timeout=60)
    if camera.returncode != 0:
        raise RuntimeError(f'camera publisher failed ({camera.returncode}): {output}')
    return int(output.split('sent ')[-1].split()[0])


def isolated_environment() -> dict[str, str]:
    """A random ROS domain on localhost, the shipped Fast DDS profile, for us and children."""
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(1, 232))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(fastdds_profile_path())
    return node_environment(dict(os.environ), fastdds_profile_path())


def run_soak(checkpoint: Path, size: tuple[int, int], rate_hz: float, duration_s: float,
             env: dict[str, str], idle_frames: int = 6, idle_rate_hz: float = 1.0,
             device: str = 'cpu', model_input: tuple[int, int] | None = None,
             progress: bool = True, log_path: Path | None = None) -> SoakResult:
    """Idle phase (idle_frames at idle_rate_hz), then rate_hz for duration_s; see the module
    docstring. `env` must hold an isolated ROS domain (isolated_environment())."""
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': device,
                  'diagnostics_period': 0.5}
    if model_input:
        parameters.update(input_height=model_input[0], input_width=model_input[1])
    with NodeProcess(parameters, env=env, log_path=log_path) as node:
        probe = SoakProbe()
        try:
            probe.spin_while(lambda: probe.node.count_publishers('depth/camera_info') == 0
                             or probe.diagnostics is None, START_TIMEOUT_S,
                             'waiting for the node to start', node)
            # Idle: one frame at a time, each processed long before the next.
            camera = start_camera(env, size, idle_rate_hz, idle_frames)
            probe.spin_while(lambda: camera.poll() is None, 120, 'the idle phase', node)
            finish_camera(camera)
            probe.spin_while(lambda: len(probe.latencies_ms) < idle_frames, 30,
                             'the idle outputs', node)
            idle_latency = float(np.median(probe.latencies_ms))
            idle_outputs = len(probe.stamps_ns)

            # Load.
            samples: list[tuple[float, float]] = []
            camera = start_camera(env, size, rate_hz, int(rate_hz * duration_s))
            started = time.monotonic()
            bar = tqdm(total=int(duration_s), desc='soak', unit='s', disable=not progress)

            def sample_memory() -> None:
                elapsed = time.monotonic() - started
                if not samples or elapsed - samples[-1][0] >= 0.5:
                    value = rss_mb(node.pid)
                    if value is not None:
                        samples.append((elapsed, value))
                    bar.update(int(elapsed) - bar.n)

            probe.spin_while(lambda: camera.poll() is None, duration_s + 120, 'the soak', node,
                             every=sample_memory)
            bar.close()
            sent = finish_camera(camera)
            load_latencies = probe.latencies_ms[idle_frames:]
            # Drain: every received frame is accounted for once the worker is idle.
            probe.spin_while(lambda: probe.count('frames_received') != probe.count(
                'frames_processed') + probe.count('frames_dropped') + probe.count(
                'frames_rejected'), 60, 'the node to finish the last frame', node)
            values = dict(probe.diagnostics)
            peak = node.peak_rss_mb()
        finally:
            probe.close()

    stamps = np.asarray(probe.stamps_ns[idle_outputs:], np.int64)
    arrivals = np.asarray(probe.arrivals_ns[idle_outputs:], np.int64)
    # Age of frame k when inference began ~ arrival of output k-1 minus stamp k.
    ages_ms = (arrivals[:-1] - stamps[1:]) * 1e-6 if len(stamps) > 1 else np.zeros(1)
    # Memory swings by tens of MiB within a frame (1080p buffers come and go): compare the
    # median of a window right after warm-up with the median of the last window.
    warmup_s, window_s = min(5.0, duration_s * 0.2), max(1.0, min(10.0, duration_s * 0.2))
    first = [rss for elapsed, rss in samples if warmup_s <= elapsed < warmup_s + window_s]
    last = [rss for elapsed, rss in samples if elapsed >= samples[-1][0] - window_s]
    return SoakResult(
        size=size, rate_hz=rate_hz, duration_s=duration_s, camera_sent=sent,
        received=int(values['frames_received']) - idle_frames,
        processed=int(values['frames_processed']) - idle_frames,
        dropped=int(values['frames_dropped']), rejected=int(values['frames_rejected']),
        outputs_seen=len(stamps),
        stamps_strictly_increasing=bool(np.all(np.diff(probe.stamps_ns) > 0)),
        idle_latency_ms_median=idle_latency,
        load_latency_ms_median=float(np.median(load_latencies)),
        load_latency_ms_p95=float(np.percentile(load_latencies, 95)),
        age_at_start_ms_median=float(np.median(ages_ms)),
        age_at_start_ms_p95=float(np.percentile(ages_ms, 95)),
        rss_mb_after_warmup=float(np.median(first or [samples[0][1]])),
        rss_mb_end=float(np.median(last)), rss_mb_peak=peak or float('nan'), rss_samples=samples,
        idle_latencies_ms=probe.latencies_ms[:idle_frames], load_latencies_ms=load_latencies,
        ages_at_start_ms=ages_ms.tolist())


def save_figure(result: SoakResult, path: Path = FIGURE) -> None:
    """Node memory over the run; latency idle vs under load; age of frames at inference."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, (memory, latency, age) = plt.subplots(1, 3, figsize=(15, 4))
    elapsed, rss = zip(*result.rss_samples)
    memory.plot(elapsed, rss)
    memory.axhline(result.rss_mb_after_warmup, color='k', linestyle=':',
                   label='median after warm-up')
    memory.axhline(result.rss_mb_after_warmup + 50, color='r', linestyle='--',
                   label='+ 50 MiB (limit)')
    memory.set(xlabel='seconds of load', ylabel='node resident memory (MiB)',
               title='memory')
    memory.legend()
    bins = np.linspace(0, max(result.load_latencies_ms + result.idle_latencies_ms) * 1.05, 60)
    latency.hist(result.load_latencies_ms, bins=bins, label='under load', alpha=0.7)
    for value in result.idle_latencies_ms:
        latency.axvline(value, color='k', linewidth=0.8)
    latency.axvline(2 * result.idle_latency_ms_median, color='r', linestyle='--',
                    label='2x idle median')
    latency.set(xlabel='stamp to publish (ms); black: idle frames', ylabel='frames',
                title='latency')
    latency.legend()
    age.hist(result.ages_at_start_ms, bins=60)
    age.axvline(1000 / result.rate_hz, color='r', linestyle='--', label='camera period')
    age.set(xlabel='age of the frame when inference began (ms)', ylabel='frames',
            title='newest frame only')
    age.legend()
    height, width = result.size
    figure.suptitle(f'soak: {width}x{height} at {result.rate_hz:g} Hz for '
                    f'{result.duration_s:g} s')
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def render_markdown(result: SoakResult, model: str, command: str) -> str:
    """The soak section of docs/reliability.md."""
    height, width = result.size
    lost = result.camera_sent - result.received
    rows = [
        ('camera', f'{width}x{height} rgb8 at {result.rate_hz:g} Hz for {result.duration_s:g} s '
                   f'(best effort, own process)'),
        ('model', model),
        ('frames sent / received by the node', f'{result.camera_sent} / {result.received} '
         f'({lost} lost in best-effort transport)'),
        ('processed / dropped (replaced by a newer frame) / rejected',
         f'{result.processed} / {result.dropped} / {result.rejected}'),
        ('received = processed + dropped + rejected', 'yes' if result.accounting_exact else 'NO'),
        ('processed stamps strictly increasing', 'yes' if result.stamps_strictly_increasing
         else 'NO'),
        ('age of a frame when its inference began (median / p95)',
         f'{result.age_at_start_ms_median:.1f} / {result.age_at_start_ms_p95:.1f} ms '
         f'(camera period {1000 / result.rate_hz:.1f} ms)'),
        ('latency idle (median)', f'{result.idle_latency_ms_median:.1f} ms'),
        ('latency under load (median / p95)',
         f'{result.load_latency_ms_median:.1f} / {result.load_latency_ms_p95:.1f} ms'),
        ('latency under load / idle (median)', f'{result.latency_ratio:.2f}x (limit 2x)'),
        ('node memory, median of the first 10 s after warm-up / of the last 10 s / peak',
         f'{result.rss_mb_after_warmup:.0f} / {result.rss_mb_end:.0f} / '
         f'{result.rss_mb_peak:.0f} MiB'),
        ('memory growth', f'{result.memory_growth_mb:+.1f} MiB (limit 50 MiB)'),
    ]
    lines = [BEGIN_MARK, '', f'Measured with `{command}` on '
             f'{time.strftime("%Y-%m-%d")} ({os.cpu_count()} CPU cores, CPU inference).', '',
             '| quantity | value |', '|---|---|']
    lines += [f'| {name} | {value} |' for name, value in rows]
    lines += ['', f'![soak]({FIGURE.relative_to(DOCS_PAGE.parent)})', '', END_MARK]
    return '\n'.join(lines)


def write_docs(markdown: str, page: Path = DOCS_PAGE) -> None:
    """Replace the soak section between its markers in `page`."""
    text = page.read_text()
    start, end = text.index(BEGIN_MARK), text.index(END_MARK) + len(END_MARK)
    page.write_text(text[:start] + markdown + text[end:])


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of load')
    parser.add_argument('--size', type=size_argument(minimum=8), default=(1080, 1920),
                        help='camera HxW')
    parser.add_argument('--rate', type=float, default=100.0, help='camera frames per second')
    parser.add_argument('--device', default='cpu', help='the node\'s device (cpu, cuda)')
    parser.add_argument('--no-docs', action='store_true',
                        help='print the results only; leave docs/reliability.md alone')
    args = parser.parse_args(argv)
    import torch

    from benchmarks.bench_models import load_network
    from jointdistill_core.checkpoint import save_checkpoint
    torch.set_num_threads(1)
    env = isolated_environment()
    env.setdefault('OMP_NUM_THREADS', '1')
    with tempfile.TemporaryDirectory() as scratch:
        model, source = load_network('student')
        checkpoint = save_checkpoint(Path(scratch) / 'student', model.eval(),
                                     {'input_size': [256, 512]})
        result = run_soak(checkpoint, args.size, args.rate, args.duration, env,
                          idle_frames=15, idle_rate_hz=2.0, device=args.device,
                          log_path=Path(scratch) / 'node.log')
    figures = {key: value for key, value in asdict(result).items()
               if not isinstance(value, list)}
    print(json.dumps({**figures, 'memory_growth_mb': round(result.memory_growth_mb, 1),
                      'latency_ratio': round(result.latency_ratio, 2)}, indent=2))
    command = 'python -m benchmarks.soak' + ''.join(
        f' {arg}' for arg in (argv if argv is not None else sys.argv[1:]) if arg != '--no-docs')
    markdown = render_markdown(result, f'student 256x512 ({source}), node defaults '
                               '(backend auto: onnxruntime on the CPU)', command)
    if not args.no_docs:
        write_docs(markdown)
        save_figure(result)
    print(markdown)
    ok = (result.accounting_exact and result.stamps_strictly_increasing
          and result.memory_growth_mb < 50 and result.latency_ratio <= 2.0)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
