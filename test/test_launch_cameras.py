"""The shipped launch file under launch_testing with cameras:=front,rear: one perception node
serves both cameras with one network, each on its own topics (front/image, rear/image and
their camera_info, relative to the namespace argument), outputs under front/ and rear/, each
camera's outputs those of the Predictor on that camera's frames and intrinsics, one
diagnostics status per camera. Own ROS domain (conftest)."""
from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pytest

from launch_helpers import LAUNCH_STACK_MISSING, SKIP_REASON

if LAUNCH_STACK_MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

import launch_testing
import launch_testing.asserts
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from jointdistill_core.inference import Predictor
from jointdistill_ros.diagnostics import diagnostic_values, status_name
from jointdistill_ros.image_codec import imgmsg_to_numpy
from jointdistill_ros.perception_node import NODE_NAME
from launch_helpers import launch_description_under_test
from node_helpers import (
    LifecycleClient,
    TestNode,
    get_parameters,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
)

NAMESPACE = 'launch_cameras'
STAMP_NS = 1_700_000_000_000_000_000
# Two cameras of different sizes and intrinsics.
CAMERAS = {
    'front': ((96, 128), np.array([[120.0, 0.0, 63.5], [0.0, 118.0, 47.5], [0.0, 0.0, 1.0]])),
    'rear': ((72, 144), np.array([[80.0, 0.0, 71.5], [0.0, 80.0, 35.5], [0.0, 0.0, 1.0]])),
}


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    scratch = tempfile.TemporaryDirectory(prefix='launch_test_')  # removed with the test run
    checkpoint = save_tiny_student(Path(scratch.name) / 'student')
    arguments = {'namespace': NAMESPACE, 'cameras': ','.join(CAMERAS),
                 'model_path': str(checkpoint), 'device': 'cpu', 'rviz': 'false'}
    return launch_description_under_test(arguments), {'scratch': scratch,
                                                      'checkpoint': checkpoint}


class TestTwoCameras(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.probe = TestNode('launch_cameras_probe')
        cls.node_name = f'/{NAMESPACE}/{NODE_NAME}'
        LifecycleClient(cls.probe, cls.node_name).wait_for_state('active')

    @classmethod
    def tearDownClass(cls):
        cls.probe.close()

    def test_each_camera_is_served_under_its_namespace(self, checkpoint):
        self.assertEqual(get_parameters(self.probe, self.node_name, ['cameras']),
                         {'cameras': list(CAMERAS)})
        depth: dict[str, Image] = {}
        diagnostics: dict[str, dict[str, str]] = {}
        publishers, frames = {}, {}
        for index, (name, (size, K)) in enumerate(CAMERAS.items()):
            prefix = f'/{NAMESPACE}/{name}'
            self.probe.node.create_subscription(
                Image, f'{prefix}/depth/image',
                lambda msg, name=name: depth.setdefault(name, msg), 5)
            stamp = STAMP_NS + index
            image = rgb_image_message(pattern_image(*size, seed=index), stamp,
                                      f'{name}_optical_frame')
            info = CameraInfo(header=Header(stamp=Time(sec=stamp // 10**9,
                                                       nanosec=stamp % 10**9),
                                            frame_id=f'{name}_optical_frame'),
                              height=size[0], width=size[1], distortion_model='plumb_bob',
                              d=[0.0] * 5, k=K.ravel().tolist())
            publishers[name] = (self.probe.node.create_publisher(Image, f'{prefix}/image', 5),
                                self.probe.node.create_publisher(CameraInfo,
                                                                 f'{prefix}/camera_info', 5))
            frames[name] = (image, info)

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for name in CAMERAS:
                values = diagnostic_values(msg, status_name(name))
                if values is not None:
                    diagnostics[name] = values
        self.probe.node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
        self.probe.spin_until(lambda: all(p.get_subscription_count() > 0
                                          for pair in publishers.values() for p in pair), 60,
                              'the node to subscribe to both cameras')
        for name, (_, info_publisher) in publishers.items():  # CameraInfo before the images
            info_publisher.publish(frames[name][1])
        self.probe.spin_for(2.0)
        for _ in range(60):
            if len(depth) == len(CAMERAS) and len(diagnostics) == len(CAMERAS):
                break
            for name, (image_publisher, info_publisher) in publishers.items():
                info_publisher.publish(frames[name][1])
                self.probe.spin_for(0.1)
                image_publisher.publish(frames[name][0])
            self.probe.spin_for(0.4)
        self.assertEqual(set(depth), set(CAMERAS))
        self.assertEqual(set(diagnostics), set(CAMERAS))

        predictor = Predictor.from_path(checkpoint, device='cpu')
        for index, (name, (size, K)) in enumerate(CAMERAS.items()):
            image = frames[name][0]
            self.assertEqual(depth[name].header, image.header, name)
            expected = predictor.predict(pattern_image(*size, seed=index), K).depth
            np.testing.assert_allclose(imgmsg_to_numpy(depth[name]), expected, rtol=1e-4,
                                       atol=1e-4)
            self.assertEqual(diagnostics[name]['image_topic'], f'/{NAMESPACE}/{name}/image')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_the_node_stopped_cleanly_with_its_launch(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
