"""Topic layout, clocks and errors shared by the bag writer, reader, player and evaluator."""
from __future__ import annotations

from dataclasses import dataclass

from rosbags.typesys import Stores, get_typestore

# rosbags' Kilted message definitions: the same RIHS01 type hashes as the rclpy wheels.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
# image_transport's sub-topics of a base image topic.
COMPRESSED_SUFFIX = '/compressed'
COMPRESSED_DEPTH_SUFFIX = '/compressedDepth'

FRAME_ID = 'camera_optical_frame'
# Bags start at a fixed time (2023-11-14 22:13:20 UTC) so that two runs give identical files.
DEFAULT_START_NS = 1_700_000_000 * 10**9
STORAGES = ('mcap', 'sqlite3')
# Ground truth and camera_info match an image whose header stamp is at most this far from
# theirs (docs/bags.md): RGB-D cameras stamp colour and depth separately, microseconds to
# milliseconds apart, and 15 ms stays below half the frame period of a 30 Hz camera.
DEFAULT_SLOP_NS = 15_000_000
# Lock-step replay (bag eval): seconds to wait for the outputs of one frame before the next.
DEFAULT_FRAME_TIMEOUT_S = 10.0


class BagError(Exception):
    """A bag that cannot be used: missing, truncated, wrong topics or inconsistent sizes."""


class ImageCodecError(ValueError):
    """An image message or array that cannot be converted.

    `field` is the field at fault (encoding, height, width, step, data, format or array); the
    message, which starts with it, says what is wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


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
