"""The perception node as users run it: its own process, 640x480 rgb8 camera images over DDS.

- Overhead: camera frames sent one at a time (the next only after the previous frame's
  outputs arrived, so no queueing); per frame, header-to-publish latency (the node's
  `~/latency_ms`) minus the Predictor's time on the same image, measured in this process
  right after, alternating, with the same thread count. Three output sets: depth and labels
  only; plus every visual output; plus the point cloud.
- Transport and throughput: a 30 Hz camera in another process (test/camera_publisher.py)
  into the node, with and without the shipped Fast DDS profile: frames lost in transport,
  latency, and frames per second processed end to end.
- Memory: the node's peak resident set size.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Float32
from tqdm import tqdm

from benchmarks.bench_models import deployed_backend, load_network
from jointdistill_core.checkpoint import save_checkpoint
from jointdistill_core.inference import Predictor
from jointdistill_ros.diagnostics import diagnostic_values
from jointdistill_ros.image_codec import numpy_to_imgmsg
from jointdistill_ros.node_process import (
    NODE_NAME,
    NodeProcess,
    fastdds_profile_path,
    node_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMERA_SIZE = (480, 640)
MODEL_INPUT = (256, 512)
OUTPUT_SETS = {
    'depth+labels': [('depth/image', Image), ('segmentation/labels', Image)],
    '+visual': [('depth/image', Image), ('segmentation/labels', Image), ('depth/color', Image),
                ('segmentation/color', Image), ('segmentation/overlay', Image)],
    '+points': [('depth/image', Image), ('segmentation/labels', Image), ('depth/color', Image),
                ('segmentation/color', Image), ('segmentation/overlay', Image),
                ('points', PointCloud2)],
}
START_TIMEOUT_S = 180.0


class Probe:
    """This process's side: subscriptions to the node's outputs, latency and diagnostics."""

    def __init__(self, outputs: list[tuple[str, type]]):
        self.node = Node('benchmark_probe')
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.camera = self.node.create_publisher(Image, 'image', reliable)
        self.arrivals: dict[str, int] = {topic: 0 for topic, _ in outputs}
        self.latencies: list[float] = []
        self.diagnostics: dict[str, str] | None = None
        for topic, msg_type in outputs:
            self.node.create_subscription(msg_type, topic, self._counter(topic), reliable)
        self.node.create_subscription(Float32, f'/{NODE_NAME}/latency_ms',
                                      lambda msg: self.latencies.append(msg.data), reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _counter(self, topic: str):
        def on_message(_msg) -> None:
            self.arrivals[topic] += 1
        return on_message

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg)
        if values is not None:
            self.diagnostics = values

    def spin_until(self, predicate, timeout_s: float, what: str, node: NodeProcess) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if node.exited():
                raise RuntimeError(f'perception_node exited while waiting for {what}: '
                                   f'{node.log_tail()}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'timed out after {timeout_s:.0f} s waiting for {what}')
            rclpy.spin_once(self.node, timeout_sec=0.02)

    def close(self) -> None:
        self.node.destroy_node()



@contextmanager
def _isolated_environment() -> Iterator[dict[str, str]]:
    """A random ROS domain on localhost for this process and the children it starts (yields
    the children's base environment); os.environ is restored afterwards. This process (the
    probe, which sends the camera frames of the overhead runs) uses the shipped Fast DDS
    profile: with Fast DDS defaults most 640x480 frames are lost on the way."""
    changes = {'ROS_DOMAIN_ID': str(random.randint(1, 232)),
               'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    saved = {name: os.environ.get(name) for name in [*changes, 'FASTDDS_DEFAULT_PROFILES_FILE']}
    os.environ.update(changes)
    env = dict(os.environ)
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(fastdds_profile_path())
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _student_checkpoint(scratch: Path) -> tuple[Path, str]:
    model, source = load_network('student')
    path = save_checkpoint(scratch / 'student', model.eval(), {'input_size': list(MODEL_INPUT)})
    return path, source


def _camera_image() -> np.ndarray:
    from jointdistill_core.data.synthetic import render_scene
    return render_scene(7, *CAMERA_SIZE).image


def measure_overhead(checkpoint: Path, frames: int, env: dict[str, str], device: str) -> dict:
    """Per output set: median latency through the node, the Predictor alone, and the node's
    overhead (ms), over `frames` frames of one 480x640 image."""
    image = _camera_image()
    # The network as the node loads it (backend auto), for the Predictor-only reference time.
    predictor = Predictor.from_path(checkpoint, device=device)
    message = numpy_to_imgmsg(image, 'rgb8')
    results = {}
    for name, outputs in OUTPUT_SETS.items():
        # Shipped defaults otherwise (backend auto, point cloud stride 2).
        parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': device}
        with NodeProcess(parameters, env=node_environment(env, fastdds_profile_path())) as node:
            probe = Probe(outputs)
            try:
                probe.spin_until(lambda: probe.camera.get_subscription_count() > 0
                                 and all(c > 0 for c in _publisher_counts(probe, outputs)),
                                 START_TIMEOUT_S, 'the node to start and match', node)
                latencies, predictor_ms, resent = [], [], 0
                for index in tqdm(range(frames + 2), desc=f'node overhead {name}', leave=False):
                    resent += _send_and_wait(probe, message, node, index)
                    predictor.predict(image)
                    if index >= 2:  # the first frames warm caches and DDS matching
                        latencies.append(probe.latencies[-1])
                        predictor_ms.append(predictor.timings['total_ms'])
            finally:
                probe.close()
            overhead = np.asarray(latencies) - np.asarray(predictor_ms)
            results[name] = {
                'latency_ms_median': round(float(np.median(latencies)), 2),
                'predictor_ms_median': round(float(np.median(predictor_ms)), 2),
                'overhead_ms_median': round(float(np.median(overhead)), 2),
                'overhead_fraction': round(float(np.median(overhead / np.asarray(latencies))), 3),
                'frames': len(latencies),
                'frames_resent': resent,
                'node_peak_rss_mb': node.peak_rss_mb(),
            }
    return results


def _send_and_wait(probe: Probe, message, node: NodeProcess, index: int,
                   attempts: int = 3, wait_s: float = 20.0) -> int:
    """Publish one camera frame (stamped now) and spin until its latency and every output
    arrived. A frame lost on the way is sent again (new stamp), up to `attempts` times;
    returns how many times it was resent."""
    for attempt in range(attempts):
        before_latencies = len(probe.latencies)
        before = dict(probe.arrivals)
        message.header.stamp = probe.node.get_clock().now().to_msg()
        probe.camera.publish(message)
        try:
            probe.spin_until(lambda: len(probe.latencies) > before_latencies
                             and all(probe.arrivals[t] > before[t] for t in before),
                             wait_s, f'outputs of frame {index}', node)
            return attempt
        except TimeoutError:
            if attempt == attempts - 1:
                raise
    return attempts


def _publisher_counts(probe: Probe, outputs: list[tuple[str, type]]) -> list[int]:
    return [probe.node.count_publishers(topic) for topic, _ in outputs]


def measure_transport(checkpoint: Path, env: dict[str, str], frames: int, rate_hz: float,
                      device: str) -> dict:
    """Per Fast DDS profile: frames a camera process sent at `rate_hz` and the node received,
    processed and answered (latency ms), across processes."""
    results = {}
    for label, profile in (('shipped Fast DDS profile', fastdds_profile_path()),
                           ('Fast DDS defaults', None)):
        node_env = node_environment(env, profile)
        parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': device,
                      'input_height': MODEL_INPUT[0], 'input_width': MODEL_INPUT[1],
                      'diagnostics_period': 0.5}
        with NodeProcess(parameters, env=node_env) as node:
            probe = Probe([('depth/image', Image)])
            try:
                probe.spin_until(lambda: probe.node.count_publishers('depth/image') > 0,
                                 START_TIMEOUT_S, 'the node to start', node)
                camera = subprocess.run(
                    [sys.executable, str(REPO_ROOT / 'test' / 'camera_publisher.py'),
                     '--frames', str(frames), '--rate', str(rate_hz),
                     '--width', str(CAMERA_SIZE[1]), '--height', str(CAMERA_SIZE[0])],
                    env=node_env, capture_output=True, text=True, timeout=300)
                if camera.returncode != 0:
                    raise RuntimeError(f'camera publisher failed: {camera.stdout} {camera.stderr}')
                started = time.monotonic()
                probe.spin_until(lambda: probe.diagnostics is not None and
                                 time.monotonic() - started > 2.0, 30.0, 'diagnostics', node)
                received = int(probe.diagnostics['frames_received'])
                processed = int(probe.diagnostics['frames_processed'])
                latencies = probe.latencies
            finally:
                probe.close()
            results[label] = {
                'sent': frames,
                'received': received,
                'lost_fraction': round(1.0 - received / frames, 3),
                'processed': processed,
                'processed_fps': round(processed / (frames / rate_hz), 2),
                'latency_ms_median': round(float(np.median(latencies)), 1) if latencies else None,
                'latency_ms_p95': round(float(np.percentile(latencies, 95)), 1)
                if latencies else None,
                'node_peak_rss_mb': node.peak_rss_mb(),
            }
    return results


def benchmark_node(device: str = 'cpu', overhead_frames: int = 30, transport_frames: int = 150,
                   rate_hz: float = 30.0) -> dict:
    """The node benchmark: overhead per output set and transport per Fast DDS profile."""
    with _isolated_environment() as env, tempfile.TemporaryDirectory() as scratch:
        rclpy.init()
        try:
            checkpoint, source = _student_checkpoint(Path(scratch))
            overhead = measure_overhead(checkpoint, overhead_frames, env, device)
            transport = measure_transport(checkpoint, env, transport_frames, rate_hz, device)
        finally:
            rclpy.shutdown()
    return {
        'camera': f'{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} rgb8',
        'model_input': f'{MODEL_INPUT[0]}x{MODEL_INPUT[1]}',
        'backend': deployed_backend(device),
        'weights': source,
        'overhead': overhead,
        'overhead_ms': overhead['depth+labels']['overhead_ms_median'],
        'transport': transport,
    }


def render_node_markdown(node: dict) -> list[str]:
    """Markdown lines of the node section of docs/benchmarks.md."""
    lines = [
        '## The perception node',
        '',
        f"Camera {node['camera']}, model input {node['model_input']}, backend "
        f"{node['backend']} (the node's `backend: auto`), point cloud stride 2 (the shipped "
        f"default), weights: {node['weights']}.",
        '',
        '### Overhead (frames one at a time, medians)', '',
        '| outputs | header-to-publish ms | Predictor ms | overhead ms | overhead share |',
        '|---|---|---|---|---|',
    ]
    for name, row in node['overhead'].items():
        lines.append(f"| {name} | {row['latency_ms_median']} | {row['predictor_ms_median']} | "
                     f"{row['overhead_ms_median']} | {row['overhead_fraction']:.0%} |")
    lines += ['', f"### Transport: {next(iter(node['transport'].values()))['sent']} frames at "
              '30 Hz from a camera process', '',
              '| Fast DDS | received | lost | processed FPS | latency ms p50 (p95) | '
              'node peak RSS MiB |',
              '|---|---|---|---|---|---|']
    for label, row in node['transport'].items():
        lines.append(f"| {label} | {row['received']}/{row['sent']} | {row['lost_fraction']:.0%} | "
                     f"{row['processed_fps']} | {row['latency_ms_median']} "
                     f"({row['latency_ms_p95']}) | "
                     f"{row['node_peak_rss_mb'] or float('nan'):.0f} |")
    return lines
