"""The shipped launch file under launch_testing: the node it starts reaches active, serves every
documented topic for frames sent to the remapped image topic, and every argument (namespace,
image_topic, camera_info_topic, params_file, model_path, device, camera_height) shows in what
the node does and in its parameters. Runs in its own ROS domain (conftest)."""
from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pytest
import yaml

from launch_helpers import LAUNCH_STACK_MISSING, SKIP_REASON

if LAUNCH_STACK_MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

import launch_testing
import launch_testing.asserts
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32

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

NAMESPACE = 'launch_test'
IMAGE_TOPIC = '/front_camera/color/image_raw'
CAMERA_INFO_TOPIC = '/front_camera/color/camera_info'
HEIGHT, WIDTH = 96, 128
STAMP_NS = 1_700_000_000_000_000_000
K_SENT = np.array([[200.0, 0.0, 60.5], [0.0, 190.0, 50.0], [0.0, 0.0, 1.0]])
# Set by the test's params file; the default (config/jointdistill.yaml) is 2.
POINTCLOUD_STRIDE = 4
# docs/ros.md, "Topics": every output, relative to the node's namespace.
DOCUMENTED_OUTPUTS = {
    'depth/image': Image, 'depth/camera_info': CameraInfo, 'depth/color': Image,
    'segmentation/labels': Image, 'segmentation/color': Image, 'segmentation/overlay': Image,
    'points': PointCloud2, f'{NODE_NAME}/latency_ms': Float32,
}


def write_params_file(path: Path) -> Path:
    """A params file whose model_path and device only work when the launch arguments override
    them: with this file's own values configure fails (no such file; cuda required)."""
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'model_path': str(path.parent / 'overridden_by_the_model_path_argument.safetensors'),
        'device': 'cuda', 'strict_device': True, 'backend': 'torch', 'num_threads': 1,
        'pointcloud_stride': POINTCLOUD_STRIDE, 'diagnostics_period': 0.5}}}))
    return path


@pytest.mark.launch_test
@pytest.mark.ros
def generate_test_description():
    scratch = tempfile.TemporaryDirectory(prefix='launch_test_')  # removed with the test run
    checkpoint = save_tiny_student(Path(scratch.name) / 'student')
    params_file = write_params_file(Path(scratch.name) / 'params.yaml')
    arguments = {'namespace': NAMESPACE, 'image_topic': IMAGE_TOPIC,
                 'camera_info_topic': CAMERA_INFO_TOPIC, 'params_file': str(params_file),
                 'model_path': str(checkpoint), 'device': 'cpu', 'camera_height': '1.25',
                 'rviz': 'false'}
    return launch_description_under_test(arguments), {'scratch': scratch,
                                                      'checkpoint': checkpoint}


class TestLaunchedNode(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.probe = TestNode('launch_probe')
        cls.node_name = f'/{NAMESPACE}/{NODE_NAME}'
        LifecycleClient(cls.probe, cls.node_name).wait_for_state('active')

    @classmethod
    def tearDownClass(cls):
        cls.probe.close()

    def test_every_documented_topic_for_frames_on_the_remapped_topics(self, checkpoint):
        from jointdistill_core.inference import Predictor
        from jointdistill_ros.diagnostics import diagnostic_values
        from jointdistill_ros.image_codec import imgmsg_to_numpy
        from jointdistill_ros.pointcloud import read_pointcloud2

        received: dict[str, list] = {topic: [] for topic in DOCUMENTED_OUTPUTS}
        for topic, msg_type in DOCUMENTED_OUTPUTS.items():
            self.probe.node.create_subscription(msg_type, f'/{NAMESPACE}/{topic}',
                                                received[topic].append, 5)
        diagnostics = []
        self.probe.node.create_subscription(DiagnosticArray, '/diagnostics',
                                            diagnostics.append, 10)
        image_publisher = self.probe.node.create_publisher(Image, IMAGE_TOPIC, 5)
        info_publisher = self.probe.node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, 5)
        rgb = pattern_image(HEIGHT, WIDTH)
        image = rgb_image_message(rgb, STAMP_NS, 'front_camera_optical_frame')
        info = CameraInfo(header=image.header, height=HEIGHT, width=WIDTH,
                          distortion_model='plumb_bob', d=[0.0] * 5, k=K_SENT.ravel().tolist())
        self.probe.spin_until(lambda: image_publisher.get_subscription_count() > 0
                              and info_publisher.get_subscription_count() > 0, 60,
                              f'the node to subscribe to {IMAGE_TOPIC} and {CAMERA_INFO_TOPIC}')
        # The node keeps the newest CameraInfo; the first frame may beat it on a loaded
        # machine (default intrinsics), so a later frame is compared.
        for _ in range(60):
            if all(len(messages) >= 3 for messages in received.values()) and diagnostics:
                break
            info_publisher.publish(info)
            self.probe.spin_for(0.1)
            image_publisher.publish(image)
            self.probe.spin_for(0.4)
        self.assertEqual({topic for topic, messages in received.items() if len(messages) < 3},
                         set())
        received = {topic: messages[-1] for topic, messages in received.items()}
        reports = [values for values in map(diagnostic_values, diagnostics) if values]
        self.assertTrue(reports, 'no report of the node on /diagnostics')
        self.assertEqual(reports[-1]['device'], 'cpu')  # device: the argument, not the file

        for topic, message in received.items():
            if hasattr(message, 'header'):
                self.assertEqual(message.header, image.header, topic)
        # camera_info_topic: the intrinsics sent there, not the default 70 degree field of view.
        np.testing.assert_allclose(np.reshape(received['depth/camera_info'].k, (3, 3)), K_SENT)
        # model_path: the outputs are those of the tiny checkpoint.
        expected = Predictor.from_checkpoint(checkpoint, device='cpu').predict(rgb, K_SENT)
        np.testing.assert_allclose(imgmsg_to_numpy(received['depth/image']), expected.depth,
                                   rtol=1e-4, atol=1e-4)
        labels = imgmsg_to_numpy(received['segmentation/labels'])
        self.assertGreater((labels == expected.labels).mean(), 0.999)
        # params_file: its point cloud stride (all depths of this model are finite).
        points, _ = read_pointcloud2(received['points'])
        kept_rows, kept_cols = (math.ceil(size / POINTCLOUD_STRIDE) for size in (HEIGHT, WIDTH))
        self.assertEqual(points.reshape(-1, 3).shape[0], kept_rows * kept_cols)

    def test_parameters_come_from_the_arguments_over_the_params_file(self, checkpoint):
        values = get_parameters(self.probe, self.node_name, [
            'model_path', 'device', 'pointcloud_stride', 'num_threads', 'backend', 'autostart',
            'use_sim_time', 'camera_height'])
        self.assertEqual(values, {
            'model_path': str(checkpoint), 'device': 'cpu', 'pointcloud_stride': POINTCLOUD_STRIDE,
            'num_threads': 1, 'backend': 'torch', 'autostart': True, 'use_sim_time': False,
            'camera_height': 1.25})


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_the_node_stopped_cleanly_with_its_launch(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
