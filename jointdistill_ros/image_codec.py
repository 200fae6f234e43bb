"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Reading is zero copy where the encoding allows it: the returned array is a strided view
of ``msg.data`` (rows padded beyond ``width * bytes_per_pixel`` are skipped by the view's
stride). Big-endian 16-bit and float data are converted to native byte order (one copy).
Writing assigns ``arr.tobytes()`` to ``msg.data``; assigning a numpy array there is ~50 ms
slower at 640x480 because rclpy then converts element by element.

Array conventions: colour images are (H, W, C) uint8 in the channel order of the encoding
name; single-channel encodings are (H, W). ``yuv422`` (UYVY, the ROS name) and
``yuv422_yuy2`` (YUYV) decode to (H, W, 3) RGB uint8 with the BT.601 limited-range
conversion OpenCV uses and are encoded from (H, W, 3) RGB uint8. CompressedImage
(JPEG, PNG) decoding is ROS-free and lives in jointdistill_core.bags.compressed
(`compressed_to_rgb`, re-exported here).

Every unsupported or inconsistent input raises :class:`ImageCodecError`, whose `field`
attribute (and message) names the field at fault (``encoding``, ``height``, ``width``,
``step``, ``data``, ``format``, or ``array`` for numpy input).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from jointdistill_core.bags.compressed import compressed_to_rgb
from jointdistill_core.bags.layout import ImageCodecError

__all__ = ['ImageCodecError', 'SUPPORTED_ENCODINGS', 'check_colour_image', 'compressed_to_rgb',
           'imgmsg_to_numpy', 'numpy_to_imgmsg', 'to_rgb8']


@dataclass(frozen=True)
class _Layout:
    dtype: np.dtype        # element type, little-endian form
    channels: int          # elements per pixel as stored in the message
    yuv_code: int | None = None       # cv2 code to decode to RGB, for packed YUV
    yuv_encode_code: int | None = None

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


_LAYOUTS: dict[str, _Layout] = {
    'rgb8': _Layout(np.dtype('u1'), 3),
    'bgr8': _Layout(np.dtype('u1'), 3),
    'rgba8': _Layout(np.dtype('u1'), 4),
    'bgra8': _Layout(np.dtype('u1'), 4),
    'mono8': _Layout(np.dtype('u1'), 1),
    'mono16': _Layout(np.dtype('<u2'), 1),
    '16UC1': _Layout(np.dtype('<u2'), 1),
    '32FC1': _Layout(np.dtype('<f4'), 1),
    'yuv422': _Layout(np.dtype('u1'), 2, cv2.COLOR_YUV2RGB_UYVY, cv2.COLOR_RGB2YUV_UYVY),
    'yuv422_yuy2': _Layout(np.dtype('u1'), 2, cv2.COLOR_YUV2RGB_YUY2, cv2.COLOR_RGB2YUV_YUY2),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
_NATIVE_IS_BIG_ENDIAN = sys.byteorder == 'big'


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except KeyError:
        raise ImageCodecError(
            'encoding', f"encoding '{encoding}' is not supported; supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)}") from None


def _check_geometry(msg: Image, layout: _Layout) -> None:
    if msg.height == 0 or msg.width == 0:
        field = 'height' if msg.height == 0 else 'width'
        raise ImageCodecError(
            field, f'{field} is 0 (image {msg.width}x{msg.height}): empty image')
    if layout.yuv_code is not None and msg.width % 2:
        raise ImageCodecError(
            'width', f"width {msg.width} is odd; encoding '{msg.encoding}' packs pixel pairs")
    row_bytes = msg.width * layout.bytes_per_pixel
    if msg.step < row_bytes:
        raise ImageCodecError(
            'step', f"step {msg.step} < width {msg.width} x {layout.bytes_per_pixel} bytes "
            f"per pixel ({row_bytes}) for encoding '{msg.encoding}'")
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise ImageCodecError(
            'data', f'data has {len(msg.data)} bytes but step {msg.step} x height {msg.height} '
            f'= {expected}')


def _stored_array(msg: Image, layout: _Layout) -> np.ndarray:
    """(H, W, channels) view of msg.data in stored byte order, padding skipped."""
    dtype = layout.dtype.newbyteorder('>') if msg.is_bigendian else layout.dtype
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    return np.ndarray(shape=(msg.height, msg.width, layout.channels), dtype=dtype,
                      buffer=buffer,
                      strides=(msg.step, layout.bytes_per_pixel, dtype.itemsize))


def imgmsg_to_numpy(msg: Image) -> np.ndarray:
    """Decode a sensor_msgs/Image.

    Returns (H, W) for single-channel encodings, (H, W, C) for colour in the encoding's
    channel order, and (H, W, 3) RGB uint8 for yuv422 / yuv422_yuy2. Native byte order.
    Little-endian and 8-bit data come back as a view sharing memory with ``msg.data``.
    """
    layout = _layout(msg.encoding)
    _check_geometry(msg, layout)
    stored = _stored_array(msg, layout)
    if layout.yuv_code is not None:
        return cv2.cvtColor(np.ascontiguousarray(stored), layout.yuv_code)
    if stored.dtype.itemsize > 1 and stored.dtype.isnative is False:
        stored = stored.astype(stored.dtype.newbyteorder('='))
    return stored[:, :, 0] if layout.channels == 1 else stored


def _as_stored(array: np.ndarray, encoding: str, layout: _Layout) -> np.ndarray:
    """Validate a caller's array and return it in the message's (H, W, channels) layout."""
    if layout.yuv_code is not None:
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ImageCodecError(
                'array', f"array for encoding '{encoding}' must be (H, W, 3) uint8 RGB, got "
                f'{array.shape} {array.dtype}')
        if array.shape[1] % 2:
            raise ImageCodecError(
                'array', f"array width {array.shape[1]} is odd; encoding '{encoding}' packs "
                'pixel pairs')
        return cv2.cvtColor(np.ascontiguousarray(array), layout.yuv_encode_code)
    if layout.channels == 1 and array.ndim == 2:
        array = array[:, :, None]
    expected_dtype = layout.dtype.newbyteorder('=')
    if array.ndim != 3 or array.shape[2] != layout.channels or array.dtype != expected_dtype:
        shape = '(H, W)' if layout.channels == 1 else f'(H, W, {layout.channels})'
        raise ImageCodecError(
            'array', f"array for encoding '{encoding}' must be {shape} {expected_dtype.name}, got "
            f'{array.shape} {array.dtype}')
    return array


def numpy_to_imgmsg(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Encode an array as a sensor_msgs/Image with unpadded rows in native byte order.

    ``array`` is (H, W) or (H, W, 1) for single-channel encodings, (H, W, C) for colour
    (channel order of the encoding name), (H, W, 3) RGB uint8 for yuv422 / yuv422_yuy2.
    The dtype must match the encoding exactly (uint8, uint16 or float32): no silent casts.
    ``header`` is copied by reference (use the input image's header for outputs).
    """
    layout = _layout(encoding)
    array = np.asarray(array)
    if array.ndim < 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageCodecError(
            'array', f'array has shape {array.shape}: need a non-empty (H, W[, C])')
    stored = _as_stored(array, encoding, layout)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(stored.shape[0]), int(stored.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_IS_BIG_ENDIAN)
    msg.step = msg.width * layout.bytes_per_pixel
    msg.data = np.ascontiguousarray(stored).tobytes()
    return msg


def check_colour_image(msg: Image) -> None:
    """Raise ImageCodecError exactly when `to_rgb8(msg)` would; cheap and allocation free.

    Reads only the header fields and ``len(msg.data)``, so a message claiming a huge size
    (e.g. 100000 x 100000) with little data is refused before anything is allocated.
    """
    if msg.encoding in ('16UC1', '32FC1'):
        raise ImageCodecError(
            'encoding', f"encoding '{msg.encoding}' is a data encoding (depth), not a colour "
            'image; expected rgb8, bgr8, rgba8, bgra8, mono8, mono16, yuv422 or yuv422_yuy2')
    _check_geometry(msg, _layout(msg.encoding))


def to_rgb8(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any colour or mono encoding (what the perception node needs).

    mono16 keeps its 8 most significant bits. 16UC1 and 32FC1 hold data (depth), not an
    image, and raise ImageCodecError naming the encoding.
    """
    check_colour_image(msg)
    array = imgmsg_to_numpy(msg)
    if msg.encoding in ('rgb8', 'yuv422', 'yuv422_yuy2'):
        return array
    if msg.encoding == 'bgr8':
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if msg.encoding == 'rgba8':
        return cv2.cvtColor(array, cv2.COLOR_RGBA2RGB)
    if msg.encoding == 'bgra8':
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    if msg.encoding == 'mono16':
        array = (array >> 8).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_GRAY2RGB)
