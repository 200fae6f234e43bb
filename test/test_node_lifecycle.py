"""perception_node's lifecycle, driven through lifecycle_msgs services from another process."""
from __future__ import annotations

import time

import pytest
from sensor_msgs.msg import Image

from node_helpers import (
    LifecycleClient,
    NodeProcess,
    TestNode,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
    set_parameter,
)

pytestmark = pytest.mark.ros


def publish_until_depth_arrives(probe: TestNode, publisher, received: list, timeout_s: float = 30
                                ) -> None:
    """Publish an image every 0.3 s until a depth image comes back."""
    before, deadline = len(received), time.monotonic() + timeout_s
    while len(received) == before:
        assert time.monotonic() < deadline, 'no depth image while active'
        publisher.publish(rgb_image_message(pattern_image(96, 128), 10**9, 'cam'))
        probe.spin_for(0.3)


def depth_count_after_publishing(probe: TestNode, publisher, received: list, frames: int,
                                 wait_s: float) -> int:
    """Publish `frames` images 0.2 s apart, spin `wait_s` more; return depth images received."""
    before = len(received)
    for index in range(frames):
        publisher.publish(rgb_image_message(pattern_image(96, 128), 10**9 + index, 'cam'))
        probe.spin_for(0.2)
    probe.spin_for(wait_s)
    return len(received) - before


def test_configure_fails_for_a_missing_or_invalid_model_and_names_it(ros_env, tmp_path):
    missing = tmp_path / 'no_such_model.safetensors'
    with NodeProcess(ros_env, {'model_path': str(missing), 'autostart': False},
                     log_path=tmp_path / 'node.log') as node_process, TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe, node_process.node_name)
        lifecycle.wait_ready()
        assert lifecycle.get_state() == 'unconfigured'
        assert lifecycle.change_state('configure') is False
        assert lifecycle.get_state() == 'unconfigured'
        assert node_process.process.poll() is None
        assert 'model_path' in node_process.log() and str(missing) in node_process.log()

        corrupt = tmp_path / 'corrupt.safetensors'
        corrupt.write_bytes(b'this is not a checkpoint')
        assert set_parameter(probe, node_process.node_name, 'model_path', str(corrupt))
        assert lifecycle.change_state('configure') is False
        assert lifecycle.get_state() == 'unconfigured'
        log = node_process.log()
    assert f"parameter 'model_path': cannot load {corrupt}" in log, log


def test_full_lifecycle_and_processing_only_while_active(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    parameters = {'model_path': str(checkpoint), 'autostart': False, 'device': 'cpu'}
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe, node_process.node_name)
        lifecycle.wait_ready()
        received: list[Image] = []
        probe.node.create_subscription(Image, 'depth/image', received.append, 10)
        publisher = probe.node.create_publisher(Image, 'image', 10)

        assert lifecycle.get_state() == 'unconfigured'
        assert lifecycle.change_state('configure') is True
        assert lifecycle.get_state() == 'inactive'
        probe.spin_for(0.5)
        assert publisher.get_subscription_count() == 0  # subscriptions exist only when active

        assert lifecycle.change_state('activate') is True
        assert lifecycle.get_state() == 'active'
        probe.spin_until(lambda: publisher.get_subscription_count() > 0, 30, 'the subscription')
        publish_until_depth_arrives(probe, publisher, received)

        assert lifecycle.change_state('deactivate') is True
        assert lifecycle.get_state() == 'inactive'
        probe.spin_until(lambda: publisher.get_subscription_count() == 0, 30,
                         'the subscription to go away')
        assert depth_count_after_publishing(probe, publisher, received, 2, 1.0) == 0

        assert lifecycle.change_state('cleanup') is True
        assert lifecycle.get_state() == 'unconfigured'
        assert lifecycle.change_state('configure') is True  # reload after cleanup works
        assert lifecycle.change_state('activate') is True
        probe.spin_until(lambda: publisher.get_subscription_count() > 0, 30, 'the subscription')
        publish_until_depth_arrives(probe, publisher, received)

        assert lifecycle.change_state('deactivate') is True
        assert lifecycle.change_state('cleanup') is True
        assert lifecycle.change_state('shutdown') is True
        assert lifecycle.get_state() == 'finalized'
        log = node_process.log()
    assert 'Traceback' not in log, log


def test_bad_start_up_value_fails_configure_until_fixed(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    # 0 is below the declared range 1..16: the node must neither die nor accept it.
    parameters = {'model_path': str(checkpoint), 'autostart': False, 'pointcloud_stride': 0,
                  'device': 'gpu'}
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe, node_process.node_name)
        lifecycle.wait_ready()
        assert lifecycle.change_state('configure') is False
        assert "'pointcloud_stride'" in node_process.log()

        assert set_parameter(probe, node_process.node_name, 'pointcloud_stride', 2)
        assert not set_parameter(probe, node_process.node_name, 'pointcloud_stride', 99)
        assert lifecycle.change_state('configure') is False  # device 'gpu' is still wrong
        assert "parameter 'device' is 'gpu'" in node_process.log()
        assert set_parameter(probe, node_process.node_name, 'device', 'cpu')
        assert lifecycle.change_state('configure') is True
        assert lifecycle.get_state() == 'inactive'
