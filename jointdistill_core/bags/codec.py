"""ROS-free conversion between numpy arrays and rosbags' sensor_msgs messages.

rosbags' message classes mirror the ROS ones field by field, so their CDR bytes are what an
rclpy publisher sends. Image decoders honour `step` (padded rows) and `is_bigendian`; the
image and depth decoders also take CompressedImage messages (jointdistill_core.bags.compressed:
JPEG / PNG images, compressedDepth PNG depth), which raise ImageCodecError for corrupt data.
"""
from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from jointdistill_core.bags.compressed import compressed_depth_to_metres, compressed_to_rgb
from jointdistill_core.bags.layout import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    FRAME_ID,
    IMAGE_TYPE,
    TYPESTORE,
    BagError,
)

COMPRESSIONS = ('jpeg', 'png')
_Image = TYPESTORE.types[IMAGE_TYPE]
_CompressedImage = TYPESTORE.types[COMPRESSED_IMAGE_TYPE]
_CameraInfo = TYPESTORE.types[CAMERA_INFO_TYPE]
_Header = TYPESTORE.types['std_msgs/msg/Header']
_Time = TYPESTORE.types['builtin_interfaces/msg/Time']
_RegionOfInterest = TYPESTORE.types['sensor_msgs/msg/RegionOfInterest']

# encoding -> (numpy dtype, channels)
_ENCODINGS = {
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4), 'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1), '8UC1': (np.uint8, 1),
    '16UC1': (np.uint16, 1), 'mono16': (np.uint16, 1),
    '32FC1': (np.float32, 1),
}


def make_header(stamp_ns: int, frame_id: str = FRAME_ID) -> Any:
    """A std_msgs/Header with the stamp `stamp_ns` (nanoseconds) and `frame_id`."""
    return _Header(stamp=_Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)


def stamp_ns_of(msg: Any) -> int:
    """Header stamp of a message in nanoseconds."""
    return int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)


def encode_image(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = FRAME_ID) -> Any:
    """(H, W) or (H, W, C) array -> rosbags sensor_msgs/Image with unpadded rows, little endian."""
    dtype, channels = _ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    height, width = array.shape[:2]
    if (array.shape[2] if array.ndim == 3 else 1) != channels:
        raise ValueError(f'{encoding} needs {channels} channel(s), got shape {array.shape}')
    little_endian = array.astype(array.dtype.newbyteorder('<'), copy=False)
    data = np.frombuffer(little_endian.tobytes(), np.uint8)
    return _Image(header=make_header(stamp_ns, frame_id), height=height, width=width,
                  encoding=encoding, is_bigendian=0, step=width * channels * array.itemsize,
                  data=data)


def encode_compressed_image(rgb: np.ndarray, compression: str, stamp_ns: int,
                            frame_id: str = FRAME_ID, jpeg_quality: int = 90) -> Any:
    """(H, W, 3) uint8 RGB -> rosbags CompressedImage as image_transport's compressed plugin
    writes an rgb8 image: format 'rgb8; jpeg compressed bgr8' (or png), BGR data."""
    if compression not in COMPRESSIONS:
        raise ValueError(f'compression must be one of {COMPRESSIONS}, got {compression!r}')
    options = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if compression == 'jpeg' else []
    extension = '.jpg' if compression == 'jpeg' else '.png'
    ok, data = cv2.imencode(extension, cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8),
                                                    cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise ValueError(f'cv2.imencode({extension}) failed for an image of shape {rgb.shape}')
    return _CompressedImage(header=make_header(stamp_ns, frame_id),
                            format=f'rgb8; {compression} compressed bgr8', data=data.ravel())


def encode_camera_info(K: np.ndarray, height: int, width: int, stamp_ns: int,
                       frame_id: str = FRAME_ID) -> Any:
    """Pinhole CameraInfo without distortion for intrinsics K (3x3, pixels of H x W)."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    projection = np.concatenate([K, np.zeros((3, 1))], axis=1)
    return _CameraInfo(
        header=make_header(stamp_ns, frame_id), height=height, width=width,
        distortion_model='plumb_bob', d=np.zeros(5), k=K.reshape(9), r=np.eye(3).reshape(9),
        p=projection.reshape(12), binning_x=0, binning_y=0,
        roi=_RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _pixels(msg: Any, topic: str) -> np.ndarray:
    """Image message -> (H, W) or (H, W, C) array in native byte order."""
    if msg.encoding not in _ENCODINGS:
        raise BagError(f'{topic}: unsupported image encoding {msg.encoding!r} '
                       f'(supported: {", ".join(_ENCODINGS)})')
    dtype, channels = _ENCODINGS[msg.encoding]
    dtype = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * channels * dtype.itemsize
    data = np.asarray(msg.data, np.uint8)
    if msg.step < row_bytes or data.size < msg.step * msg.height:
        raise BagError(f'{topic}: image data ({data.size} bytes, step {msg.step}) too short for '
                       f'{msg.width}x{msg.height} {msg.encoding}')
    rows = data[:msg.step * msg.height].reshape(msg.height, msg.step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype).astype(dtype.newbyteorder('='), copy=False)
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return pixels.reshape(shape)


def _is_compressed(msg: Any) -> bool:
    return msg.__msgtype__ == COMPRESSED_IMAGE_TYPE


def decode_rgb(msg: Any, topic: str = 'image') -> np.ndarray:
    """Colour or mono Image, or a JPEG / PNG CompressedImage -> (H, W, 3) uint8 RGB."""
    if _is_compressed(msg):
        return compressed_to_rgb(msg)
    pixels = _pixels(msg, topic)
    if msg.encoding in ('rgb8', 'rgba8'):
        return np.ascontiguousarray(pixels[..., :3])
    if msg.encoding in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(pixels[..., 2::-1])
    if msg.encoding in ('mono8', '8UC1'):
        return np.repeat(pixels[..., None], 3, axis=2)
    raise BagError(f'{topic}: encoding {msg.encoding!r} is not a colour image')


def decode_depth(msg: Any, topic: str = 'depth') -> np.ndarray:
    """32FC1 metres or 16UC1 millimetres Image, or a compressedDepth CompressedImage ->
    (H, W) float32 metres, NaN = invalid."""
    if _is_compressed(msg):
        return compressed_depth_to_metres(msg)
    pixels = _pixels(msg, topic)
    if msg.encoding == '32FC1':
        return pixels.astype(np.float32, copy=False)
    if msg.encoding in ('16UC1', 'mono16'):
        return np.where(pixels > 0, pixels.astype(np.float32) / 1000.0, np.nan).astype(np.float32)
    raise BagError(f'{topic}: encoding {msg.encoding!r} is not a depth image (32FC1 or 16UC1)')


def decode_labels(msg: Any, topic: str = 'labels') -> np.ndarray:
    """mono8 class-id Image -> (H, W) uint8, 255 = void."""
    if msg.encoding not in ('mono8', '8UC1'):
        raise BagError(f'{topic}: encoding {msg.encoding!r} is not a mono8 label image')
    return _pixels(msg, topic)


def camera_matrix(msg: Any) -> np.ndarray:
    """CameraInfo -> (3, 3) float32 K."""
    return np.asarray(msg.k, np.float32).reshape(3, 3)


def serialize(msg: Any) -> bytes:
    """CDR bytes of a rosbags message, as rosbag2 stores them."""
    return bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes | memoryview, msgtype: str) -> Any:
    """The rosbags message of type `msgtype` from CDR bytes."""
    return TYPESTORE.deserialize_cdr(raw, msgtype)


def header_stamp_ns(raw: bytes) -> int:
    """Header stamp (ns) read straight from the CDR bytes of a message whose first field is a
    std_msgs/Header (Image, CameraInfo, ...), without deserializing the payload."""
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        raise BagError(f'not a plain CDR message (encapsulation {raw[:2].hex()})')
    order = '<' if raw[1] == 1 else '>'
    sec, nanosec = struct.unpack_from(f'{order}iI', raw, 4)
    return sec * 10**9 + nanosec
