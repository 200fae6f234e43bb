"""`jointdistill bag play` in its own process: the test process subscribes over DDS and checks
that every message arrives byte-identical, in order, with its recorded stamp, no faster than
the recorded timing (scaled by --rate), and that /clock carries the bag time; raw images and
CompressedImage (the type comes from the bag)."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from conftest import REPO_ROOT
from jointdistill_core.bags.codec import header_stamp_ns
from jointdistill_core.bags.reader import iter_raw
from jointdistill_core.cli import main
from jointdistill_ros import cli as ros_cli
from node_helpers import FASTDDS_PROFILE, TestNode

pytestmark = pytest.mark.ros

FRAMES, RATE_HZ, PLAY_RATE = 8, 10.0, 2.0


@pytest.mark.parametrize('compression', [None, 'jpeg'])
def test_play_preserves_bytes_stamps_order_and_timing(tmp_path, ros_env, compression):
    bag = tmp_path / 'bag'
    assert main(['bag', 'make', '--out', str(bag), '--frames', str(FRAMES), '--size', '48x64',
                 '--rate', str(RATE_HZ), '--seed', '7']
                + (['--compressed', compression] if compression else [])) == 0
    image_topic, image_type = ('/camera/image_raw/compressed', CompressedImage) if compression \
        else ('/camera/image_raw', Image)
    recorded = [m for m in iter_raw(bag, [image_topic, '/camera/camera_info'])]

    received: dict[str, list[tuple[bytes, float]]] = {image_topic: [], '/camera/camera_info': []}
    clock: list[int] = []
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    env = dict(ros_env, FASTDDS_DEFAULT_PROFILES_FILE=str(FASTDDS_PROFILE))
    with TestNode('play_probe') as probe:
        for topic, cls in ((image_topic, image_type), ('/camera/camera_info', CameraInfo)):
            probe.node.create_subscription(
                cls, topic, lambda raw, t=topic: received[t].append((raw, time.monotonic())),
                qos, raw=True)
        probe.node.create_subscription(
            Clock, '/clock', lambda m: clock.append(m.clock.sec * 10**9 + m.clock.nanosec), qos)
        player = subprocess.Popen(
            [sys.executable, '-m', 'jointdistill_ros', 'bag', 'play', str(bag), '--clock',
             '--rate', str(PLAY_RATE), '--delay', '3', '--topics', image_topic,
             '/camera/camera_info'],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            probe.spin_until(lambda: player.poll() is not None, 90, 'the player to finish')
            probe.spin_until(lambda: len(received[image_topic]) == FRAMES, 10, 'all images')
        finally:
            if player.poll() is None:
                player.kill()
        output = player.stdout.read()
    assert player.returncode == 0, output
    assert f'published {2 * FRAMES} messages' in output

    for topic, messages in received.items():
        expected = [m.data for m in recorded if m.topic == topic]
        assert len(messages) == len(expected)
        for (raw, _), want in zip(messages, expected):
            # Identical bytes in the same order; DDS may zero-pad the payload to 4 bytes.
            assert raw[:len(want)] == want
            assert raw[len(want):] == bytes(len(raw) - len(want)) and len(raw) - len(want) < 4
    stamps = [header_stamp_ns(raw) for raw, _ in received[image_topic]]
    assert stamps == [m.log_time_ns for m in recorded if m.topic == image_topic]
    # Relative timing: frames are scheduled (stamp - first) / rate apart. A frame delivered
    # late (a loaded machine) shortens the gap after it, so the median gap is what must not be
    # shorter than the scheduled one (a player ignoring --rate or the stamps fails this).
    arrival_gaps = np.diff([t for _, t in received[image_topic]])
    scheduled_gap = 1.0 / RATE_HZ / PLAY_RATE
    assert np.median(arrival_gaps) >= 0.8 * scheduled_gap
    assert clock == sorted(clock) and set(stamps) <= set(clock)


def test_play_missing_topic_is_a_clear_error(tmp_path, capsys):
    bag = tmp_path / 'bag'
    assert main(['bag', 'make', '--out', str(bag), '--frames', '1', '--size', '16x16']) == 0
    capsys.readouterr()
    assert ros_cli.main(['bag', 'play', str(bag), '--topics', '/front/image']) == 2
    error = capsys.readouterr().err
    assert 'no topic /front/image' in error and '/camera/image_raw' in error
