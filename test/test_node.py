"""perception_node: outputs, headers, values and robustness, with the node in its own process.

Expected values come from independent computations in this process: the Predictor run on the
same image and checkpoint, and the pinhole back-projection written out here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32, Header

from jointdistill_ros.camera_info import output_camera_info
from jointdistill_ros.camera_stream import depth_for_publishing
from jointdistill_ros.diagnostics import (
    FrameStats,
    build_diagnostic_array,
    diagnostic_status,
    diagnostic_values,
    status_name,
)
from jointdistill_ros.parameters import PARAMETERS, ConfigureError, settings_from_values
from node_helpers import (
    DiagnosticsWatcher,
    NodeProcess,
    TestNode,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
)

HEIGHT, WIDTH = 480, 640
STAMP_NS = 1_700_000_000_123_456_789
FRAME_ID = 'camera_optical_frame'
K_INPUT = np.array([[500.0, 0.0, 321.5], [0.0, 480.0, 238.0], [0.0, 0.0, 1.0]])
STRIDE = 4


# ----------------------------------------------------------------------- pure functions
def default_values(**changes) -> dict:
    values = {spec.name: spec.default for spec in PARAMETERS}
    values.update(changes)
    return values


def test_settings_reject_bad_values_naming_the_parameter():
    with pytest.raises(ConfigureError, match="'device'"):
        settings_from_values(default_values(device='gpu'))
    with pytest.raises(ConfigureError, match="'qos.profile'"):
        settings_from_values(default_values(**{'qos.profile': 'sensor_data'}))
    with pytest.raises(ConfigureError, match="'input_height'"):
        settings_from_values(default_values(input_height=256))
    with pytest.raises(ConfigureError, match="'input_width' is 100"):
        settings_from_values(default_values(input_height=256, input_width=100))
    settings = settings_from_values(default_values(input_height=256, input_width=512))
    assert settings.input_size == (256, 512)
    assert settings_from_values(default_values()).input_size is None


def test_a_ground_class_the_model_lacks_fails_configure_only_with_a_camera_height(tmp_path):
    from jointdistill_ros.perception_node import load_predictor
    checkpoint = save_tiny_student(tmp_path / 'student')  # 7 classes
    values = default_values(model_path=str(checkpoint), device='cpu', ground_class=9)
    predictor, _ = load_predictor(settings_from_values(values))
    assert predictor.num_classes == 7
    with pytest.raises(ConfigureError, match="'ground_class' is 9 but the model has 7"):
        load_predictor(settings_from_values({**values, 'camera_height': 1.5}))


def test_every_parameter_has_a_description_and_the_right_limits():
    for spec in PARAMETERS:
        descriptor = spec.descriptor()
        assert len(descriptor.description) > 20, spec.name
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            assert descriptor.integer_range, spec.name
            limits = descriptor.integer_range[0]
            assert limits.from_value <= spec.default <= limits.to_value, spec.name
        if isinstance(spec.default, float):
            assert descriptor.floating_point_range, spec.name


def test_depth_for_publishing_follows_rep_117():
    depth = np.array([[2.0, 0.0, -1.0], [np.nan, np.inf, 5.0]], np.float32)
    labels = np.array([[4, 4, 0], [0, 0, 1]], np.uint8)
    plain = depth_for_publishing(depth, labels, sky_class=None)
    assert plain[0, 0] == 2.0 and plain[1, 2] == 5.0
    assert np.isnan(plain[0, 1]) and np.isnan(plain[0, 2]) and np.isnan(plain[1, 0])
    assert np.isnan(plain[1, 1])  # +Inf from the network is not a valid prediction
    sky = depth_for_publishing(depth, labels, sky_class=4)
    assert sky[0, 0] == np.inf and sky[0, 1] == np.inf
    assert sky.dtype == np.float32 and sky[1, 2] == 5.0


def test_output_camera_info_scales_intrinsics_and_keeps_the_header():
    header = Header(stamp=Time(sec=3, nanosec=4), frame_id='cam')
    info = CameraInfo(height=480, width=640, distortion_model='plumb_bob',
                      d=[0.1, 0.0, 0.0, 0.0, 0.0], k=K_INPUT.ravel().tolist(),
                      p=[500.0, 0.0, 321.5, -25.0, 0.0, 480.0, 238.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    out, K = output_camera_info(info, header, 240, 320)
    # Halving: fx 500 -> 250, fy 480 -> 240, cx (321.5 + 0.5) / 2 - 0.5 = 160.5,
    # cy (238 + 0.5) / 2 - 0.5 = 118.75, Tx -25 -> -12.5.
    np.testing.assert_allclose(K, [[250, 0, 160.5], [0, 240, 118.75], [0, 0, 1]])
    np.testing.assert_allclose(out.p, [250, 0, 160.5, -12.5, 0, 240, 118.75, 0, 0, 0, 1, 0])
    assert (out.height, out.width) == (240, 320) and out.header is header
    assert list(out.d) == [0.1, 0.0, 0.0, 0.0, 0.0]
    default, K_default = output_camera_info(None, header, 480, 640)
    # 70 degree horizontal field of view: fx = 320 / tan(35 deg) = 457.01 pixels.
    assert K_default[0, 0] == pytest.approx(320 / math.tan(math.radians(35)))
    assert (K_default[0, 2], K_default[1, 2]) == (319.5, 239.5)
    assert default.k[0] == K_default[0, 0]


def test_frame_stats_report_and_diagnostic_message():
    stats = FrameStats()
    for index in range(20):
        stats.record_received(replaced_unprocessed=index % 5 == 0)  # 4 drops
        stats.record_processed(processing_ms=index + 1.0, latency_ms=10.0)
    stats.record_rejected()
    report = stats.report(window_s=2.0)
    assert report.rate_hz == 10.0
    assert report.processing_ms_mean == 10.5
    # Linear interpolation: rank 0.95 * 19 = 18.05 between 19 and 20 -> 19.05.
    assert report.processing_ms_p95 == pytest.approx(19.05)
    assert (report.frames_received, report.frames_dropped, report.frames_rejected) == (20, 4, 1)
    array = build_diagnostic_array([diagnostic_status(report, '/n', 'cpu', 'active'),
                                    diagnostic_status(report, '/n', 'cpu', 'inactive', 'rear',
                                                      '/rear/image')], Time())
    values = diagnostic_values(array)
    assert values['frames_dropped'] == '4' and values['device'] == 'cpu'
    assert values['processing_ms_p95'] == '19.05' and values['camera'] == ''
    rear = diagnostic_values(array, status_name('rear'))
    assert rear['camera'] == 'rear' and rear['image_topic'] == '/rear/image'
    # A malformed message in the window: WARN while active.
    assert [s.level for s in array.status] == [DiagnosticStatus.WARN, DiagnosticStatus.OK]
    assert array.status[1].message == 'inactive: not processing'
    empty = stats.report(window_s=1.0)  # a new window: no frames, counters kept
    assert empty.window_frames == 0 and math.isnan(empty.processing_ms_mean)
    assert empty.frames_received == 20


def test_ground_scale_diagnostics_warn_when_no_frame_found_the_ground():
    stats = FrameStats()
    for scale in (1.2, None, 1.6, 1.3):
        stats.record_processed(processing_ms=5.0, latency_ms=10.0)
        stats.record_ground_scale(scale)
    status = diagnostic_status(stats.report(window_s=1.0), '/n', 'cpu', 'active',
                               camera_height=0.45)
    values = {pair.key: pair.value for pair in status.values}
    assert (status.level, status.message) == (DiagnosticStatus.OK, 'active')
    assert values['camera_height_m'] == '0.450'
    assert values['ground_fitted_frames'] == '3' and values['ground_scale_median'] == '1.300'
    stats.record_processed(processing_ms=5.0, latency_ms=10.0)
    stats.record_ground_scale(None)
    status = diagnostic_status(stats.report(window_s=1.0), '/n', 'cpu', 'active',
                               camera_height=0.45)
    assert status.level == DiagnosticStatus.WARN and 'no ground found' in status.message
    without_height = diagnostic_status(stats.report(window_s=1.0), '/n', 'cpu', 'active')
    assert 'ground_scale_median' not in {pair.key for pair in without_height.values}


# ----------------------------------------------------------------------- the node process
def camera_info_message(header: Header) -> CameraInfo:
    return CameraInfo(header=header, height=HEIGHT, width=WIDTH, distortion_model='plumb_bob',
                      d=[0.0] * 5, k=K_INPUT.ravel().tolist(),
                      r=np.eye(3).ravel().tolist(),
                      p=np.hstack([K_INPUT, np.zeros((3, 1))]).ravel().tolist())


OUTPUTS = {
    'depth/image': Image, 'depth/camera_info': CameraInfo, 'depth/color': Image,
    'segmentation/labels': Image, 'segmentation/color': Image,
    'segmentation/overlay': Image, 'points': PointCloud2,
    'jointdistill_perception/latency_ms': Float32,
}


@pytest.mark.ros
def test_outputs_match_the_predictor_and_the_back_projection(ros_env, tmp_path):
    from jointdistill_core.inference import Predictor
    from jointdistill_ros.image_codec import imgmsg_to_numpy
    from jointdistill_ros.pointcloud import read_pointcloud2

    checkpoint = save_tiny_student(tmp_path / 'student')
    rgb = pattern_image(HEIGHT, WIDTH)
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': 'cpu',
                  'pointcloud_stride': STRIDE, 'diagnostics_period': 0.2}
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        received: dict[str, list] = {topic: [] for topic in OUTPUTS}
        for topic, msg_type in OUTPUTS.items():
            # Reliable subscribers (QoS depth 5): the node's publishers must serve them.
            probe.node.create_subscription(msg_type, topic, received[topic].append, 5)
        image_publisher = probe.node.create_publisher(Image, 'image', 5)
        info_publisher = probe.node.create_publisher(CameraInfo, 'camera_info', 5)
        message = rgb_image_message(rgb, STAMP_NS, FRAME_ID)
        probe.spin_until(lambda: image_publisher.get_subscription_count() > 0
                         and info_publisher.get_subscription_count() > 0, 90,
                         f'the node to subscribe (log: {node_process.log_path})')
        # The first frame may beat its CameraInfo (default intrinsics): compare a later one.
        for _ in range(60):
            info_publisher.publish(camera_info_message(message.header))
            probe.spin_for(0.1)
            image_publisher.publish(message)
            probe.spin_for(0.4)
            if all(len(messages) >= 3 for messages in received.values()):
                break
        missing = {topic for topic, messages in received.items() if len(messages) < 3}
        assert not missing, f'missing {missing}; node log:\n{node_process.log()}'
        received = {topic: messages[-1] for topic, messages in received.items()}

    for topic in OUTPUTS:
        if topic.endswith('latency_ms'):
            continue
        assert received[topic].header == message.header, topic  # stamp and frame_id unchanged
    encodings = {topic: received[topic].encoding for topic in OUTPUTS
                 if OUTPUTS[topic] is Image}
    assert encodings == {'depth/image': '32FC1', 'depth/color': 'rgb8',
                         'segmentation/labels': 'mono8', 'segmentation/color': 'rgb8',
                         'segmentation/overlay': 'rgb8'}
    for topic, encoding in encodings.items():
        assert (received[topic].height, received[topic].width) == (HEIGHT, WIDTH), topic

    predictor = Predictor.from_checkpoint(checkpoint, device='cpu')
    prediction = predictor.predict(rgb, K_INPUT)
    expected_depth, expected_labels = prediction.depth, prediction.labels
    depth = imgmsg_to_numpy(received['depth/image'])
    labels = imgmsg_to_numpy(received['segmentation/labels'])
    np.testing.assert_allclose(depth, expected_depth, rtol=1e-5, atol=1e-5)
    assert (labels == expected_labels).mean() > 0.999  # ties at arg-max may flip a pixel
    assert len(np.unique(labels)) > 1 and np.ptp(depth) > 0  # the image produced structure

    info = received['depth/camera_info']
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), K_INPUT)

    cloud = received['points']
    points, colors = read_pointcloud2(cloud)
    points = points.reshape(-1, 3)
    # Every STRIDE-th pixel of every STRIDE-th row; all depths are finite and positive.
    rows, cols = np.arange(0, HEIGHT, STRIDE), np.arange(0, WIDTH, STRIDE)
    assert points.shape[0] == rows.size * cols.size
    fx, fy, cx, cy = K_INPUT[0, 0], K_INPUT[1, 1], K_INPUT[0, 2], K_INPUT[1, 2]
    for row_index, col_index in ((0, 0), (10, 37), (len(rows) - 1, len(cols) - 1)):
        v, u = rows[row_index], cols[col_index]
        z = float(expected_depth[v, u])
        point = points[row_index * cols.size + col_index]
        np.testing.assert_allclose(point, [(u - cx) * z / fx, (v - cy) * z / fy, z],
                                   rtol=1e-4, atol=1e-4)
    assert received['jointdistill_perception/latency_ms'].data > 0


@pytest.mark.ros
def test_camera_height_puts_the_published_depth_on_the_ground(ros_env, tmp_path):
    """The shipped student on a synthetic street, camera_height set: the published depth is
    the Predictor's with that height (rescaled to the ground), not its plain depth."""
    from conftest import REPO_ROOT
    from jointdistill_core.data.synthetic import SceneMix, render_scene
    from jointdistill_core.inference import Predictor
    from jointdistill_ros.image_codec import imgmsg_to_numpy

    scene = render_scene(21, 240, 320, SceneMix.parse('road=1'), (60.0, 60.0),
                         camera_effects=False)
    model = REPO_ROOT / 'models' / 'jointdistill_student.safetensors'
    parameters = {'model_path': str(model), 'autostart': True, 'device': 'cpu',
                  'camera_height': 1.4, 'diagnostics_period': 0.2}
    message = rgb_image_message(scene.image, STAMP_NS, FRAME_ID)
    info = CameraInfo(header=message.header, height=240, width=320, k=scene.K.ravel().tolist())
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        received = []
        probe.node.create_subscription(Image, 'depth/image', received.append, 5)
        reports = []  # every /diagnostics report: the windows are short, most hold no frame
        probe.node.create_subscription(
            DiagnosticArray, '/diagnostics', lambda msg: reports.append(diagnostic_values(msg)),
            10)
        image_publisher = probe.node.create_publisher(Image, 'image', 5)
        info_publisher = probe.node.create_publisher(CameraInfo, 'camera_info', 5)
        probe.spin_until(lambda: image_publisher.get_subscription_count() > 0
                         and info_publisher.get_subscription_count() > 0, 90,
                         f'the node to subscribe (log: {node_process.log_path})')
        for _ in range(60):
            info_publisher.publish(info)
            probe.spin_for(0.1)
            image_publisher.publish(message)
            probe.spin_for(0.4)
            if len(received) >= 3:  # the first may beat its CameraInfo (default intrinsics)
                break
        assert len(received) >= 3, f'no depth images; node log:\n{node_process.log()}'
        # The diagnostics of the window with that frame report the ground it showed.
        probe.spin_until(lambda: any(report['ground_fitted_frames'] != '0'
                                     for report in reports), 30, 'a report of the fitted ground')
        fitted = next(report for report in reports if report['ground_fitted_frames'] != '0')
        assert fitted['camera_height_m'] == '1.400' and float(fitted['ground_scale_median']) > 0
    predictor = Predictor.from_checkpoint(model, device='cpu')
    expected = predictor.predict(scene.image, scene.K, camera_height=1.4)
    plain = predictor.predict(scene.image, scene.K)
    assert expected.ground_scale is not None and abs(expected.ground_scale - 1.0) > 0.01
    depth = imgmsg_to_numpy(received[-1])
    np.testing.assert_allclose(depth, expected.depth, rtol=1e-4, atol=1e-4)
    assert not np.allclose(depth, plain.depth, rtol=1e-3)


@pytest.mark.ros
def test_malformed_image_is_logged_counted_and_skipped(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': 'cpu',
                  'diagnostics_period': 0.2}
    good = rgb_image_message(pattern_image(120, 160), STAMP_NS, FRAME_ID)
    malformed = rgb_image_message(pattern_image(120, 160), STAMP_NS + 1, FRAME_ID)
    malformed.data = malformed.data[:1000]  # far shorter than step * height
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        diagnostics = DiagnosticsWatcher(probe)
        depth_stamps = []
        probe.node.create_subscription(Image, 'depth/image',
                                       lambda msg: depth_stamps.append(msg.header.stamp), 10)
        # Reliable publisher with history: each message is delivered once matched.
        publisher = probe.node.create_publisher(Image, 'image', 10)
        probe.spin_until(lambda: publisher.get_subscription_count() > 0 and
                         diagnostics.latest is not None, 90, 'the node to start')
        for index, (message, counter, expected) in enumerate(
                ((good, 'frames_processed', 1), (malformed, 'frames_rejected', 1),
                 (good, 'frames_processed', 2))):
            publisher.publish(message)
            probe.spin_until(lambda: diagnostics.value(counter) >= expected, 60,
                             f'{counter} = {expected} after message {index}')
        probe.spin_for(0.5)
        assert node_process.process.poll() is None, 'the node died on a malformed message'
        assert diagnostics.value('frames_processed') == 2
        assert diagnostics.value('frames_rejected') == 1
        assert diagnostics.value('frames_received') == 3
        log = node_process.log()
    assert 'rejected a malformed message' in log and 'data' in log, log
    assert len(depth_stamps) == 2
