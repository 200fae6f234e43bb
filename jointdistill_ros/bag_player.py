"""Replay a rosbag2 bag in rclpy without rosbag2_py: raw CDR bytes, original stamps and timing.

The bytes read by rosbags are published unchanged (`Publisher.publish(bytes)`), so headers
keep their recorded stamps; the type of each topic comes from the bag (Image, CompressedImage,
CameraInfo, ...). Message i is sent at wall time t0 + (log_i - log_0) / rate, or, in lock-step
replay, whenever the caller's `pace` lets it; /clock (rosgraph_msgs/Clock) carries the bag
time for nodes running with use_sim_time.
"""
from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from jointdistill_core.bags.layout import BagError
from jointdistill_core.bags.reader import RawMessage, bag_topics, iter_raw

# Reliable publishers also serve best-effort subscribers (the node's sensor-data QoS).
PLAYER_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)

# Called after each publish with (message, wall time.monotonic() taken just before publish).
PublishedCallback = Callable[[RawMessage, float], None]
# Lock-step replay: called before each message, returns when it may be published.
Pace = Callable[[RawMessage], None]


def message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/Image' -> the rclpy message class sensor_msgs.msg.Image."""
    package, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError) as error:
        raise BagError(f'message type {msgtype} is not installed for rclpy ({error})') from error


@dataclass
class PlayStats:
    """Messages published per topic, passes over the bag and wall time (s) of a play."""
    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0


class BagPlayer:
    """Publishes a bag's messages from `node`. Create it, then call `play()` (blocking)."""

    def __init__(self, node: Node, bag: str | Path, topics: Iterable[str] | None = None,
                 rate: float = 1.0, publish_clock: bool = True, loop: bool = False) -> None:
        if rate <= 0:
            raise BagError(f'--rate must be > 0, got {rate}')
        self.node, self.bag, self.rate, self.loop = node, Path(bag), rate, loop
        available = bag_topics(self.bag)
        self.topics = sorted(available) if topics is None else list(topics)
        missing = [t for t in self.topics if t not in available]
        if missing:
            raise BagError(f'bag {self.bag} has no topic {", ".join(missing)} '
                           f'(it has: {", ".join(sorted(available))})')
        self.publishers = {topic: node.create_publisher(message_class(available[topic][0]), topic,
                                                        PLAYER_QOS)
                           for topic in self.topics}
        self.clock_publisher = (node.create_publisher(Clock, '/clock', CLOCK_QOS)
                                if publish_clock else None)

    def subscriber_count(self, topic: str) -> int:
        return self.publishers[topic].get_subscription_count()

    def _publish_clock(self, log_time_ns: int) -> None:
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = divmod(log_time_ns, 10**9)
        self.clock_publisher.publish(clock)

    def _play_once(self, stats: PlayStats, on_published: PublishedCallback | None,
                   stop: threading.Event, pace: Pace | None) -> None:
        first_log_ns = last_clock_ns = None
        loop_start = time.monotonic()
        for message in iter_raw(self.bag, self.topics):
            if first_log_ns is None:
                first_log_ns = message.log_time_ns
            if pace is not None:
                pace(message)
            due = loop_start + (message.log_time_ns - first_log_ns) / 1e9 / self.rate
            if stop.wait(0.0 if pace else max(0.0, due - time.monotonic())):
                return
            if self.clock_publisher is not None and message.log_time_ns != last_clock_ns:
                self._publish_clock(message.log_time_ns)
                last_clock_ns = message.log_time_ns
            published_at = time.monotonic()
            self.publishers[message.topic].publish(message.data)
            stats.published[message.topic] = stats.published.get(message.topic, 0) + 1
            if on_published is not None:
                on_published(message, published_at)

    def play(self, on_published: PublishedCallback | None = None,
             stop: threading.Event | None = None, pace: Pace | None = None) -> PlayStats:
        """Publish every message at its scaled bag time, or, with `pace`, as soon as
        pace(message) returns (lock-step); repeat while `loop` until `stop`."""
        stop = stop or threading.Event()
        stats = PlayStats()
        started = time.monotonic()
        while not stop.is_set():
            self._play_once(stats, on_published, stop, pace)
            stats.loops += 1
            if not self.loop:
                break
        stats.wall_s = time.monotonic() - started
        return stats


def run_player(bag: str | Path, topics: list[str] | None, rate: float, publish_clock: bool,
               loop: bool, delay_s: float) -> PlayStats:
    """The `jointdistill bag play` command: own rclpy context and node, Ctrl-C stops it."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    rclpy.init()
    node = rclpy.create_node('jointdistill_bag_player')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    stop = threading.Event()
    try:
        player = BagPlayer(node, bag, topics, rate, publish_clock, loop)
        spinner.start()
        if stop.wait(delay_s):
            return PlayStats()
        stats = player.play(stop=stop)
        # Give reliable transports a moment to deliver the last messages before tear-down.
        time.sleep(0.5)
        return stats
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        executor.shutdown()
        # A spin thread still inside rclpy's C++ wait when the interpreter exits aborts the
        # process ("terminate called without an active exception"): let it return first.
        if spinner.is_alive():
            spinner.join(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
