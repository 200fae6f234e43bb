"""Many cameras, one node: the `cameras` parameter and its validation, the example parameter
file, and a node process serving three cameras (two of one aspect ratio, batched; one of
another, with compressed transport) whose outputs each equal the Predictor's on that camera's
frames, with per-camera diagnostics."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float32, Header

from conftest import REPO_ROOT
from jointdistill_core.bags.codec import encode_compressed_image
from jointdistill_core.bags.compressed import compressed_to_rgb
from jointdistill_ros.diagnostics import diagnostic_values, status_name
from jointdistill_ros.parameters import (
    PARAMETERS,
    CameraSettings,
    ConfigureError,
    camera_parameters,
    cameras_from_values,
    settings_from_values,
)
from jointdistill_ros.perception_node import NODE_NAME
from node_helpers import (
    NodeProcess,
    TestNode,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
)

STAMP_NS = 1_700_000_000_000_000_000


def values(cameras: tuple[str, ...] = (), **changes) -> dict:
    result = {spec.name: spec.default for spec in PARAMETERS}
    for name in cameras:
        result.update({spec.name: spec.default for spec in camera_parameters(name)})
    result['cameras'] = cameras
    result.update(changes)
    return result


def test_without_cameras_the_node_has_one_camera_on_image_and_camera_info():
    assert cameras_from_values(values(transport='compressed')) == (
        CameraSettings('', 'image', 'camera_info', '', 'compressed'),)


def test_camera_defaults_follow_the_name_and_the_node_transport():
    cameras = cameras_from_values(values(('front', 'rear'), transport='compressed',
                                         **{'camera.rear.transport': 'raw',
                                            'camera.rear.namespace': '/robot/rear/'}))
    assert cameras == (
        CameraSettings('front', 'front/image', 'front/camera_info', 'front', 'compressed'),
        CameraSettings('rear', 'rear/image', 'rear/camera_info', 'robot/rear', 'raw'))


def test_camera_heights_fall_back_to_the_node_height_and_zero_means_none():
    assert cameras_from_values(values(camera_height=1.65))[0].height == 1.65
    assert cameras_from_values(values())[0].height is None
    cameras = cameras_from_values(values(('front', 'rear'), camera_height=0.8,
                                         **{'camera.rear.height': 1.2}))
    assert [camera.height for camera in cameras] == [0.8, 1.2]
    cameras = cameras_from_values(values(('front', 'rear'), **{'camera.rear.height': 1.2}))
    assert [camera.height for camera in cameras] == [None, 1.2]


@pytest.mark.parametrize('cameras, changes, message', [
    (('front', '2nd'), {}, "'2nd' is not a camera name"),
    (('front', 'front'), {}, 'lists front more than once'),
    (('front', 'rear'), {'camera.rear.namespace': 'front'},
     "'camera.front.namespace' and 'camera.rear.namespace' are both 'front'"),
    (('front', 'rear'), {'camera.rear.image': 'front/image'},
     "'camera.front.image' and 'camera.rear.image' are both 'front/image'"),
    (('front',), {'camera.front.namespace': 'a//b'}, "'camera.front.namespace' is 'a//b'"),
    (('front',), {'camera.front.transport': 'theora'}, "'camera.front.transport' is 'theora'"),
    ((), {'transport': 'jpeg'}, "'transport' is 'jpeg'"),
])
def test_bad_camera_parameters_name_the_parameter(cameras, changes, message):
    with pytest.raises(ConfigureError, match=message):
        cameras_from_values(values(cameras, **changes))


def test_the_example_cameras_file_configures_three_cameras():
    document = yaml.safe_load((REPO_ROOT / 'config' / 'cameras.yaml').read_text())
    parameters = document['/**']['ros__parameters']
    names = tuple(parameters['cameras'])
    given = {f'camera.{name}.{key}': value for name, keys in parameters['camera'].items()
             for key, value in keys.items()}
    settings = settings_from_values(values(names, **given))
    assert [(c.name, c.image_topic, c.namespace, c.transport) for c in settings.cameras] == [
        ('front', '/front_camera/color/image_raw', 'front', 'compressed'),
        ('left', '/left_camera/image_raw', 'side/left', 'raw'),
        ('right', '/right_camera/image_raw', 'side/right', 'raw')]


# ------------------------------------------------------------------ the node process
# (name, (height, width), transport, K): front and rear share the 4:3 aspect (one batch),
# wide is 3:1 (its own model input size, its own batch).
CAMERAS = {
    'front': ((96, 128), 'raw', np.array([[110.0, 0, 63.5], [0, 110.0, 47.5], [0, 0, 1]])),
    'rear': ((120, 160), 'raw', np.array([[90.0, 0, 80.0], [0, 95.0, 60.0], [0, 0, 1]])),
    'wide': ((64, 192), 'compressed', np.array([[70.0, 0, 95.5], [0, 70.0, 31.5], [0, 0, 1]])),
}
FRAMES_PER_CAMERA = 3


def camera_info(header: Header, size: tuple[int, int], K: np.ndarray) -> CameraInfo:
    return CameraInfo(header=header, height=size[0], width=size[1], distortion_model='plumb_bob',
                      d=[0.0] * 5, k=K.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                      p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist())


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.ros
def test_one_node_serves_three_cameras_like_the_predictor_on_each(ros_env, tmp_path):
    from jointdistill_core.inference import Predictor
    from jointdistill_ros.image_codec import imgmsg_to_numpy

    checkpoint = save_tiny_student(tmp_path / 'student', (64, 96))
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': 'cpu',
                  'diagnostics_period': 0.2, 'qos.profile': 'DEFAULT', 'qos.depth': 10,
                  'cameras': list(CAMERAS)}
    for name, (_, transport, _) in CAMERAS.items():
        parameters[f'camera.{name}.image'] = f'/{name}_camera/image_raw'
        parameters[f'camera.{name}.camera_info'] = f'/{name}_camera/camera_info'
        parameters[f'camera.{name}.transport'] = transport
    parameters['camera.wide.namespace'] = 'side/wide'
    output_namespace = {'front': 'front', 'rear': 'rear', 'wide': 'side/wide'}

    sent: dict[str, dict[int, np.ndarray]] = {name: {} for name in CAMERAS}
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        diagnostics: dict[str, dict[str, str]] = {}

        def on_diagnostics(msg) -> None:
            for name in CAMERAS:
                report = diagnostic_values(msg, status_name(name))
                if report is not None:
                    diagnostics[name] = report
        probe.node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
        received: dict[tuple[str, str], dict[int, object]] = {}
        for name in CAMERAS:
            for topic, msg_type in (('depth/image', Image), ('segmentation/labels', Image),
                                    ('depth/camera_info', CameraInfo)):
                store = received.setdefault((name, topic), {})
                probe.node.create_subscription(
                    msg_type, f'/{output_namespace[name]}/{topic}',
                    lambda msg, store=store: store.setdefault(stamp_of(msg), msg), 20)
            store = received.setdefault((name, 'latency'), {})
            probe.node.create_subscription(
                Float32, f'/{NODE_NAME}/{name}/latency_ms',
                lambda msg, store=store: store.setdefault(len(store), msg.data), 20)
        images, infos = {}, {}
        for name, (_, transport, _) in CAMERAS.items():
            base = f'/{name}_camera/image_raw'
            images[name] = probe.node.create_publisher(
                CompressedImage if transport == 'compressed' else Image,
                base + ('/compressed' if transport == 'compressed' else ''), 10)
            infos[name] = probe.node.create_publisher(CameraInfo, f'/{name}_camera/camera_info',
                                                      10)
        probe.spin_until(lambda: all(p.get_subscription_count() for p in images.values())
                         and all(p.get_subscription_count() for p in infos.values()), 90,
                         f'the node to subscribe to every camera (log: {node_process.log_path})')
        # The node keeps the newest CameraInfo; give the first ones time to arrive on a loaded
        # machine (each round publishes its own again before its images).
        for name, (size, _, K) in CAMERAS.items():
            infos[name].publish(camera_info(Header(frame_id=f'{name}_optical'), size, K))
        probe.spin_for(2.0)
        for index in range(FRAMES_PER_CAMERA):
            messages = {}
            for camera_index, (name, (size, transport, K)) in enumerate(CAMERAS.items()):
                stamp = STAMP_NS + index * 10**8 + camera_index
                header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9),
                                frame_id=f'{name}_optical')
                infos[name].publish(camera_info(header, size, K))
                rgb = pattern_image(*size, seed=10 * camera_index + index)
                if transport == 'compressed':
                    encoded = encode_compressed_image(rgb, 'jpeg', stamp)
                    messages[name] = CompressedImage(header=header, format=encoded.format,
                                                     data=encoded.data.tobytes())
                    rgb = compressed_to_rgb(messages[name])  # what the node sees
                else:
                    messages[name] = rgb_image_message(rgb, stamp, f'{name}_optical')
                sent[name][stamp] = rgb
            probe.spin_for(0.05)  # the CameraInfo first
            for name, message in messages.items():  # back to back: batched where sizes agree
                images[name].publish(message)
            probe.spin_until(lambda: all(
                max(sent[name]) in received[(name, 'depth/image')] for name in CAMERAS), 60,
                f'the outputs of round {index} (log: {node_process.log_path})')
        probe.spin_until(lambda: all(
            int(diagnostics.get(name, {}).get('frames_processed', -1)) == FRAMES_PER_CAMERA
            for name in CAMERAS), 30, 'per-camera diagnostics')
        assert not node_process.exited(), node_process.log_tail()
        log = node_process.log()

    assert '3 camera(s)' in log and "'/wide_camera/image_raw/compressed'" in log, log
    predictor = Predictor.from_path(checkpoint, device='cpu')
    for name, (size, _, K) in CAMERAS.items():
        for stamp, rgb in sent[name].items():
            depth_msg = received[(name, 'depth/image')][stamp]
            assert depth_msg.header.frame_id == f'{name}_optical'
            expected = predictor.predict(rgb, K)
            np.testing.assert_allclose(imgmsg_to_numpy(depth_msg), expected.depth, rtol=1e-4,
                                       atol=1e-4)
            labels = imgmsg_to_numpy(received[(name, 'segmentation/labels')][stamp])
            assert labels.shape == size and (labels == expected.labels).mean() > 0.999
            info = received[(name, 'depth/camera_info')][stamp]
            np.testing.assert_allclose(np.reshape(info.k, (3, 3)), K)
        report = diagnostics[name]
        assert report['camera'] == name and report['frames_received'] == str(FRAMES_PER_CAMERA)
        assert (report['frames_dropped'], report['frames_rejected']) == ('0', '0')
        assert report['image_topic'].startswith(f'/{name}_camera/image_raw')
        assert len(received[(name, 'latency')]) == FRAMES_PER_CAMERA
