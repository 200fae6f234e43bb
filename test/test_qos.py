"""QoS helpers (jointdistill_ros.qos), with real rclpy endpoints for the mismatch events."""
from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from std_msgs.msg import String

from jointdistill_ros.qos import (
    publisher_event_callbacks,
    publisher_qos,
    qos_from_parameters,
    subscription_event_callbacks,
)


@pytest.mark.parametrize('profile, reliability, durability', [
    ('SENSOR_DATA', ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
    ('DEFAULT', ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
    ('SYSTEM_DEFAULT', ReliabilityPolicy.SYSTEM_DEFAULT, DurabilityPolicy.SYSTEM_DEFAULT),
])
def test_profiles_are_keep_last_with_the_given_depth(profile, reliability, durability):
    qos = qos_from_parameters(profile, 3)
    assert qos.history == HistoryPolicy.KEEP_LAST and qos.depth == 3
    assert qos.reliability == reliability and qos.durability == durability


def test_reliability_override():
    assert qos_from_parameters('SENSOR_DATA', 1, 'reliable').reliability == \
        ReliabilityPolicy.RELIABLE
    assert qos_from_parameters('DEFAULT', 1, 'best_effort').reliability == \
        ReliabilityPolicy.BEST_EFFORT


def test_publisher_qos_is_reliable_volatile_keep_last():
    qos = publisher_qos(4)
    assert (qos.reliability, qos.durability, qos.history, qos.depth) == (
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, HistoryPolicy.KEEP_LAST, 4)


@pytest.mark.parametrize('args, word', [
    (('sensor_data', 1), 'profile'), (('BEST', 1), 'profile'),
    (('DEFAULT', 0), 'depth'), (('DEFAULT', 1.5), 'depth'), (('DEFAULT', True), 'depth'),
    (('DEFAULT', 1, 'RELIABLE'), 'reliability'),
])
def test_bad_parameters_name_the_argument(args, word):
    with pytest.raises(ValueError, match=f'^{word}'):
        qos_from_parameters(*args)


def spin_until(executor, condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)


@pytest.mark.ros
def test_real_mismatches_fire_events_that_say_what_to_change(ros_env):
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('qos_probe', context=context)
        logs: dict[str, list[str]] = {}

        def pair(topic: str, offered: QoSProfile, requested: QoSProfile) -> None:
            node.create_publisher(String, topic, offered, event_callbacks=publisher_event_callbacks(
                logs.setdefault(f'pub {topic}', []).append, topic))
            node.create_subscription(
                String, topic, lambda _: None, requested,
                event_callbacks=subscription_event_callbacks(
                    logs.setdefault(f'sub {topic}', []).append, topic, 'image_qos'))

        pair('/reliability', qos_from_parameters('SENSOR_DATA', 1),
             qos_from_parameters('DEFAULT', 1))
        pair('/durability', publisher_qos(1),
             QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        pair('/liveliness', publisher_qos(1),
             QoSProfile(depth=1, liveliness=LivelinessPolicy.MANUAL_BY_TOPIC))
        pair('/compatible', publisher_qos(1), qos_from_parameters('SENSOR_DATA', 1))

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spin_until(executor, lambda: sum(bool(v) for v in logs.values()) >= 6)
        spin_until(executor, lambda: False, timeout_s=0.5)  # a late event would show here
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

    sub_line = logs['sub /reliability'][0]
    assert 'RELIABILITY' in sub_line and '/reliability' in sub_line
    assert 'subscriber asks RELIABLE but the publisher offers BEST_EFFORT' in sub_line
    assert 'image_qos: SENSOR_DATA' in sub_line
    assert 'publisher offers BEST_EFFORT but a subscriber asks RELIABLE' in \
        logs['pub /reliability'][0]
    assert 'DURABILITY' in logs['sub /durability'][0]
    assert 'Volatile' in logs['pub /durability'][0]
    assert 'LIVELINESS' in logs['sub /liveliness'][0]
    assert logs['sub /compatible'] == [] and logs['pub /compatible'] == []
