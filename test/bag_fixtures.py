"""Camera bags as robots record them, written in the tests with rosbags (the project's writer).

- `write_recorded_rgbd_bag`: a RealSense-style RGB-D recording as `ros2 bag record` leaves it
  (sqlite3 or mcap, metadata version 9 with its offered_qos_profiles, log time = receive time,
  unrelated topics beside the camera's), colour as JPEG or PNG CompressedImage, aligned depth
  as 16UC1 millimetres or compressedDepth PNG, stamped `depth_offset_ns` after the colour.
- `write_ros1_converted_bag`: a ROS 1 bag (rosbags' rosbag1 writer, noetic types) converted by
  rosbags-convert into metadata version 8 with the humble type store.

Frames are synthetic street scenes (render_scene), so every test knows the truth.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from jointdistill_core.bags import codec
from jointdistill_core.bags.layout import TYPESTORE, CameraTopics
from jointdistill_core.data.synthetic import render_scene

START_NS = 1_700_000_000 * 10**9
# realsense-ros 4.x names (camera_namespace and camera_name both 'camera').
REALSENSE = CameraTopics(image='/camera/camera/color/image_raw',
                         camera_info='/camera/camera/color/camera_info',
                         depth_gt='/camera/camera/aligned_depth_to_color/image_raw',
                         labels_gt='/camera/camera/labels')
# What `ros2 bag record` writes for a publisher with the sensor-data profile (Jazzy, Kilted).
INFINITE = QosTime(sec=9223372036, nsec=854775807)
RECORDED_QOS = Qos(history=QosHistory.UNKNOWN, depth=0, reliability=QosReliability.BEST_EFFORT,
                   durability=QosDurability.VOLATILE, deadline=INFINITE, lifespan=INFINITE,
                   liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=INFINITE,
                   avoid_ros_namespace_conventions=False)
_PLUGINS = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
MAX_16UC1_DEPTH_M = 65.5


@dataclass
class Recording:
    """What a test bag holds: per frame the scene (image, depth, labels, K) and stamps."""

    path: Path
    topics: CameraTopics
    scenes: list
    image_stamps: list[int]
    depth_stamps: list[int]


def depth_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """16UC1 depth as a depth camera publishes it: millimetres, 0 = invalid or beyond range
    (here: 65.5 m and more, which 16 bits cannot hold)."""
    valid = np.isfinite(depth_m) & (depth_m > 0) & (depth_m < MAX_16UC1_DEPTH_M)
    return np.where(valid, np.rint(depth_m * 1000.0), 0).astype(np.uint16)


def compressed_depth_png(depth_m: np.ndarray) -> bytes:
    """compressed_depth_image_transport's 16UC1 payload: ConfigHeader (int32 format INV_DEPTH=0,
    float32 depthQuantA and depthQuantB, unused for 16UC1) + a 16-bit PNG of millimetres."""
    ok, png = cv2.imencode('.png', depth_millimetres(depth_m))
    assert ok
    return struct.pack('<iff', 0, 0.0, 0.0) + png.tobytes()


def _depth_message(depth: np.ndarray, stamp_ns: int, depth_encoding: str, frame_id: str):
    if depth_encoding == 'compressedDepth':
        message_type = TYPESTORE.types['sensor_msgs/msg/CompressedImage']
        return message_type(header=codec.make_header(stamp_ns, frame_id),
                            format='16UC1; compressedDepth png',
                            data=np.frombuffer(compressed_depth_png(depth), np.uint8))
    return codec.encode_image(depth_millimetres(depth), '16UC1', stamp_ns, frame_id)


def write_recorded_rgbd_bag(path: Path, storage: str = 'mcap', frames: int = 4,
                            rate_hz: float = 30.0, size: tuple[int, int] = (48, 64),
                            depth_offset_ns: int = 7_000, colour: str = 'jpeg',
                            depth_encoding: str = '16UC1', seed: int = 900) -> Recording:
    """A RealSense-style recording (see the module docstring). Depth topic: the raw one for
    16UC1, <depth>/compressedDepth for compressedDepth; colour on <image>/compressed."""
    topics = REALSENSE
    depth_topic = topics.depth_gt + ('/compressedDepth' if depth_encoding == 'compressedDepth'
                                     else '')
    Log, TF = TYPESTORE.types['rcl_interfaces/msg/Log'], TYPESTORE.types['tf2_msgs/msg/TFMessage']
    scenes, image_stamps, depth_stamps, messages = [], [], [], []
    for index in range(frames):
        scene = render_scene(seed + index, *size)
        stamp = START_NS + round(index * 1e9 / rate_hz)
        depth_stamp = stamp + depth_offset_ns
        receive = stamp + 2_000_000 + 137 * index  # log time: when the recorder got it
        messages += [
            (receive, topics.image + '/compressed',
             codec.encode_compressed_image(scene.image, colour, stamp, 'camera_color_optical')),
            (receive + 50_000, topics.camera_info,
             codec.encode_camera_info(scene.K, *size, stamp, 'camera_color_optical')),
            (receive + 1_000_000, depth_topic,
             _depth_message(scene.depth, depth_stamp, depth_encoding, 'camera_color_optical')),
            (receive + 3_000, '/tf', TF(transforms=[])),
            (receive + 4_000, '/rosout', Log(stamp=codec.make_header(stamp).stamp, level=20,
                                             name='camera', msg='frame', file='', function='',
                                             line=0)),
        ]
        scenes.append(scene)
        image_stamps.append(stamp)
        depth_stamps.append(depth_stamp)
    with Writer(path, version=9, storage_plugin=_PLUGINS[storage]) as writer:
        connections = {}
        for log_time, topic, msg in sorted(messages, key=lambda item: item[0]):
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, msg.__msgtype__, typestore=TYPESTORE,
                    offered_qos_profiles=[RECORDED_QOS])
            writer.write(connections[topic], log_time, codec.serialize(msg))
    metadata_path = path / 'metadata.yaml'
    metadata = yaml.safe_load(metadata_path.read_text())
    metadata['rosbag2_bagfile_information']['ros_distro'] = 'jazzy'  # as the recorder says
    metadata_path.write_text(yaml.safe_dump(metadata))
    return Recording(path, topics, scenes, image_stamps, depth_stamps)


def write_ros1_converted_bag(path: Path, scratch: Path, frames: int = 3,
                             size: tuple[int, int] = (40, 56), seed: int = 950) -> Recording:
    """A ROS 1 bag (noetic types, Header with seq; JPEG CompressedImage colour, 16UC1 depth,
    CameraInfo) converted by `rosbags-convert --dst-version 8 --dst-typestore ros2_humble`."""
    from rosbags.rosbag1 import Writer as Ros1Writer

    noetic = get_typestore(Stores.ROS1_NOETIC)
    types = noetic.types
    Header, Time = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    topics = CameraTopics(image='/camera/rgb/image_raw', camera_info='/camera/rgb/camera_info',
                          depth_gt='/camera/depth_registered/image_raw', labels_gt='/labels')
    scenes, stamps = [], []
    ros1_bag = scratch / 'recording.bag'
    with Ros1Writer(ros1_bag) as writer:
        connections = {
            topics.image + '/compressed': 'sensor_msgs/msg/CompressedImage',
            topics.depth_gt: 'sensor_msgs/msg/Image', topics.camera_info:
            'sensor_msgs/msg/CameraInfo'}
        connections = {topic: writer.add_connection(topic, msgtype, typestore=noetic)
                       for topic, msgtype in connections.items()}
        for index in range(frames):
            scene = render_scene(seed + index, *size)
            stamp = START_NS + index * 100_000_000
            header = Header(seq=index, stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9),
                            frame_id='camera_rgb_optical_frame')
            ros2 = codec.encode_compressed_image(scene.image, 'jpeg', stamp)
            jpeg = types['sensor_msgs/msg/CompressedImage'](header=header, format=ros2.format,
                                                            data=ros2.data)
            depth = codec.encode_image(depth_millimetres(scene.depth), '16UC1', stamp)
            depth1 = types['sensor_msgs/msg/Image'](
                header=header, height=depth.height, width=depth.width, encoding='16UC1',
                is_bigendian=0, step=depth.step, data=depth.data)
            info = codec.encode_camera_info(scene.K, *size, stamp)
            info1 = types['sensor_msgs/msg/CameraInfo'](
                header=header, height=info.height, width=info.width,
                distortion_model=info.distortion_model, D=info.d, K=info.k, R=info.r, P=info.p,
                binning_x=0, binning_y=0, roi=types['sensor_msgs/msg/RegionOfInterest'](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            for topic, msg in ((topics.image + '/compressed', jpeg), (topics.depth_gt, depth1),
                               (topics.camera_info, info1)):
                writer.write(connections[topic], stamp + 1_000_000,
                             noetic.serialize_ros1(msg, msg.__msgtype__))
            scenes.append(scene)
            stamps.append(stamp)
    convert = shutil.which('rosbags-convert', path=str(Path(sys.executable).parent))
    assert convert, 'rosbags-convert is installed with rosbags (requirements.txt)'
    subprocess.run([convert, '--src', str(ros1_bag), '--dst', str(path), '--dst-version', '8',
                    '--dst-typestore', 'ros2_humble'], check=True, capture_output=True,
                   timeout=120)
    return Recording(path, topics, scenes, stamps, stamps)
