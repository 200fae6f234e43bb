"""sensor_msgs/CompressedImage -> numpy, ROS-free: camera images (JPEG, PNG) and compressed
depth (image_transport's `compressedDepth`). Used by the perception node, the bag reader and
the evaluator alike; works on rclpy and rosbags messages (only `format` and `data` are read).

Formats, as image_transport's plugins write them:

- `compressed` (compressed_image_transport): `format` is "<encoding>; jpeg compressed bgr8"
  (or "... png compressed bgr8|bgr16|mono8|mono16"), or just "jpeg" / "png" from older
  publishers. OpenCV decodes to BGR channel order; the data is in RGB order only when the
  format says "compressed rgb...".
- `compressedDepth` (compressed_depth_image_transport): `format` is "16UC1; compressedDepth
  png" or "32FC1; compressedDepth png" ("...; compressedDepth" alone in older versions means
  png). `data` starts with a 12-byte ConfigHeader (int32 compression format, float32
  depthQuantA, float32 depthQuantB; little endian, as every ROS platform stores it), then a
  16-bit single-channel PNG. For 16UC1 the PNG holds millimetres (0 = invalid). For 32FC1 it
  holds quantised inverse depth v: depth = depthQuantA / (v - depthQuantB) metres, v = 0
  invalid. The `rvl` compression of that plugin is refused with a clear error.

Before decoding, the image size is read from the PNG or JPEG header: data that is not a
complete PNG or JPEG (no signature, no size, cut off before its end marker) or that claims
more than MAX_COMPRESSED_PIXELS pixels is refused without allocating the image. Every refusal
is an `ImageCodecError` naming the field at fault (`format` or `data`).
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from jointdistill_core.bags.layout import ImageCodecError

# 64 Mpixel (8192 x 8192): far beyond any camera, far below what a forged header could make
# the decoder allocate (gigabytes).
MAX_COMPRESSED_PIXELS = 8192 * 8192
JPEG_SIGNATURE = b'\xff\xd8'
JPEG_END = b'\xff\xd9'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND'
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, ...): not C4 (DHT),
# C8 (JPG) or CC (DAC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])
# The ConfigHeader of compressed_depth_image_transport: int32 format, float32 A, float32 B.
_DEPTH_HEADER = struct.Struct('<iff')


def _as_bytes(data) -> bytes:
    """`data` of a message (bytes, array.array('B') or a uint8 numpy array) as bytes."""
    return data if isinstance(data, bytes) else np.frombuffer(data, np.uint8).tobytes()


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the first start-of-frame segment; None when there is none before
    the image data starts (SOS) or the segments run past the end."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker == 0xDA:  # start of scan: no frame header came first
            return None
        length = int.from_bytes(data[position + 2:position + 4], 'big')
        if marker in _JPEG_SOF:
            if length < 7 or position + 9 > len(data):
                return None
            height = int.from_bytes(data[position + 5:position + 7], 'big')
            width = int.from_bytes(data[position + 7:position + 9], 'big')
            return height, width
        position += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the IHDR chunk, which must come first."""
    if len(data) < 24 or data[12:16] != b'IHDR':
        return None
    width, height = struct.unpack_from('>II', data, 16)
    return height, width


def checked_size(data: bytes, what: str) -> tuple[int, int]:
    """(height, width) pixels of a complete JPEG or PNG in `data`; ImageCodecError('data')
    otherwise (see the module docstring). `what` names the payload in messages."""
    tail = data[-32:]
    if data.startswith(JPEG_SIGNATURE):
        size, complete, kind = _jpeg_size(data), JPEG_END in tail, 'JPEG'
    elif data.startswith(PNG_SIGNATURE):
        size, complete, kind = _png_size(data), PNG_END in tail, 'PNG'
    else:
        raise ImageCodecError(
            'data', f'data ({len(data)} bytes) of {what} is neither JPEG nor PNG (starts with '
            f'{data[:8].hex() or "nothing"})')
    if size is None:
        raise ImageCodecError('data', f'data of {what}: {kind} without a readable image size')
    if not complete:
        raise ImageCodecError('data', f'data of {what}: {kind} cut off ({len(data)} bytes, no '
                                      'end marker)')
    height, width = size
    if height == 0 or width == 0 or height * width > MAX_COMPRESSED_PIXELS:
        raise ImageCodecError('data', f'data of {what}: {kind} claims {width}x{height} pixels '
                                      f'(at most {MAX_COMPRESSED_PIXELS} accepted)')
    return height, width


def _decode(data: bytes, what: str) -> np.ndarray:
    """cv2.imdecode(IMREAD_UNCHANGED) of checked data: (H, W) or (H, W, C), uint8 or uint16."""
    size = checked_size(data, what)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.shape[:2] != size:
        raise ImageCodecError('data', f'data ({len(data)} bytes) of {what} is not a decodable '
                                      'image (corrupt)')
    return pixels


def _image_format(fmt: str) -> str:
    """'jpeg' or 'png' for a camera image's `format`; ImageCodecError('format') otherwise."""
    lowered = fmt.lower()
    if 'compresseddepth' not in lowered:
        for name, kind in (('jpeg', 'jpeg'), ('jpg', 'jpeg'), ('png', 'png')):
            if name in lowered:
                return kind
    raise ImageCodecError('format', f"format '{fmt}' is not supported; expected jpeg or png "
                                    "(e.g. 'jpeg', 'bgr8; jpeg compressed bgr8')")


def compressed_to_rgb(msg) -> np.ndarray:
    """A JPEG or PNG CompressedImage -> (H, W, 3) uint8 RGB.

    Grey images become three equal channels, 16-bit PNG keeps its 8 most significant bits,
    an alpha channel is dropped. Raises ImageCodecError naming `format` or `data`.
    """
    fmt = msg.format
    _image_format(fmt)
    pixels = _decode(_as_bytes(msg.data), f"a '{fmt}' image")
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    rgb_order = 'compressed rgb' in fmt.lower()
    if pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2RGB if rgb_order else cv2.COLOR_BGRA2RGB)
    return pixels if rgb_order else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def compressed_depth_to_metres(msg) -> np.ndarray:
    """A compressedDepth CompressedImage (16UC1 or 32FC1, png) -> (H, W) float32 metres,
    NaN = invalid. Raises ImageCodecError naming `format` or `data`."""
    fmt = msg.format
    encoding, _, compression = (part.strip() for part in fmt.partition(';'))
    if compression and not compression.startswith('compressedDepth'):
        raise ImageCodecError('format', f"format '{fmt}' is not compressedDepth (e.g. '16UC1; "
                                        "compressedDepth png')")
    method = compression[len('compressedDepth'):].strip() or 'png'
    if method != 'png':
        raise ImageCodecError('format', f"format '{fmt}': compressedDepth {method} is not "
                                        'supported, only png (republish with the plugin\'s '
                                        'format parameter set to png)')
    if encoding not in ('16UC1', 'mono16', '32FC1'):
        raise ImageCodecError('format', f"format '{fmt}': depth encoding '{encoding}' is not "
                                        '16UC1 (millimetres) or 32FC1 (metres)')
    data = _as_bytes(msg.data)
    if len(data) <= _DEPTH_HEADER.size:
        raise ImageCodecError('data', f'data ({len(data)} bytes) too short for the '
                                      f'{_DEPTH_HEADER.size}-byte compressedDepth header')
    _, quant_a, quant_b = _DEPTH_HEADER.unpack_from(data)
    pixels = _decode(data[_DEPTH_HEADER.size:], f"a '{fmt}' depth image")
    if pixels.ndim != 2 or pixels.dtype != np.uint16:
        raise ImageCodecError('data', f"data of a '{fmt}' depth image holds a "
                                      f'{pixels.dtype}x{pixels.shape[2:] or 1} image, not 16-bit '
                                      'single-channel')
    valid = pixels > 0
    if encoding == '32FC1':
        with np.errstate(divide='ignore', invalid='ignore'):
            metres = np.float32(quant_a) / (pixels.astype(np.float32) - np.float32(quant_b))
    else:
        metres = pixels.astype(np.float32) / np.float32(1000.0)
    return np.where(valid, metres, np.float32(np.nan)).astype(np.float32)
