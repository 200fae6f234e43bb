"""The shipped launch file under launch_testing with respawn:=true: a perception node killed with
SIGKILL is started again by launch and reaches active by itself. Own ROS domain (conftest)."""
from __future__ import annotations

import os
import signal
import tempfile
import time
import unittest
from pathlib import Path

import pytest

from launch_helpers import LAUNCH_STACK_MISSING, SKIP_REASON

if LAUNCH_STACK_MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from launch.actions import RegisterEventHandler
from launch.event_handlers import OnProcessStart

from jointdistill_ros.perception_node import NODE_NAME
from launch_helpers import launch_description_under_test
from node_helpers import START_TIMEOUT_S, LifecycleClient, TestNode, save_tiny_student

NAMESPACE = 'respawn_test'


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    scratch = tempfile.TemporaryDirectory(prefix='launch_test_')  # removed with the test run
    checkpoint = save_tiny_student(Path(scratch.name) / 'student')
    started_pids: list[int] = []  # every process launch starts, respawned ones included
    record_start = RegisterEventHandler(OnProcessStart(
        on_start=lambda event, context: started_pids.append(event.pid)))
    arguments = {'namespace': NAMESPACE, 'model_path': str(checkpoint), 'device': 'cpu',
                 'respawn': 'true'}
    return launch_description_under_test(arguments, before=[record_start]), {
        'scratch': scratch, 'started_pids': started_pids}


class TestRespawn(unittest.TestCase):

    def test_a_killed_node_comes_back_active(self, started_pids):
        node_name = f'/{NAMESPACE}/{NODE_NAME}'
        with TestNode('respawn_probe') as probe:
            LifecycleClient(probe, node_name).wait_for_state('active')
            self.assertEqual(len(started_pids), 1)
            os.kill(started_pids[0], signal.SIGKILL)
            deadline = time.monotonic() + START_TIMEOUT_S
            while len(started_pids) < 2:
                self.assertLess(time.monotonic(), deadline, 'launch did not start the node again')
                time.sleep(0.2)
        # A new participant: the old one's service endpoints may linger in discovery.
        with TestNode('respawn_probe_after') as probe:
            LifecycleClient(probe, node_name).wait_for_state('active')
        self.assertNotEqual(started_pids[1], started_pids[0])
