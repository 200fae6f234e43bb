"""Topic layout, clocks and errors shared by the bag writer, reader, player and evaluator."""
from __future__ import annotations

from dataclasses import dataclass

from rosbags.typesys import Stores, get_typestore

# rosbags' Kilted message definitions: the same RIHS01 type hashes as the rclpy wheels.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'

FRAME_ID = 'camera_optical_frame'
# Bags start at a fixed time (2023-11-14 22:13:20 UTC) so that two runs give identical files.
DEFAULT_START_NS = 1_700_000_000 * 10**9
STORAGES = ('mcap', 'sqlite3')


class BagError(Exception):
    """A bag that cannot be used: missing, truncated, wrong topics or inconsistent sizes."""


@dataclass(frozen=True)
class CameraTopics:
    """Topic names of a camera bag: the input image, its intrinsics and ground truth."""

    image: str = '/camera/image_raw'
    camera_info: str = '/camera/camera_info'
    depth_gt: str = '/camera/depth_gt'
    labels_gt: str = '/camera/labels_gt'


@dataclass(frozen=True)
class OutputTopics:
    """Topic names of the perception node's outputs (node in the root namespace)."""

    depth: str = '/depth/image'
    labels: str = '/segmentation/labels'


def frame_stamp_ns(index: int, rate_hz: float, start_ns: int = DEFAULT_START_NS) -> int:
    """Header stamp (ns) of frame `index` when frames are spaced by 1 / rate_hz seconds."""
    if rate_hz <= 0:
        raise ValueError(f'rate must be > 0 Hz, got {rate_hz}')
    return start_ns + round(index * 1e9 / rate_hz)
