"""Live bag evaluation: start perception_node as its own process, replay a bag into it, collect
its outputs and report metrics, latency and throughput (jointdistill_core.bags.evaluation).

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
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tqdm import tqdm

from jointdistill_core.bags import codec
from jointdistill_core.bags.evaluation import FrameOutputs, check_report_dir, evaluate_outputs
from jointdistill_core.bags.layout import IMAGE_TYPE, BagError, CameraTopics, OutputTopics
from jointdistill_core.bags.reader import RawMessage, bag_topics, camera_topics_present
from jointdistill_core.bags.writer import BagWriter, check_output_dir
from jointdistill_core.classes import DEFAULT_NUM_CLASSES
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
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                        reliability=ReliabilityPolicy.RELIABLE)


def ensure_fastdds_profile() -> Path:
    """Use the shipped profile in this process unless the user chose one; returns its path."""
    if not os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(fastdds_profile_path())
    return Path(os.environ['FASTDDS_DEFAULT_PROFILES_FILE'])


def start_node(model: Path, device: str, topics: CameraTopics, outputs: OutputTopics,
               log_path: Path, fastdds_profile: Path) -> NodeProcess:
    """perception_node as a child process on sim time, configured and activated at start."""
    parameters = {'model_path': str(model), 'device': device, 'use_sim_time': True,
                  'autostart': True}
    remappings = {'image': topics.image, 'camera_info': topics.camera_info,
                  'depth/image': outputs.depth, 'segmentation/labels': outputs.labels}
    return NodeProcess(parameters, env=node_environment(fastdds_profile=fastdds_profile),
                       remappings=remappings, log_path=log_path)


class OutputCollector:
    """Raw subscriptions to the node's outputs; records arrival times per stamp."""

    def __init__(self, node: Node, outputs: OutputTopics) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[int, dict[str, tuple[bytes, float]]] = {}
        self.last_arrival = 0.0
        self.subscriptions = {
            kind: node.create_subscription(Image, topic, self._callback(kind), OUTPUT_QOS, raw=True)
            for kind, topic in (('depth', outputs.depth), ('labels', outputs.labels))}

    def _callback(self, kind: str):
        def on_message(raw: bytes) -> None:
            arrived = time.monotonic()
            stamp = codec.header_stamp_ns(raw)
            with self.lock:
                self.arrivals.setdefault(stamp, {})[kind] = (raw, arrived)
                self.last_arrival = arrived
        return on_message

    def connected(self) -> bool:
        return all(s.get_publisher_count() > 0 for s in self.subscriptions.values())

    def complete(self, stamps: list[int]) -> bool:
        with self.lock:
            kinds = set().union(*(set(a) for a in self.arrivals.values()))
            return bool(kinds) and all(set(self.arrivals.get(s, {})) >= kinds for s in stamps)


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


def run_live_eval(bag: str | Path, model: str | Path, out: str | Path, rate: float = 1.0,
                  topics: CameraTopics = CameraTopics(),
                  output_topics: OutputTopics = OutputTopics(), record: Path | None = None,
                  device: str = 'cpu', num_classes: int = DEFAULT_NUM_CLASSES, force: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    """Replay `bag` through a freshly started perception node and write the report into `out`."""
    bag, model, out = Path(bag), Path(model), check_report_dir(out, force)
    if not model.exists():
        raise BagError(f'model {model} does not exist')
    present = camera_topics_present(bag, topics)
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
    node_process = start_node(model, device, topics, output_topics, out / 'node.log', profile)
    published: dict[int, float] = {}
    try:
        play_topics = [t for t in (topics.image, topics.camera_info) if t in present]
        player = BagPlayer(node, bag, play_topics, rate, publish_clock=True)
        collector = OutputCollector(node, output_topics)
        _log(progress, f'starting perception node (log: {node_process.log_path})')
        _wait(_node_state_checker(node), NODE_START_TIMEOUT_S, 'the node to become active',
              node_process)
        _wait(lambda: player.subscriber_count(topics.image) > 0 and collector.connected(),
              CONNECT_TIMEOUT_S, f'the node to connect to {topics.image} and its outputs',
              node_process)

        bar = tqdm(total=bag_topics(bag)[topics.image][1], desc='replay', unit='frame',
                   disable=not progress)

        def on_published(message: RawMessage, published_at: float) -> None:
            if message.topic == topics.image:
                published[codec.header_stamp_ns(message.data)] = published_at
                bar.update()
        _log(progress, f'replaying {bag} at rate {rate:g}')
        stats = player.play(on_published)
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
    run_info = {'mode': 'live', 'model': str(model), 'rate': rate, 'device': device,
                'replay_wall_s': round(stats.wall_s, 3),
                'record': str(record) if record is not None else None}
    report = evaluate_outputs(bag, _frame_outputs(collector, published), out, topics,
                              output_topics, num_classes, run_info)
    return report


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
