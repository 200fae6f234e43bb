"""Many cameras: one perception node serving N cameras (the `cameras` parameter: one network,
the newest frame of every camera batched into one forward pass) against N single-camera nodes
(N networks in N processes), for N = 1, 2 and 4.

Every camera sends 640x480 rgb8 frames at CAMERA_RATE_HZ from this process over DDS (the
shipped Fast DDS profile), more than the CPU can process, so both set-ups run saturated and
drop what they cannot take. Measured over the same window for both: frames/s per camera
(outputs received), latency (arrival of a frame's depth image minus its header stamp, median
over all cameras), CPU time of the node processes per frame (robust to other load on a shared
machine, where N processes also take a larger share of the CPU than one) and resident memory
(peak RSS of the node processes, summed). Both run with the node's defaults (backend auto,
threads = the library default).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tqdm import tqdm

from benchmarks.bench_node import (
    CAMERA_SIZE,
    MODEL_INPUT,
    _camera_image,
    _isolated_environment,
    _student_checkpoint,
)
from jointdistill_ros.image_codec import numpy_to_imgmsg
from jointdistill_ros.node_process import NodeProcess, fastdds_profile_path, node_environment

CAMERA_RATE_HZ = 30.0
WARM_UP_RATE_HZ = 2.0
# Node processes start in parallel; on a loaded 2-core machine four took two minutes.
START_TIMEOUT_S = 300.0
CAMERA_COUNTS = (1, 2, 4)
SETUPS = ('one node', 'one node per camera')


class CameraRig:
    """Cameras /camN/image sending one frame each per tick; counts /camN/depth/image replies
    and their latency (arrival minus header stamp, one clock: this process's)."""

    def __init__(self, names: list[str]) -> None:
        self.node = Node('camera_rig')
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.cameras = {name: self.node.create_publisher(Image, f'/{name}/image', reliable)
                        for name in names}
        self.outputs = dict.fromkeys(names, 0)
        self.latencies: list[float] = []
        for name in names:
            self.node.create_subscription(Image, f'/{name}/depth/image',
                                          self._on_depth(name), reliable)
        self.message = numpy_to_imgmsg(_camera_image(), 'rgb8')

    def _on_depth(self, name: str):
        def on_message(msg: Image) -> None:
            now = self.node.get_clock().now().nanoseconds
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.outputs[name] += 1
            self.latencies.append((now - stamp) / 1e6)
        return on_message

    def send_for(self, seconds: float, rate_hz: float = CAMERA_RATE_HZ, until=None) -> None:
        """Send a frame on every camera each 1 / rate_hz s, for `seconds` or until until() is
        true."""
        period, deadline = 1.0 / rate_hz, time.monotonic() + seconds
        tick = time.monotonic()
        while time.monotonic() < deadline and not (until and until()):
            for camera in self.cameras.values():
                self.message.header.stamp = self.node.get_clock().now().to_msg()
                camera.publish(self.message)
            tick += period
            while time.monotonic() < tick:
                rclpy.spin_once(self.node, timeout_sec=max(0.0, tick - time.monotonic()))

    def connected(self) -> bool:
        return all(camera.get_subscription_count() > 0 for camera in self.cameras.values())

    def close(self) -> None:
        self.node.destroy_node()


def _start(setup: str, names: list[str], checkpoint: Path, env: dict[str, str],
           device: str) -> list[NodeProcess]:
    node_env = node_environment(env, fastdds_profile_path())
    common = {'model_path': str(checkpoint), 'autostart': True, 'device': device}
    if setup == 'one node':  # camera.camN.image defaults to camN/image, outputs under camN/
        return [NodeProcess({**common, 'cameras': names}, env=node_env)]
    return [NodeProcess(common, env=node_env, namespace=f'/{name}') for name in names]


def measure(setup: str, count: int, checkpoint: Path, env: dict[str, str], device: str,
            seconds: float) -> dict:
    """Frames/s per camera, latency and summed peak RSS of one set-up with `count` cameras."""
    names = [f'cam{index}' for index in range(count)]
    nodes = _start(setup, names, checkpoint, env, device)
    rig = CameraRig(names)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not rig.connected() and time.monotonic() < deadline:  # no load while they start
            rclpy.spin_once(rig.node, timeout_sec=0.1)
        # A slow warm-up (each node builds its network for the camera size on the first frame).
        rig.send_for(deadline - time.monotonic(), WARM_UP_RATE_HZ,
                     until=lambda: all(rig.outputs.values()))
        if not all(rig.outputs.values()) or any(node.exited() for node in nodes):
            raise RuntimeError(f'{setup} with {count} cameras never answered every camera: '
                               + ' | '.join(node.log_tail() for node in nodes))
        rig.outputs, rig.latencies = dict.fromkeys(names, 0), []
        cpu_before = sum(node.cpu_seconds() for node in nodes)
        started = time.monotonic()
        rig.send_for(seconds)
        elapsed = time.monotonic() - started
        cpu_s = sum(node.cpu_seconds() for node in nodes) - cpu_before
        rig.send_for(0.5)  # replies in flight still count as late, not lost
        per_camera = [rig.outputs[name] / elapsed for name in names]
        frames = sum(rig.outputs.values())
        latencies = np.asarray(rig.latencies)
        rss = [node.peak_rss_mb() for node in nodes]
    finally:
        rig.close()
        for node in nodes:
            node.stop()
    return {
        'fps_per_camera': round(float(np.mean(per_camera)), 2),
        'fps_per_camera_min': round(float(np.min(per_camera)), 2),
        'fps_total': round(float(np.sum(per_camera)), 2),
        'latency_ms_median': round(float(np.median(latencies)), 1) if latencies.size else None,
        'latency_ms_p95': round(float(np.percentile(latencies, 95)), 1) if latencies.size
        else None,
        'cpu_ms_per_frame': round(cpu_s * 1e3 / frames, 1) if frames else None,
        'processes': len(nodes),
        'peak_rss_mb_total': round(sum(value or 0.0 for value in rss), 0),
    }


def benchmark_cameras(device: str = 'cpu', counts: tuple[int, ...] = CAMERA_COUNTS,
                      seconds: float = 10.0) -> dict:
    """Per camera count: both set-ups, measured one after the other on the same machine."""
    results: dict = {'camera': f'{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} rgb8',
                     'camera_rate_hz': CAMERA_RATE_HZ,
                     'model_input': f'{MODEL_INPUT[0]}x{MODEL_INPUT[1]} (budget)',
                     'seconds': seconds, 'counts': {}}
    with _isolated_environment() as env, tempfile.TemporaryDirectory() as scratch:
        rclpy.init()
        try:
            checkpoint, results['weights'] = _student_checkpoint(Path(scratch))
            runs = [(count, setup) for count in counts for setup in SETUPS]
            for count, setup in tqdm(runs, desc='cameras', leave=False):
                results['counts'].setdefault(str(count), {})[setup] = measure(
                    setup, count, checkpoint, env, device, seconds)
        finally:
            rclpy.shutdown()
    return results


def render_cameras_markdown(cameras: dict) -> list[str]:
    """Markdown lines of the many-cameras section of docs/benchmarks.md."""
    lines = [
        '## Many cameras: one node against one node per camera', '',
        f"Each camera sends {cameras['camera']} at {cameras['camera_rate_hz']:g} Hz (more "
        'than the CPU can take: both set-ups run saturated and drop frames); model input '
        f"{cameras['model_input']}, the node's defaults otherwise; weights: "
        f"{cameras['weights']}. {cameras['seconds']:g} s per run, after every camera answered "
        'once. Latency: header stamp to the arrival of the depth image, median (p95) over all '
        'cameras. CPU per frame: CPU time of the node process(es) over the window divided by '
        'the frames answered (on a shared machine N processes also win a larger share of the '
        'CPU than one; this figure is not swayed by that). Memory: peak resident set of the '
        'node process(es), summed.', '',
        '| cameras | set-up | frames/s per camera (min) | frames/s total | latency ms | '
        'CPU ms per frame | processes | peak RSS MiB |',
        '|---|---|---|---|---|---|---|---|']
    for count, setups in cameras['counts'].items():
        for setup, row in setups.items():
            lines.append(f"| {count} | {setup} | {row['fps_per_camera']} "
                         f"({row['fps_per_camera_min']}) | {row['fps_total']} | "
                         f"{row['latency_ms_median']} ({row['latency_ms_p95']}) | "
                         f"{row['cpu_ms_per_frame']} | {row['processes']} | "
                         f"{row['peak_rss_mb_total']:.0f} |")
    return lines
