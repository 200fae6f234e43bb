"""Live bag evaluation: start perception_node as its own process, replay a bag into it, collect
its outputs and report metrics, latency and throughput (jointdistill_core.bags.evaluation).

Replay is lock-step by default: each image is published once the node's outputs for the
previous one arrived (or the frame timeout passed), so every frame is evaluated however slow
the machine; `realtime` replays at the bag's timing (scaled by `rate`) and measures latency
and drops under that load. A bag whose image topic carries CompressedImage starts the node
with `transport: compressed`.

Latency is measured in this process on one monotonic clock: the arrival time of a frame's
last output minus the time taken just before its image was handed to `publish()`. Ground
truth is read from the bag itself rather than from the replayed topics, so a frame lost by the
transport is always counted as a dropped output, never as missing ground truth.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import rclpy
import yaml
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tqdm import tqdm

from jointdistill_core.bags import codec
from jointdistill_core.bags.evaluation import FrameOutputs, check_report_dir, evaluate_outputs
from jointdistill_core.bags.layout import (
    DEFAULT_FRAME_TIMEOUT_S,
    DEFAULT_SLOP_NS,
    IMAGE_TYPE,
    BagError,
    CameraTopics,
    OutputTopics,
)
from jointdistill_core.bags.reader import CameraLayout, RawMessage, bag_topics, camera_layout
from jointdistill_core.bags.writer import BagWriter, check_output_dir
from jointdistill_ros.bag_player import BagPlayer
from jointdistill_ros.node_process import (
    NODE_NAME,
    NodeProcess,
    fastdds_profile_path,
    node_environment,
)

# The shared 2-core test machines load torch slowly; a start-up beyond this is a failure.
NODE_START_TIMEOUT_S = 180.0
CONNECT_TIMEOUT_S = 30.0
# After the last image: wait for outstanding outputs this long past the last arrival.
SETTLE_S = 3.0
MAX_DRAIN_S = 60.0
# Lock-step: the first frame may wait this long at least (the node builds its network for a
# camera size it has not seen when that camera's first CameraInfo or image arrives).
FIRST_FRAME_TIMEOUT_S = 60.0
OUTPUT_KINDS = frozenset({'depth', 'labels'})
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                        reliability=ReliabilityPolicy.RELIABLE)


def ensure_fastdds_profile() -> Path:
    """Use the shipped profile in this process unless the user chose one; returns its path."""
    if not os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(fastdds_profile_path())
    return Path(os.environ['FASTDDS_DEFAULT_PROFILES_FILE'])


def start_node(model: Path, device: str, layout: CameraLayout, outputs: OutputTopics,
               log_path: Path, fastdds_profile: Path, params_file: Path | None) -> NodeProcess:
    """perception_node as a child process on sim time, configured and activated at start, its
    input topics remapped to the bag's (with compressed transport for CompressedImage)."""
    compressed = layout.compressed('image')
    parameters = {'model_path': str(model), 'device': device, 'use_sim_time': True,
                  'autostart': True, 'transport': 'compressed' if compressed else 'raw'}
    image = layout.topic('image')
    remappings = {'image/compressed' if compressed else 'image': image,
                  'depth/image': outputs.depth, 'segmentation/labels': outputs.labels}
    if layout.topic('camera_info'):
        remappings['camera_info'] = layout.topic('camera_info')
    return NodeProcess(parameters, env=node_environment(fastdds_profile=fastdds_profile),
                       remappings=remappings, log_path=log_path, params_file=params_file)


def check_single_camera_params(path: Path) -> None:
    """A node parameter file for bag eval: readable YAML without a `cameras` list (the command
    replays one camera); BagError otherwise."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise BagError(f'--params-file {path}: cannot read it ({error})') from None
    sections = document.values() if isinstance(document, dict) else []
    if any(isinstance(section, dict) and 'cameras' in section.get('ros__parameters', {})
           for section in sections):
        raise BagError(f'--params-file {path} sets cameras: bag eval replays one camera into a '
                       'single-camera node; leave cameras out')


class OutputCollector:
    """Raw subscriptions to the node's outputs; records arrival times per stamp."""

    def __init__(self, node: Node, outputs: OutputTopics) -> None:
        self.arrived = threading.Condition()
        self.arrivals: dict[int, dict[str, tuple[bytes, float]]] = {}
        self.last_arrival = 0.0
        self.subscriptions = {
            kind: node.create_subscription(Image, topic, self._callback(kind), OUTPUT_QOS, raw=True)
            for kind, topic in (('depth', outputs.depth), ('labels', outputs.labels))}

    def _callback(self, kind: str):
        def on_message(raw: bytes) -> None:
            arrived = time.monotonic()
            stamp = codec.header_stamp_ns(raw)
            with self.arrived:
                self.arrivals.setdefault(stamp, {})[kind] = (raw, arrived)
                self.last_arrival = arrived
                self.arrived.notify_all()
        return on_message

    def connected(self) -> bool:
        return all(s.get_publisher_count() > 0 for s in self.subscriptions.values())

    def answered(self, stamp: int) -> bool:
        """Whether every output of the frame `stamp` arrived (call with `arrived` held)."""
        return set(self.arrivals.get(stamp, ())) >= OUTPUT_KINDS

    def wait_answered(self, stamp: int, timeout_s: float) -> bool:
        """Wait until every output of frame `stamp` arrived; False after timeout_s."""
        with self.arrived:
            return self.arrived.wait_for(lambda: self.answered(stamp), timeout_s)

    def complete(self, stamps: list[int]) -> bool:
        with self.arrived:
            return all(self.answered(stamp) for stamp in stamps)


class LockStep:
    """The `pace` of lock-step replay: before each image, wait until the previous image's
    outputs arrived or the frame timeout passed (counted in `timed_out`)."""

    def __init__(self, collector: OutputCollector, image_topic: str, timeout_s: float) -> None:
        self.collector, self.image_topic, self.timeout_s = collector, image_topic, timeout_s
        self.previous: int | None = None
        self.waited = 0  # frames whose outputs were waited for
        self.timed_out = 0

    def __call__(self, message: RawMessage) -> None:
        if message.topic != self.image_topic:
            return
        self.finish()
        self.previous = codec.header_stamp_ns(message.data)

    def finish(self) -> None:
        """Wait for the outputs of the last image published (after the last one: once)."""
        if self.previous is None:
            return
        timeout_s = self.timeout_s if self.waited else max(self.timeout_s, FIRST_FRAME_TIMEOUT_S)
        self.waited += 1
        if not self.collector.wait_answered(self.previous, timeout_s):
            self.timed_out += 1
        self.previous = None


def _wait(predicate, timeout_s: float, what: str, node_process: NodeProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if node_process.exited():
            raise BagError(f'perception node exited (code {node_process.process.returncode}) '
                           f'while waiting for {what}; its log ({node_process.log_path}): '
                           f'{node_process.log_tail()}')
        if time.monotonic() > deadline:
            raise BagError(f'timed out after {timeout_s:.0f} s waiting for {what}; node log '
                           f'({node_process.log_path}): {node_process.log_tail()}')
        time.sleep(0.1)


def _node_state_checker(node: Node):
    client = node.create_client(GetState, f'/{NODE_NAME}/get_state')
    pending: deque = deque(maxlen=1)

    def is_active() -> bool:
        if not client.service_is_ready():
            return False
        if pending and pending[0].done():
            result = pending.popleft().result()
            if result is not None and result.current_state.id == State.PRIMARY_STATE_ACTIVE:
                return True
        if not pending:
            pending.append(client.call_async(GetState.Request()))
        return False
    return is_active


def _frame_outputs(collector: OutputCollector, published: dict[int, float]
                   ) -> dict[int, FrameOutputs]:
    outputs = {}
    for stamp, kinds in collector.arrivals.items():
        frame = FrameOutputs(stamp, depth_raw=kinds.get('depth', (None,))[0],
                             labels_raw=kinds.get('labels', (None,))[0])
        frame.done_s = max(arrived for _, arrived in kinds.values())
        if stamp in published:
            frame.latency_ms = (frame.done_s - published[stamp]) * 1e3
        outputs[stamp] = frame
    return outputs


def _record(path: Path, collector: OutputCollector, published: dict[int, float],
            outputs: OutputTopics) -> None:
    """Outputs into an mcap bag; log time = stamp + measured latency (the input's clock)."""
    with BagWriter(path, 'mcap', force=True) as writer:
        messages = []
        for stamp, kinds in collector.arrivals.items():
            for kind, (raw, arrived) in kinds.items():
                delay = round((arrived - published[stamp]) * 1e9) if stamp in published else 0
                topic = outputs.depth if kind == 'depth' else outputs.labels
                messages.append((stamp + max(delay, 0), topic, raw))
        for log_time, topic, raw in sorted(messages):
            writer.write_raw(topic, IMAGE_TYPE, log_time, raw)


def run_live_eval(bag: str | Path, model: str | Path, out: str | Path, num_classes: int,
                  realtime: bool = False, rate: float = 1.0,
                  topics: CameraTopics = CameraTopics(),
                  output_topics: OutputTopics = OutputTopics(), record: Path | None = None,
                  device: str = 'auto', params_file: Path | None = None,
                  frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
                  slop_ns: int = DEFAULT_SLOP_NS,
                  force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Replay `bag` through a freshly started perception node and write the report into `out`.

    num_classes: the model's class count. realtime: replay at the bag's timing times `rate`
    instead of lock-step (each image after the previous one's outputs, or frame_timeout_s).
    params_file: node parameters under the command's own (model, device, topics, transport).
    slop_ns: ground-truth matching tolerance (evaluation)."""
    bag, model, out = Path(bag), Path(model), check_report_dir(out, force)
    if not model.exists() and not model.with_name(model.name + '.safetensors').exists():
        raise BagError(f'model {model} does not exist')
    if params_file is not None:
        check_single_camera_params(Path(params_file))
    layout = camera_layout(bag, topics)
    if record is not None:
        check_output_dir(Path(record), force)
    out.mkdir(parents=True, exist_ok=True)
    profile = ensure_fastdds_profile()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('jointdistill_bag_eval', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    node_process = start_node(model, device, layout, output_topics, out / 'node.log', profile,
                              params_file)
    image_topic = layout.topic('image')
    published: dict[int, float] = {}
    try:
        play_topics = [layout.topic(role) for role in ('image', 'camera_info')
                       if layout.topic(role)]
        player = BagPlayer(node, bag, play_topics, rate, publish_clock=True)
        collector = OutputCollector(node, output_topics)
        lock_step = None if realtime else LockStep(collector, image_topic, frame_timeout_s)
        _log(progress, f'starting perception node (log: {node_process.log_path})')
        _wait(_node_state_checker(node), NODE_START_TIMEOUT_S, 'the node to become active',
              node_process)
        _wait(lambda: player.subscriber_count(image_topic) > 0 and collector.connected(),
              CONNECT_TIMEOUT_S, f'the node to connect to {image_topic} and its outputs',
              node_process)

        bar = tqdm(total=bag_topics(bag)[image_topic][1], desc='replay', unit='frame',
                   disable=not progress)

        def on_published(message: RawMessage, published_at: float) -> None:
            if message.topic == image_topic:
                published[codec.header_stamp_ns(message.data)] = published_at
                bar.update()
        _log(progress, f'replaying {bag} ' + (f'at rate {rate:g}' if realtime else 'in lock-step'))
        stats = player.play(on_published, pace=lock_step)
        if lock_step is not None:
            lock_step.finish()
        bar.close()
        _drain(collector, list(published), node_process)
    finally:
        node_process.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=5)
    if record is not None:
        _record(Path(record), collector, published, output_topics)
    run_info = {'mode': 'live', 'model': str(model), 'device': device,
                'replay': 'realtime' if realtime else 'lock-step',
                'rate': rate if realtime else None,
                'frame_timeout_s': None if realtime else frame_timeout_s,
                'frames_timed_out': None if realtime else lock_step.timed_out,
                'replay_wall_s': round(stats.wall_s, 3),
                'params_file': str(params_file) if params_file is not None else None,
                'record': str(record) if record is not None else None}
    return evaluate_outputs(bag, _frame_outputs(collector, published), out, num_classes, topics,
                            output_topics, run_info, slop_ns)


def _drain(collector: OutputCollector, stamps: list[int], node_process: NodeProcess) -> None:
    """Wait for outputs still in flight: until every frame is answered, or none came for
    SETTLE_S seconds, or MAX_DRAIN_S passed."""
    start = time.monotonic()
    while not collector.complete(stamps) and not node_process.exited():
        now = time.monotonic()
        if now - max(start, collector.last_arrival) > SETTLE_S or now - start > MAX_DRAIN_S:
            return
        time.sleep(0.05)


def _log(enabled: bool, text: str) -> None:
    if enabled:
        print(text, flush=True)
