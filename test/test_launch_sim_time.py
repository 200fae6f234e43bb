"""The shipped launch file under launch_testing with use_sim_time:=true while the project's own
player replays a bag with --clock (`jointdistill bag play BAG --clock`): the node's clock is
the bag's. Own ROS domain (conftest)."""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pytest

from launch_helpers import LAUNCH_STACK_MISSING, SKIP_REASON

if LAUNCH_STACK_MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from sensor_msgs.msg import Image
from std_msgs.msg import Float32

from conftest import REPO_ROOT
from jointdistill_core.bags.codec import header_stamp_ns
from jointdistill_core.bags.reader import iter_raw
from jointdistill_core.cli import main as core_main
from jointdistill_ros.perception_node import NODE_NAME
from launch_helpers import launch_description_under_test
from node_helpers import LifecycleClient, TestNode, get_parameters, save_tiny_student

FRAMES, RATE_HZ = 20, 10.0
IMAGE_TOPIC = '/camera/image_raw'  # the bag's topics are the launch file's default remappings


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    scratch = tempfile.TemporaryDirectory(prefix='launch_test_')  # removed with the test run
    checkpoint = save_tiny_student(Path(scratch.name) / 'student')
    bag = Path(scratch.name) / 'bag'
    assert core_main(['bag', 'make', '--out', str(bag), '--frames', str(FRAMES),
                      '--size', '48x64', '--rate', str(RATE_HZ), '--seed', '3']) == 0
    arguments = {'model_path': str(checkpoint), 'device': 'cpu', 'use_sim_time': 'true'}
    return launch_description_under_test(arguments), {'scratch': scratch, 'bag': bag}


class TestSimTime(unittest.TestCase):

    def test_node_runs_on_the_bag_clock(self, bag):
        bag_stamps = {header_stamp_ns(m.data) for m in iter_raw(bag, [IMAGE_TOPIC])}
        node_name = f'/{NODE_NAME}'
        depth_stamps, latencies_ms = [], []
        with TestNode('sim_time_probe') as probe:
            LifecycleClient(probe, node_name).wait_for_state('active')
            self.assertEqual(get_parameters(probe, node_name, ['use_sim_time']),
                             {'use_sim_time': True})
            probe.node.create_subscription(
                Image, 'depth/image', lambda msg: depth_stamps.append(
                    msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec), 10)
            probe.node.create_subscription(Float32, f'{node_name}/latency_ms',
                                           lambda msg: latencies_ms.append(msg.data), 10)
            player = subprocess.Popen(
                [sys.executable, '-m', 'jointdistill_ros', 'bag', 'play', str(bag), '--clock',
                 '--delay', '2'], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            try:
                probe.spin_until(lambda: player.poll() is not None, 60, 'the player to finish')
                probe.spin_for(1.0)  # the last outputs
            finally:
                if player.poll() is None:
                    player.kill()
            output = player.communicate()[0]
        self.assertEqual(player.returncode, 0, output)
        self.assertGreaterEqual(len(depth_stamps), 3, 'the node published almost nothing')
        self.assertLessEqual(set(depth_stamps), bag_stamps)
        # latency_ms = the node's clock at publish minus the image stamp. On the bag's clock
        # that is milliseconds (negative by a frame period at most when /clock trails the
        # image); on the wall clock it would be the years since the bag was recorded.
        self.assertEqual(len(latencies_ms), len(depth_stamps))
        self.assertLess(max(latencies_ms), 60_000.0)
        self.assertLess(abs(statistics.median(latencies_ms)), 10_000.0)
