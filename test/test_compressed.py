"""CompressedImage decoding in the ROS-free core (jointdistill_core.bags.compressed): JPEG and PNG
camera images in image_transport's formats, and compressedDepth. The compressedDepth payloads
are built here from the layout of compressed_depth_image_transport (a 12-byte ConfigHeader of
int32 format, float32 depthQuantA, float32 depthQuantB, then a 16-bit PNG), independently of
the decoder under test."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from jointdistill_core.bags.compressed import (
    MAX_COMPRESSED_PIXELS,
    checked_size,
    compressed_depth_to_metres,
    compressed_to_rgb,
)
from jointdistill_core.bags.layout import ImageCodecError

INV_DEPTH = 0  # compressionFormat of the plugin's ConfigHeader


def message(fmt: str, data: bytes) -> SimpleNamespace:
    """What the decoders read of a CompressedImage (rclpy or rosbags): format and data."""
    return SimpleNamespace(format=fmt, data=data)


def encoded(array: np.ndarray, extension: str, *options: int) -> bytes:
    ok, data = cv2.imencode(extension, array, list(options))
    assert ok
    return data.tobytes()


def scene(height: int = 48, width: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 RGB with distinct channels and smooth structure (JPEG-friendly)."""
    rows = np.linspace(0, 1, height)[:, None]
    cols = np.linspace(0, 1, width)[None, :]
    rgb = np.stack([200 * rows + 0 * cols, 40 + 0 * rows + 150 * cols,
                    np.full((height, width), 90.0)], axis=-1)
    return rgb.astype(np.uint8)


def depth_header(quant_a: float = 0.0, quant_b: float = 0.0) -> bytes:
    return struct.pack('<iff', INV_DEPTH, quant_a, quant_b)


# ---------------------------------------------------------------- camera images
@pytest.mark.parametrize('fmt', ['rgb8; png compressed bgr8', 'bgr8; png compressed bgr8', 'png'])
def test_png_in_bgr_order_decodes_exactly_to_rgb(fmt):
    rgb = scene()
    out = compressed_to_rgb(message(fmt, encoded(rgb[:, :, ::-1], '.png')))
    np.testing.assert_array_equal(out, rgb)


def test_data_in_rgb_order_is_not_swapped():
    rgb = scene()
    out = compressed_to_rgb(message('rgb8; png compressed rgb8', encoded(rgb, '.png')))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('fmt', ['rgb8; jpeg compressed bgr8', 'jpeg', 'JPG'])
def test_jpeg_decodes_close_to_the_image_in_rgb_order(fmt):
    rgb = scene()
    out = compressed_to_rgb(message(fmt, encoded(rgb[:, :, ::-1], '.jpg',
                                                 cv2.IMWRITE_JPEG_QUALITY, 95)))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 3  # lossy, but the channels are in place


def test_grey_sixteen_bit_and_alpha_become_rgb8():
    grey = (np.arange(48 * 64).reshape(48, 64) % 251).astype(np.uint8)
    out = compressed_to_rgb(message('mono8; png compressed mono8', encoded(grey, '.png')))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    wide = grey.astype(np.uint16) * 257 + 3  # high byte = grey
    out = compressed_to_rgb(message('mono16; png compressed mono16', encoded(wide, '.png')))
    np.testing.assert_array_equal(out[..., 1], grey)
    rgb = scene()
    bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 17, np.uint8)])
    out = compressed_to_rgb(message('bgra8; png compressed bgra8', encoded(bgra, '.png')))
    np.testing.assert_array_equal(out, rgb)


def test_sizes_are_read_from_the_headers():
    rgb = scene(37, 53)
    assert checked_size(encoded(rgb, '.png'), 'x') == (37, 53)
    # A JPEG whose frame header comes after application segments (JFIF plus an EXIF-sized one).
    jpeg = encoded(rgb, '.jpg')
    app1 = b'\xff\xe1' + (2 + 300).to_bytes(2, 'big') + bytes(300)
    assert checked_size(jpeg[:2] + app1 + jpeg[2:], 'x') == (37, 53)


def forged_png(height: int, width: int) -> bytes:
    """A PNG signature and IHDR claiming height x width, a tiny body and IEND: a decoder that
    trusted the header would allocate height x width x 3 bytes."""
    body = struct.pack('>II', width, height) + bytes([8, 2, 0, 0, 0])
    return (b'\x89PNG\r\n\x1a\n' + struct.pack('>I', 13) + b'IHDR' + body + bytes(4)
            + bytes(12) + b'IEND\xaeB`\x82')


@pytest.mark.parametrize('payload, expected', [
    (b'', 'neither JPEG nor PNG'),
    (b'GIF89a' + bytes(40), 'neither JPEG nor PNG'),
    (b'\xff\xd8\xff' + bytes(40), 'without a readable image size'),
    (forged_png(100_000, 100_000), 'claims 100000x100000'),
    (forged_png(0, 640), 'claims 640x0'),
])
def test_refusals_name_the_data(payload, expected):
    with pytest.raises(ImageCodecError, match=expected) as error:
        compressed_to_rgb(message('png', payload))
    assert error.value.field == 'data'
    assert MAX_COMPRESSED_PIXELS < 100_000 * 100_000


def test_truncated_and_corrupt_images_are_refused():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    for extension, fmt in (('.jpg', 'jpeg'), ('.png', 'png')):
        data = encoded(rgb, extension)
        with pytest.raises(ImageCodecError, match='cut off'):
            compressed_to_rgb(message(fmt, data[:len(data) // 2]))
    png = bytearray(encoded(rgb, '.png'))
    png[200] ^= 0xFF  # inside the image data: its checksum no longer matches
    with pytest.raises(ImageCodecError, match='not a decodable image') as error:
        compressed_to_rgb(message('png', bytes(png)))
    assert error.value.field == 'data'


@pytest.mark.parametrize('fmt', ['tiff', '16UC1; compressedDepth png', 'theora', ''])
def test_unsupported_formats_name_the_format(fmt):
    with pytest.raises(ImageCodecError, match='^format') as error:
        compressed_to_rgb(message(fmt, encoded(scene(), '.png')))
    assert error.value.field == 'format'


# ---------------------------------------------------------------- compressedDepth
def test_sixteen_bit_compressed_depth_is_millimetres():
    millimetres = np.array([[0, 1000, 1500], [65535, 250, 0]], np.uint16)
    data = depth_header() + encoded(millimetres, '.png')
    for fmt in ('16UC1; compressedDepth png', '16UC1; compressedDepth'):
        metres = compressed_depth_to_metres(message(fmt, data))
        assert metres.dtype == np.float32 and metres.shape == (2, 3)
        np.testing.assert_allclose(metres[millimetres > 0], [1.0, 1.5, 65.535, 0.25])
        assert np.isnan(metres[millimetres == 0]).all()


def quantised_inverse_depth(depth: np.ndarray, depth_max: float = 10.0,
                            depth_quantization: float = 100.0) -> tuple[np.ndarray, float, float]:
    """compressed_depth_image_transport's 32FC1 encoding, written out: A = z0 (z0 + 1),
    B = 1 - A / depth_max, v = A / d + B truncated to uint16 (0 = invalid, also d >= depth_max
    and NaN), in float32 as the C++ code computes it."""
    z0 = np.float32(depth_quantization)
    quant_a = np.float32(z0 * (z0 + np.float32(1)))
    quant_b = np.float32(np.float32(1) - quant_a / np.float32(depth_max))
    with np.errstate(divide='ignore', invalid='ignore'):
        values = quant_a / depth.astype(np.float32) + quant_b
    keep = depth < depth_max  # False for NaN
    return np.where(keep, values, 0).astype(np.uint16), float(quant_a), float(quant_b)


def test_float_compressed_depth_inverts_the_quantisation():
    depth = np.array([[0.5, 1.0, 2.5], [7.25, 9.9, np.nan], [12.0, 0.3, 4.0]], np.float32)
    values, quant_a, quant_b = quantised_inverse_depth(depth)
    data = depth_header(quant_a, quant_b) + encoded(values, '.png')
    metres = compressed_depth_to_metres(message('32FC1; compressedDepth png', data))
    valid = values > 0
    assert list(valid.ravel()) == [True] * 5 + [False, False, True, True]  # NaN, beyond 10 m
    # Truncation to an integer v moves the depth by at most d^2 / A (one step of v).
    step = depth[valid] ** 2 / quant_a
    assert np.all(np.abs(metres[valid] - depth[valid]) <= step + 1e-6)
    np.testing.assert_allclose(metres[valid], quant_a / (values[valid] - quant_b), rtol=1e-6)
    assert np.isnan(metres[~valid]).all()


@pytest.mark.parametrize('fmt, field, expected', [
    ('16UC1; compressedDepth rvl', 'format', 'compressedDepth rvl is not supported'),
    ('rgb8; compressedDepth png', 'format', "depth encoding 'rgb8'"),
    ('16UC1; jpeg compressed mono8', 'format', 'not compressedDepth'),
])
def test_compressed_depth_refusals(fmt, field, expected):
    data = depth_header() + encoded(np.ones((4, 4), np.uint16), '.png')
    with pytest.raises(ImageCodecError, match=expected) as error:
        compressed_depth_to_metres(message(fmt, data))
    assert error.value.field == field


def test_compressed_depth_data_refusals():
    fmt = '16UC1; compressedDepth png'
    with pytest.raises(ImageCodecError, match='too short'):
        compressed_depth_to_metres(message(fmt, depth_header()))
    colour = depth_header() + encoded(scene(), '.png')
    with pytest.raises(ImageCodecError, match='not 16-bit single-channel'):
        compressed_depth_to_metres(message(fmt, colour))
    without_header = encoded(np.ones((8, 8), np.uint16), '.png')
    with pytest.raises(ImageCodecError, match='neither JPEG nor PNG'):
        compressed_depth_to_metres(message(fmt, without_header))
