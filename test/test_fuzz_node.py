"""A real perception_node process under a corpus of 10,000 malformed camera messages.

The corpus is generated here, deterministically, from a seed (no binary blobs in the
repository): unknown and data encodings (float images full of NaN and Inf), zero sizes, step
smaller than a row, data shorter or longer than step x height, claimed sizes of 8K and far
beyond with little data, odd widths for YUV, and unusable CameraInfo (K all zeros, NaN focal
lengths, zero size) mixed with CameraInfo of another size. Good frames go before, between and
after. The node must stay alive, reject exactly the bad messages (counted in diagnostics),
log each kind of fault rate-limited, and still produce the Predictor's output for good frames.
The same holds for CompressedImage input (transport: compressed): 2,000 malformed JPEG / PNG
payloads and formats between good frames, every good frame answered.

Exact counts need every message delivered: the node subscribes reliably (qos.profile DEFAULT,
depth 100) and the sender keeps fewer than 100 messages beyond what the node's diagnostics
report as received, so neither history ever overwrites an unread message.
"""
from __future__ import annotations

import copy
import re
import struct
import time
from dataclasses import dataclass

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from node_helpers import (
    DiagnosticsWatcher,
    NodeProcess,
    TestNode,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
)

SEED = 20261121
BAD_IMAGES = 10_000
BAD_INFOS, OTHER_SIZE_INFOS = 800, 200
GOOD_EVERY = 500            # one good frame after every 500 corpus messages
WINDOW = 80                 # messages in flight beyond the node's reported count; < depth 100
HEIGHT, WIDTH = 96, 128
FRAME_ID = 'camera_optical_frame'
K_GOOD = np.array([[110.0, 0.0, 63.5], [0.0, 105.0, 47.5], [0.0, 0.0, 1.0]])
UINT32_MAX = 2**32 - 1
VISUAL_OUTPUTS = {'depth/color': Image, 'segmentation/color': Image,
                  'segmentation/overlay': Image, 'points': PointCloud2}
IMAGE_FAULTS = ('unknown_encoding', 'data_encoding', 'zero_size', 'short_step', 'short_data',
                'long_data', 'huge_size', 'odd_yuv_width')
# The field each kind of fault is reported under in the node's log ("image: <field>").
LOGGED_FIELD = {'unknown_encoding': 'encoding', 'data_encoding': 'encoding',
                'zero_size': 'height|width', 'short_step': 'step', 'short_data': 'data',
                'long_data': 'data', 'huge_size': 'data|step', 'odd_yuv_width': 'width'}


def stamp(ns: int) -> Time:
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def bad_image(kind: str, rng: np.random.Generator, index: int) -> Image:
    """One malformed Image of the given kind; sizes and bytes drawn from rng."""
    header = Header(stamp=stamp(10**9 + index), frame_id=FRAME_ID)
    height, width = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    encoding, bpp = 'rgb8', 3
    step = width * bpp
    length = step * height
    if kind == 'unknown_encoding':
        encoding = str(rng.choice(['', 'rgb16', 'RGB8', 'bayer_rggb8', '8UC3', 'nv12', 'jpeg',
                                   ''.join(rng.choice(list('abcxyz819_'), 6))]))
    elif kind == 'data_encoding':
        encoding = str(rng.choice(['32FC1', '16UC1']))
        bpp = 4 if encoding == '32FC1' else 2
        step = width * bpp
        if encoding == '32FC1':  # a float "image" full of NaN and Inf
            values = rng.choice(np.array([np.nan, np.inf, -np.inf, 1.0], np.float32),
                                height * width)
            return Image(header=header, encoding=encoding, height=height, width=width,
                         step=step, data=values.astype('<f4').tobytes())
        length = step * height
    elif kind == 'zero_size':
        if rng.random() < 0.5:
            height, length = 0, 0
        else:
            width, step, length = 0, 0, 0
    elif kind == 'short_step':
        step = int(rng.integers(0, width * bpp))
        length = step * height
    elif kind == 'short_data':
        length = int(rng.integers(0, step * height))
    elif kind == 'long_data':
        length = step * height + int(rng.integers(1, 64))
    elif kind == 'huge_size':
        height, width = (int(v) for v in rng.choice(
            [(4320, 7680), (8640, 15360), (100_000, 100_000), (UINT32_MAX, 2)]))
        step = min(width * bpp, UINT32_MAX)
        length = int(rng.integers(0, 512))
    elif kind == 'odd_yuv_width':
        encoding, bpp = 'yuv422', 2
        width += 1 - width % 2
        step = width * bpp
        length = step * height
    return Image(header=header, encoding=encoding, height=height, width=width, step=step,
                 data=rng.integers(0, 256, length, dtype=np.uint8).tobytes())


def camera_info(height: int, width: int, K: np.ndarray) -> CameraInfo:
    return CameraInfo(header=Header(frame_id=FRAME_ID), height=height, width=width,
                      distortion_model='plumb_bob', d=[0.0] * 5, k=K.ravel().tolist(),
                      r=np.eye(3).ravel().tolist(),
                      p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist())


def bad_camera_info(rng: np.random.Generator) -> CameraInfo:
    K = K_GOOD.copy()
    choice = int(rng.integers(0, 4))
    if choice == 0:
        return camera_info(HEIGHT, WIDTH, np.zeros((3, 3)))            # K all zeros
    if choice == 1:
        K[0, 0] = np.nan
        return camera_info(HEIGHT, WIDTH, K)
    if choice == 2:
        K[1, 1] = -float(rng.integers(1, 500))
        return camera_info(HEIGHT, WIDTH, K)
    return camera_info(0, int(rng.integers(0, 2)) * WIDTH, K)          # zero size


@dataclass
class Corpus:
    """Messages in sending order: ('image' | 'camera_info', message, is_bad)."""

    items: list[tuple[str, object, bool]]
    image_kinds: dict[str, int]
    good_stamps: list[int]


def unusual_good_frames() -> list[Image]:
    """Valid frames at the edges: one pixel, one row, one column, padded rows, every colour
    encoding, big-endian mono16. The node must process them like any other frame."""
    from jointdistill_ros.image_codec import numpy_to_imgmsg
    rng = np.random.default_rng(SEED + 1)

    def random_image(height: int, width: int, channels: int, dtype=np.uint8) -> np.ndarray:
        top = np.iinfo(dtype).max
        shape = (height, width, channels) if channels > 1 else (height, width)
        return rng.integers(0, top + 1, shape, dtype=dtype)

    frames = [numpy_to_imgmsg(random_image(1, 1, 3), 'rgb8'),
              numpy_to_imgmsg(random_image(1, 640, 1), 'mono8'),
              numpy_to_imgmsg(random_image(480, 1, 4), 'bgra8'),
              numpy_to_imgmsg(random_image(37, 53, 3), 'bgr8'),
              numpy_to_imgmsg(random_image(30, 40, 4), 'rgba8'),
              numpy_to_imgmsg(random_image(96, 128, 3), 'yuv422'),
              numpy_to_imgmsg(random_image(96, 128, 3), 'yuv422_yuy2')]
    padded = numpy_to_imgmsg(random_image(37, 53, 3), 'rgb8')
    rows = np.frombuffer(bytes(padded.data), np.uint8).reshape(37, 53 * 3)
    padded.step, padded.data = 53 * 3 + 7, np.pad(rows, ((0, 0), (0, 7))).tobytes()
    big_endian = Image(height=20, width=30, encoding='mono16', is_bigendian=1, step=60,
                       data=random_image(20, 30, 1, np.uint16).astype('>u2').tobytes())
    return frames + [padded, big_endian]


def build_corpus(good_message) -> Corpus:
    rng = np.random.default_rng(SEED)
    slots = rng.choice(BAD_IMAGES, BAD_INFOS + OTHER_SIZE_INFOS, replace=False).tolist()
    info_slots, other_size_slots = set(slots), set(slots[:OTHER_SIZE_INFOS])
    items, kinds, good_stamps = [], {kind: 0 for kind in IMAGE_FAULTS}, []
    unusual = unusual_good_frames()
    for index in range(BAD_IMAGES):
        kind = IMAGE_FAULTS[index % len(IMAGE_FAULTS)]
        kinds[kind] += 1
        items.append(('image', bad_image(kind, rng, index), True))
        if index in info_slots:
            if index in other_size_slots:  # usable: another size, scaled by the node
                items.append(('camera_info', camera_info(2 * HEIGHT, 2 * WIDTH, 2 * K_GOOD),
                              False))
            else:
                items.append(('camera_info', bad_camera_info(rng), True))
        if (index + 1) % GOOD_EVERY == 0:
            ns = 2 * 10**9 + index
            good_stamps.append(ns)
            if len(good_stamps) % 2:
                items.append(('image', good_message(ns), False))
            else:  # every other good frame is an unusual one
                frame = unusual[len(good_stamps) // 2 % len(unusual)]
                frame.header = Header(stamp=stamp(ns), frame_id=FRAME_ID)
                items.append(('image', copy.deepcopy(frame), False))
    return Corpus(items, kinds, good_stamps)


def send_with_flow_control(probe: TestNode, publishers: dict, diagnostics: DiagnosticsWatcher,
                           corpus: Corpus, node_process: NodeProcess, timeout_s: float) -> None:
    """Publish every item, keeping < WINDOW images and < WINDOW bad CameraInfo unconfirmed."""
    sent = {'image': diagnostics.value('frames_received'),
            'camera_info': diagnostics.value('camera_info_rejected')}
    counter = {'image': 'frames_received', 'camera_info': 'camera_info_rejected'}
    deadline = time.monotonic() + timeout_s
    for topic, message, is_bad in corpus.items:
        while sent[topic] - diagnostics.value(counter[topic]) >= WINDOW:
            assert time.monotonic() < deadline, \
                f'the node stopped taking messages; log: {node_process.log_tail()}'
            assert not node_process.exited(), f'node died: {node_process.log_tail(20)}'
            probe.executor.spin_once(timeout_sec=0.01)
        publishers[topic].publish(message)
        if topic == 'image' or is_bad:
            sent[topic] += 1
        probe.executor.spin_once(timeout_sec=0)


def test_fault_log_throttles_each_kind_separately_and_counts_the_suppressed():
    from jointdistill_ros.diagnostics import InputFaultLog
    now, lines = [100.0], []
    log = InputFaultLog(lines.append, period_s=5.0, clock=lambda: now[0])
    assert log.report('image: data', 'short data')
    for _ in range(3):
        assert not log.report('image: data', 'short data')
    assert log.report('image: step', 'bad step')  # another kind is not held back
    now[0] += 4.9
    assert not log.report('image: data', 'short data')
    now[0] += 0.2  # 5.1 s after the first line of this kind
    assert log.report('image: data', 'short data again')
    assert lines == ['short data', 'bad step',
                     'short data again (4 more of this kind in the last 5 s)']
    assert log.report('image: step', 'bad step')  # nothing of this kind was suppressed
    assert lines[-1] == 'bad step'


@pytest.mark.ros
def test_ten_thousand_malformed_messages_are_rejected_and_good_frames_still_served(
        ros_env, tmp_path):
    from jointdistill_core.inference import Predictor
    from jointdistill_ros.image_codec import imgmsg_to_numpy

    checkpoint = save_tiny_student(tmp_path / 'student')
    good_rgb = {seed: pattern_image(HEIGHT, WIDTH, seed) for seed in range(3)}

    def good_message(ns: int, seed: int = 1) -> Image:
        return rgb_image_message(good_rgb[seed], ns, FRAME_ID)

    corpus = build_corpus(good_message)
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': 'cpu',
                  'diagnostics_period': 0.1, 'qos.profile': 'DEFAULT', 'qos.depth': 100}
    started = time.monotonic()
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('fuzzer') as probe:
        diagnostics = DiagnosticsWatcher(probe)
        depth_by_stamp: dict[int, Image] = {}
        info_by_stamp: dict[int, CameraInfo] = {}

        def key(msg) -> int:
            return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

        probe.node.create_subscription(
            Image, 'depth/image', lambda msg: depth_by_stamp.setdefault(key(msg), msg), 50)
        probe.node.create_subscription(
            CameraInfo, 'depth/camera_info', lambda msg: info_by_stamp.setdefault(key(msg), msg),
            50)
        # Subscribers to the visual outputs and the cloud make the node compute them too.
        visual_stamps: dict[str, set[int]] = {topic: set() for topic in VISUAL_OUTPUTS}
        for topic, msg_type in VISUAL_OUTPUTS.items():
            probe.node.create_subscription(
                msg_type, topic, lambda msg, topic=topic: visual_stamps[topic].add(key(msg)), 50)
        publishers = {'image': probe.node.create_publisher(Image, 'image', QoSProfile(depth=200)),
                      'camera_info': probe.node.create_publisher(CameraInfo, 'camera_info',
                                                                 QoSProfile(depth=200))}
        probe.spin_until(lambda: all(p.get_subscription_count() for p in publishers.values())
                         and diagnostics.latest is not None, 90,
                         f'the node to start (log: {node_process.log_path})')

        # 1. A good frame before the corpus (no CameraInfo yet: default intrinsics).
        publishers['image'].publish(good_message(10, seed=0))
        probe.spin_until(lambda: 10 in depth_by_stamp, 60, 'the first good frame')

        # 2. The corpus with good frames interleaved.
        send_with_flow_control(probe, publishers, diagnostics, corpus, node_process, 120)

        # 3. A usable CameraInfo, then a good frame after the corpus.
        publishers['camera_info'].publish(camera_info(HEIGHT, WIDTH, K_GOOD))
        probe.spin_until(lambda: diagnostics.value('frames_received') == BAD_IMAGES + 1
                         + len(corpus.good_stamps), 60, 'the node to take the whole corpus')
        probe.spin_for(0.3)  # the CameraInfo (sent before the last image report) is taken
        final_ns = 3 * 10**9
        publishers['image'].publish(good_message(final_ns, seed=2))
        probe.spin_until(lambda: final_ns in depth_by_stamp, 60, 'the good frame after the corpus')
        total_good = len(corpus.good_stamps) + 2
        probe.spin_until(lambda: diagnostics.value('frames_processed')
                         + diagnostics.value('frames_dropped') == total_good, 30,
                         'every good frame processed or dropped')
        probe.spin_for(0.3)
        values = dict(diagnostics.latest)
        assert not node_process.exited(), node_process.log_tail(20)
        log = node_process.log()
    elapsed = time.monotonic() - started

    # Exact accounting: every message arrived, every bad one was rejected, no good one was.
    assert int(values['frames_received']) == BAD_IMAGES + total_good
    assert int(values['frames_rejected']) == BAD_IMAGES
    assert int(values['camera_info_rejected']) == BAD_INFOS
    assert int(values['frames_processed']) + int(values['frames_dropped']) == total_good
    assert set(depth_by_stamp) <= set(corpus.good_stamps) | {10, final_ns}

    # Good frames before and after equal the Predictor's output on the same image.
    predictor = Predictor.from_checkpoint(checkpoint, device='cpu')
    for ns, seed in ((10, 0), (final_ns, 2)):
        expected_depth = predictor.predict(good_rgb[seed]).depth
        np.testing.assert_allclose(imgmsg_to_numpy(depth_by_stamp[ns]), expected_depth,
                                   rtol=1e-5, atol=1e-5)
    # Before any CameraInfo: default intrinsics; after the corpus: the last usable K.
    assert not np.allclose(np.reshape(info_by_stamp[10].k, (3, 3)), K_GOOD)
    np.testing.assert_allclose(np.reshape(info_by_stamp[final_ns].k, (3, 3)), K_GOOD)

    # Each kind of fault is logged, rate-limited (at most one line per kind per 5 s).
    reject_lines = re.findall(r"rejected a malformed message on '/image': (\w+)", log)
    for kind, fields in LOGGED_FIELD.items():
        assert re.search(fields, ' '.join(reject_lines)), f'{kind} never logged'
    assert "ignored an unusable message on '/camera_info'" in log
    logged_kinds = len(set(reject_lines)) + 1
    assert len(reject_lines) <= logged_kinds * (elapsed / 5.0 + 1), len(reject_lines)
    assert 'more of this kind' in log  # suppressed repeats are summarised, not lost
    assert 'Traceback' not in log and 'inference failed' not in log
    # Every output of every processed frame, the unusual ones included, was published.
    for topic, stamps in visual_stamps.items():
        assert final_ns in stamps and len(stamps) >= len(corpus.good_stamps) // 2, topic
    print(f'\n{BAD_IMAGES} bad images, {BAD_INFOS} bad CameraInfo, {total_good} good frames in '
          f'{elapsed:.1f} s; {len(reject_lines)} reject log lines; '
          f"processed {values['frames_processed']}, dropped {values['frames_dropped']}")


# ------------------------------------------------------------------ CompressedImage input
BAD_COMPRESSED = 2_000
GOOD_COMPRESSED_EVERY = 200
COMPRESSED_FAULTS = ('empty', 'garbage', 'truncated_jpeg', 'truncated_png', 'corrupt_png',
                     'header_only_jpeg', 'forged_size', 'unsupported_format')


def bad_compressed(kind: str, rng: np.random.Generator, index: int, jpeg: bytes,
                   png: bytes) -> CompressedImage:
    """One malformed CompressedImage of the given kind, from rng and a good JPEG and PNG."""
    fmt, data = 'rgb8; jpeg compressed bgr8', b''
    if kind == 'garbage':
        data = rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes()
    elif kind == 'truncated_jpeg':
        data = jpeg[:int(rng.integers(2, len(jpeg) - 2))]
    elif kind == 'truncated_png':
        fmt, data = 'rgb8; png compressed bgr8', png[:int(rng.integers(8, len(png) - 16))]
    elif kind == 'corrupt_png':  # a flipped byte in the image data: the checksum fails
        corrupt = bytearray(png)
        corrupt[int(rng.integers(60, len(png) - 20))] ^= 0xFF
        fmt, data = 'png', bytes(corrupt)
    elif kind == 'header_only_jpeg':
        data = jpeg[:20] + bytes(int(rng.integers(0, 64))) + b'\xff\xd9'
    elif kind == 'forged_size':  # a PNG header claiming 30000 x 30000 pixels
        data = png[:16] + struct.pack('>II', 30_000, 30_000) + png[24:]
    elif kind == 'unsupported_format':
        fmt = str(rng.choice(['tiff', 'theora', '16UC1; compressedDepth png', '']))
        data = png
    return CompressedImage(header=Header(stamp=stamp(10**9 + index), frame_id=FRAME_ID),
                           format=fmt, data=data)


@pytest.mark.ros
def test_malformed_compressed_images_are_rejected_and_every_good_frame_answered(
        ros_env, tmp_path):
    from jointdistill_core.bags.codec import encode_compressed_image
    from jointdistill_core.bags.compressed import compressed_to_rgb
    from jointdistill_core.inference import Predictor
    from jointdistill_ros.image_codec import imgmsg_to_numpy

    checkpoint = save_tiny_student(tmp_path / 'student')
    rng = np.random.default_rng(SEED + 2)
    rgb = pattern_image(HEIGHT, WIDTH, seed=4)
    jpeg = encode_compressed_image(rgb, 'jpeg', 0).data.tobytes()
    png = encode_compressed_image(rgb, 'png', 0).data.tobytes()
    good: dict[int, CompressedImage] = {}
    corpus: list[tuple[CompressedImage, bool]] = []
    for index in range(BAD_COMPRESSED):
        corpus.append((bad_compressed(COMPRESSED_FAULTS[index % len(COMPRESSED_FAULTS)], rng,
                                      index, jpeg, png), True))
        if (index + 1) % GOOD_COMPRESSED_EVERY == 0:
            ns = 2 * 10**9 + index
            frame = pattern_image(HEIGHT, WIDTH, seed=index)
            encoded = encode_compressed_image(frame, 'jpeg' if len(good) % 2 else 'png', ns)
            good[ns] = CompressedImage(header=Header(stamp=stamp(ns), frame_id=FRAME_ID),
                                       format=encoded.format, data=encoded.data.tobytes())
            corpus.append((good[ns], False))
    parameters = {'model_path': str(checkpoint), 'autostart': True, 'device': 'cpu',
                  'transport': 'compressed', 'diagnostics_period': 0.1,
                  'qos.profile': 'DEFAULT', 'qos.depth': 100}
    started = time.monotonic()
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('fuzzer') as probe:
        diagnostics = DiagnosticsWatcher(probe)
        depth_by_stamp: dict[int, Image] = {}
        probe.node.create_subscription(
            Image, 'depth/image',
            lambda msg: depth_by_stamp.setdefault(msg.header.stamp.sec * 10**9
                                                  + msg.header.stamp.nanosec, msg), 50)
        publisher = probe.node.create_publisher(CompressedImage, 'image/compressed',
                                                QoSProfile(depth=200))
        probe.spin_until(lambda: publisher.get_subscription_count() > 0
                         and diagnostics.latest is not None, 90,
                         f'the node to start (log: {node_process.log_path})')
        sent = 0
        for message, is_bad in corpus:
            while sent - diagnostics.value('frames_received') >= WINDOW:
                assert not node_process.exited(), node_process.log_tail(20)
                probe.executor.spin_once(timeout_sec=0.01)
            publisher.publish(message)
            sent += 1
            if not is_bad:  # each good frame is answered before the corpus goes on
                ns = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
                probe.spin_until(lambda ns=ns: ns in depth_by_stamp, 60,
                                 f'the output of good frame {ns}')
            probe.executor.spin_once(timeout_sec=0)
        probe.spin_until(lambda: diagnostics.value('frames_received') == len(corpus), 60,
                         'the node to take the whole corpus')
        probe.spin_for(0.3)
        values = dict(diagnostics.latest)
        assert not node_process.exited(), node_process.log_tail(20)
        log = node_process.log()
    elapsed = time.monotonic() - started

    assert int(values['frames_received']) == len(corpus)
    assert int(values['frames_rejected']) == BAD_COMPRESSED
    assert (int(values['frames_processed']), int(values['frames_dropped'])) == (len(good), 0)
    assert set(depth_by_stamp) == set(good)
    predictor = Predictor.from_checkpoint(checkpoint, device='cpu')
    for ns, message in good.items():
        expected = predictor.predict(compressed_to_rgb(message)).depth
        np.testing.assert_allclose(imgmsg_to_numpy(depth_by_stamp[ns]), expected, rtol=1e-5,
                                   atol=1e-5)
    reject_lines = re.findall(r"rejected a malformed message on '/image/compressed': (\w+)", log)
    assert set(reject_lines) == {'data', 'format'}, set(reject_lines)
    assert len(reject_lines) <= 2 * (elapsed / 5.0 + 1), len(reject_lines)  # rate-limited
    assert 'Traceback' not in log and 'inference failed' not in log
    print(f'\n{BAD_COMPRESSED} bad and {len(good)} good CompressedImage in {elapsed:.1f} s; '
          f'{len(reject_lines)} reject log lines')
