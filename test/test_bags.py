"""Camera bags: `jointdistill bag make|from-dataset|info`, read back with rosbags, decoded by
rclpy, and the error paths of the ROS-free reader (missing topic, truncated file, GT size).
Bags as robots record them (bag_fixtures): compressed images, RGB-D depth stamped apart from
the colour, `ros2 bag record` recordings, ROS 1 bags converted by rosbags-convert."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CameraInfo, Image

from bag_fixtures import (
    MAX_16UC1_DEPTH_M,
    compressed_depth_png,
    write_recorded_rgbd_bag,
    write_ros1_converted_bag,
)
from jointdistill_core.bags import codec
from jointdistill_core.bags.layout import TYPESTORE, BagError
from jointdistill_core.bags.reader import (
    FrameStats,
    PartCounts,
    bag_topics,
    iter_camera_frames,
    match_nearest,
)
from jointdistill_core.bags.writer import BagWriter
from jointdistill_core.cli import main
from jointdistill_core.data.synthetic import render_scene

START_NS = 1_700_000_000 * 10**9
RATE_HZ = 4.0
SEED = 101          # frames 101-103: an office (no sky), a curve and an intersection
FRAMES = 3
HEIGHT, WIDTH = 24, 32


def rclpy_type_hash(msgtype: str) -> str:
    """The RIHS01 hash shipped with the rclpy message wheels (an independent source)."""
    import sensor_msgs
    share = Path(sensor_msgs.__file__).resolve().parents[3] / 'share'
    if not (share / f'{msgtype}.json').exists():
        share = Path(__import__('sys').prefix) / 'share'
    description = json.loads((share / f'{msgtype}.json').read_text())
    return next(h['hash_string'] for h in description['type_hashes'] if h['type_name'] == msgtype)


def image_pixels(msg: Image, dtype, channels: int) -> np.ndarray:
    """Decode an rclpy Image by hand (unpadded rows, little endian, as the writer promises)."""
    assert msg.is_bigendian == 0
    assert msg.step == msg.width * channels * np.dtype(dtype).itemsize
    array = np.frombuffer(bytes(msg.data), dtype)
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return array.reshape(shape)


@pytest.fixture(params=['mcap', 'sqlite3'])
def made_bag(request, tmp_path) -> tuple[Path, str]:
    bag = tmp_path / f'bag_{request.param}'
    code = main(['bag', 'make', '--out', str(bag), '--frames', str(FRAMES), '--size',
                 f'{HEIGHT}x{WIDTH}', '--rate', str(RATE_HZ), '--storage', request.param,
                 '--seed', str(SEED)])
    assert code == 0
    return bag, request.param


def test_make_reads_back_in_rclpy_identical_to_the_renderer(made_bag):
    bag, storage = made_bag
    metadata = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert metadata['version'] == 9
    assert metadata['storage_identifier'] == storage
    topics = {t['topic_metadata']['name']: t for t in metadata['topics_with_message_count']}
    assert set(topics) == {'/camera/image_raw', '/camera/camera_info', '/camera/depth_gt',
                           '/camera/labels_gt'}
    for entry in topics.values():
        meta = entry['topic_metadata']
        assert entry['message_count'] == FRAMES
        assert meta['serialization_format'] == 'cdr'
        assert meta['type_description_hash'] == rclpy_type_hash(meta['type'])

    seen = {topic: [] for topic in topics}
    with Reader(bag) as reader:
        for connection, log_time, raw in reader.messages():
            cls = CameraInfo if connection.msgtype == 'sensor_msgs/msg/CameraInfo' else Image
            msg = deserialize_message(bytes(raw), cls)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert log_time == stamp
            assert msg.header.frame_id == 'camera_optical_frame'
            seen[connection.topic].append((stamp, msg))

    sky_seen = False
    for index in range(FRAMES):
        scene = render_scene(SEED + index, HEIGHT, WIDTH)
        expected_stamp = START_NS + round(index * 1e9 / RATE_HZ)
        stamp, image = seen['/camera/image_raw'][index]
        assert stamp == expected_stamp
        assert (image.encoding, image.height, image.width) == ('rgb8', HEIGHT, WIDTH)
        np.testing.assert_array_equal(image_pixels(image, np.uint8, 3), scene.image)

        stamp, depth = seen['/camera/depth_gt'][index]
        assert (stamp, depth.encoding) == (expected_stamp, '32FC1')
        depth_m = image_pixels(depth, '<f4', 1)
        valid = scene.depth > 0
        np.testing.assert_array_equal(depth_m[valid], scene.depth[valid])
        assert np.isnan(depth_m[~valid]).all()             # sky is NaN (REP 117)
        sky_seen |= bool((~valid).any())

        stamp, labels = seen['/camera/labels_gt'][index]
        assert (stamp, labels.encoding) == (expected_stamp, 'mono8')
        np.testing.assert_array_equal(image_pixels(labels, np.uint8, 1), scene.labels)

        stamp, info = seen['/camera/camera_info'][index]
        assert (stamp, info.height, info.width) == (expected_stamp, HEIGHT, WIDTH)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), scene.K)
        np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3], scene.K)
    assert sky_seen        # outdoor frames among them (indoor ones have no sky)


def test_frames_reader_pairs_by_stamp(made_bag):
    bag, _ = made_bag
    frames = list(iter_camera_frames(bag))
    expected = [START_NS + round(i * 1e9 / RATE_HZ) for i in range(FRAMES)]
    assert [f.stamp_ns for f in frames] == expected
    scene = render_scene(SEED + 2, HEIGHT, WIDTH)
    np.testing.assert_array_equal(frames[2].image, scene.image)
    np.testing.assert_array_equal(frames[2].labels, scene.labels)
    np.testing.assert_array_equal(np.nan_to_num(frames[2].depth, nan=0.0), scene.depth)


def test_make_refuses_existing_dir_unless_force(tmp_path, capsys):
    bag = tmp_path / 'bag'
    arguments = ['bag', 'make', '--out', str(bag), '--frames', '1', '--size', '16x16']
    assert main(arguments) == 0
    before = (bag / 'metadata.yaml').read_text()
    assert main(arguments + ['--seed', '5']) == 2
    assert 'exists already' in capsys.readouterr().err
    assert (bag / 'metadata.yaml').read_text() == before
    assert main(arguments + ['--frames', '2', '--force']) == 0
    assert 'message_count: 8' in (bag / 'metadata.yaml').read_text()

    not_a_bag = tmp_path / 'notes'
    not_a_bag.mkdir()
    (not_a_bag / 'keep.txt').write_text('precious')
    assert main(['bag', 'make', '--out', str(not_a_bag), '--frames', '1', '--force']) == 2
    assert 'not a rosbag2 directory' in capsys.readouterr().err
    assert (not_a_bag / 'keep.txt').read_text() == 'precious'


def test_from_dataset_writes_the_dataset_samples(tmp_path, capsys):
    from jointdistill_core.data.registry import build_dataset
    bag = tmp_path / 'ds'
    assert main(['bag', 'from-dataset', '--data', 'synthetic', '--split', 'val', '--frames', '2',
                 '--size', '32x48', '--out', str(bag), '--storage', 'sqlite3', '--rate', '10']) == 0
    dataset, _ = build_dataset('synthetic', 'val', size=(32, 48), num_frames=2)
    frames = list(iter_camera_frames(bag))
    assert [f.stamp_ns for f in frames] == [START_NS, START_NS + 100_000_000]
    for frame, sample in zip(frames, dataset):
        image = np.rint(sample['image'].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(frame.image, image)
        np.testing.assert_array_equal(frame.labels, sample['labels'].numpy())
        np.testing.assert_allclose(np.nan_to_num(frame.depth), sample['depth'].numpy()[0])
        np.testing.assert_allclose(frame.K, sample['K'].numpy())
    assert main(['bag', 'info', str(bag)]) == 0
    listing = capsys.readouterr().out
    assert '/camera/image_raw' in listing and 'messages: 8' in listing


def test_decoders_honour_padding_and_byte_order():
    depth = np.array([[1.5, 2.0, np.nan], [4.0, 0.25, 8.0]], np.float32)
    msg = codec.encode_image(depth, '32FC1', 5)
    # Re-pack by hand as big endian with 4 padding bytes per row.
    rows = [np.concatenate([depth[r].astype('>f4').view(np.uint8), np.zeros(4, np.uint8)])
            for r in range(2)]
    msg.data, msg.step, msg.is_bigendian = np.concatenate(rows), 16, 1
    np.testing.assert_array_equal(codec.decode_depth(msg), depth)
    millimetres = codec.encode_image(np.array([[0, 1500]], np.uint16), '16UC1', 5)
    decoded = codec.decode_depth(millimetres)
    assert np.isnan(decoded[0, 0]) and decoded[0, 1] == pytest.approx(1.5)
    bgr = codec.encode_image(np.array([[[1, 2, 3]]], np.uint8), 'bgr8', 5)
    np.testing.assert_array_equal(codec.decode_rgb(bgr), [[[3, 2, 1]]])
    with pytest.raises(BagError, match='not a mono8 label image'):
        codec.decode_labels(bgr, '/labels')


def test_truncated_mcap_is_one_clear_error(tmp_path, capsys):
    bag = tmp_path / 'bag'
    assert main(['bag', 'make', '--out', str(bag), '--frames', '2', '--size', '16x16']) == 0
    mcap = next(bag.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    capsys.readouterr()
    assert main(['bag', 'info', str(bag)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and 'truncated' in error[0] and str(bag) in error[0]


def test_missing_topic_and_size_mismatch_are_clear_errors(tmp_path):
    bag = tmp_path / 'mismatch'
    with BagWriter(bag, 'mcap') as writer:
        writer.write_frame(START_NS, np.zeros((8, 12, 3), np.uint8),
                           depth=np.ones((8, 12), np.float32), labels=np.zeros((4, 6), np.uint8))
    with pytest.raises(BagError, match=r'/camera/labels_gt is 6x4 but /camera/image_raw is 12x8'):
        list(iter_camera_frames(bag))
    from jointdistill_core.bags.layout import CameraTopics
    with pytest.raises(BagError, match=r'no image topic /front/image'):
        list(iter_camera_frames(bag, CameraTopics(image='/front/image')))
    with pytest.raises(BagError, match='does not exist'):
        list(iter_camera_frames(tmp_path / 'nothing'))


def test_interrupted_write_leaves_nothing(tmp_path):
    bag = tmp_path / 'bag'
    with pytest.raises(RuntimeError):
        with BagWriter(bag, 'mcap') as writer:
            writer.write_frame(START_NS, np.zeros((8, 8, 3), np.uint8))
            raise RuntimeError('interrupted')
    assert not bag.exists() and list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)


# ------------------------------------------------------------ bags as robots record them
@pytest.mark.parametrize('compression', ['jpeg', 'png'])
def test_make_compressed_writes_what_image_transport_publishes(tmp_path, compression):
    from sensor_msgs.msg import CompressedImage
    bag = tmp_path / f'bag_{compression}'
    assert main(['bag', 'make', '--out', str(bag), '--frames', '2', '--size',
                 f'{HEIGHT}x{WIDTH}', '--seed', str(SEED), '--compressed', compression]) == 0
    topics = {name: msgtype for name, (msgtype, _) in bag_topics(bag).items()}
    assert topics == {'/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                      '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
                      '/camera/depth_gt': 'sensor_msgs/msg/Image',
                      '/camera/labels_gt': 'sensor_msgs/msg/Image'}
    with Reader(bag) as reader:
        connection = next(c for c in reader.connections if c.topic.endswith('/compressed'))
        raw = next(raw for _, _, raw in reader.messages(connections=[connection]))
    msg = deserialize_message(bytes(raw), CompressedImage)  # rclpy reads it
    assert msg.format == f'rgb8; {compression} compressed bgr8'
    # The reader finds the image on /camera/image_raw/compressed (the default --image-topic
    # names the base topic, as image_transport does).
    frames = list(iter_camera_frames(bag))
    scene = render_scene(SEED, HEIGHT, WIDTH)
    error = np.abs(frames[0].image.astype(int) - scene.image)
    if compression == 'png':
        assert error.max() == 0
    else:
        assert 0 < error.mean() < 12  # lossy, same picture
    np.testing.assert_array_equal(frames[0].labels, scene.labels)


def test_match_nearest_takes_the_nearest_image_once_within_the_slop():
    images = np.array([100, 200, 300, 400], np.int64)
    # 103 -> 100; 196 and 201 -> 200, the nearer (201) wins; 252 -> 300 (48 away); 350, as
    # far from 300 as from 400, goes to 300 where 252 is nearer; 470 is 70 from 400: too far.
    stamps = [103, 196, 201, 252, 350, 470]
    assert match_nearest(images, stamps, slop_ns=50) == {0: 100, 2: 200, 3: 300}
    assert match_nearest(images, stamps, slop_ns=2) == {2: 200}  # only 201 is that near
    assert match_nearest(images, stamps, slop_ns=70) == {0: 100, 2: 200, 3: 300, 5: 400}
    assert match_nearest(images, [350], slop_ns=50) == {0: 300}  # equally near: the earlier
    assert match_nearest(images, [204, 196], slop_ns=10) == {0: 200}  # equally near: the first
    assert match_nearest(np.array([], np.int64), stamps, slop_ns=50) == {}


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_rgbd_recording_of_ros2_bag_record_reads_with_depth_7_us_after_colour(tmp_path, storage):
    recording = write_recorded_rgbd_bag(tmp_path / 'rgbd', storage, depth_offset_ns=7_000)
    metadata = yaml.safe_load((recording.path / 'metadata.yaml').read_text())
    info = metadata['rosbag2_bagfile_information']
    assert (info['version'], info['storage_identifier']) == (9, storage)
    for entry in info['topics_with_message_count']:
        meta = entry['topic_metadata']
        assert meta['serialization_format'] == 'cdr'
        # The shape `ros2 bag record` writes (rosbag2's own test bags, Jazzy and later).
        (qos,) = meta['offered_qos_profiles']
        assert qos['history'] == 'unknown' and qos['reliability'] == 'best_effort'
        assert qos['deadline'] == {'sec': 9223372036, 'nsec': 854775807}
    stats = FrameStats()
    frames = list(iter_camera_frames(recording.path, recording.topics, stats))
    assert [f.stamp_ns for f in frames] == recording.image_stamps
    assert stats.parts['depth'] == PartCounts(matched=4)
    assert stats.parts['camera_info'] == PartCounts(matched=4)
    for frame, scene in zip(frames, recording.scenes):
        valid = (scene.depth > 0) & (scene.depth < MAX_16UC1_DEPTH_M)
        np.testing.assert_allclose(frame.depth[valid], scene.depth[valid], atol=6e-4)  # 0.5 mm+
        assert np.isnan(frame.depth[~valid]).all()
        np.testing.assert_allclose(frame.K, scene.K, rtol=1e-6)
        assert np.abs(frame.image.astype(int) - scene.image).mean() < 12  # JPEG colour
    # A tolerance below the offset: the depth images match nothing, and are counted.
    stats = FrameStats()
    frames = list(iter_camera_frames(recording.path, recording.topics, stats, slop_ns=5_000))
    assert len(frames) == 4 and all(f.depth is None for f in frames)
    assert stats.parts['depth'] == PartCounts(matched=0, unmatched=4)


def test_compressed_depth_recording_reads_as_metres(tmp_path):
    recording = write_recorded_rgbd_bag(tmp_path / 'rgbd', colour='png',
                                        depth_encoding='compressedDepth')
    frames = list(iter_camera_frames(recording.path, recording.topics))
    for frame, scene in zip(frames, recording.scenes):
        np.testing.assert_array_equal(frame.image, scene.image)  # PNG: lossless
        valid = (scene.depth > 0) & (scene.depth < MAX_16UC1_DEPTH_M)
        np.testing.assert_allclose(frame.depth[valid], scene.depth[valid], atol=6e-4)
        assert np.isnan(frame.depth[~valid]).all()


def test_ros1_bag_converted_by_rosbags_convert(tmp_path, capsys):
    recording = write_ros1_converted_bag(tmp_path / 'converted', tmp_path)
    info = yaml.safe_load((recording.path / 'metadata.yaml').read_text())
    info = info['rosbag2_bagfile_information']
    assert info['version'] == 8 and info['storage_identifier'] == 'sqlite3'
    assert main(['bag', 'info', str(recording.path)]) == 0
    assert '/camera/rgb/image_raw/compressed' in capsys.readouterr().out
    stats = FrameStats()
    frames = list(iter_camera_frames(recording.path, recording.topics, stats))
    assert [f.stamp_ns for f in frames] == recording.image_stamps  # Header.seq dropped
    assert stats.parts['depth'].matched == stats.parts['camera_info'].matched == 3
    for frame, scene in zip(frames, recording.scenes):
        valid = (scene.depth > 0) & (scene.depth < MAX_16UC1_DEPTH_M)
        np.testing.assert_allclose(frame.depth[valid], scene.depth[valid], atol=6e-4)
        np.testing.assert_allclose(frame.K, scene.K, rtol=1e-6)


def test_corrupt_compressed_frames_are_counted_and_skipped(tmp_path):
    bag = tmp_path / 'corrupt'
    images = [render_scene(SEED + index, HEIGHT, WIDTH).image for index in range(3)]
    with BagWriter(bag, 'mcap') as writer:
        for index, image in enumerate(images):
            stamp = START_NS + index * 10**8
            msg = codec.encode_compressed_image(image, 'jpeg', stamp)
            if index == 1:
                msg.data = msg.data[:len(msg.data) // 2]  # cut off in transit
            writer.write_message('/camera/image_raw/compressed', msg, stamp)
            depth = TYPESTORE.types['sensor_msgs/msg/CompressedImage'](
                header=codec.make_header(stamp), format='16UC1; compressedDepth png',
                data=np.frombuffer(compressed_depth_png(np.full((HEIGHT, WIDTH), 2.0)),
                                   np.uint8))
            if index == 2:
                depth.data = depth.data[:40]
            writer.write_message('/camera/depth_gt/compressedDepth', depth, stamp)
    stats = FrameStats()
    frames = list(iter_camera_frames(bag, stats=stats))
    assert [f.stamp_ns for f in frames] == [START_NS, START_NS + 2 * 10**8]
    assert stats.undecodable_images == 1 and stats.parts['depth'].undecodable == 1
    assert frames[0].depth is not None and frames[1].depth is None
    np.testing.assert_allclose(frames[0].depth, 2.0)
