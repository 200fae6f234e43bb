"""sensor_msgs/Image and CompressedImage <-> numpy (jointdistill_ros.image_codec).

Messages are built by hand here (row bytes + padding bytes) so that the decoder is checked
against an independent encoding, not against its own encoder.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from jointdistill_ros.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageCodecError,
    compressed_to_rgb,
    imgmsg_to_numpy,
    numpy_to_imgmsg,
    to_rgb8,
)

# encoding -> (numpy element type, channels); written out here, not imported.
PLAIN_ENCODINGS = {
    'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
    'mono8': ('u1', 1), 'mono16': ('u2', 1), '16UC1': ('u2', 1), '32FC1': ('f4', 1),
}
PAD_BYTE = 0xAB


def random_array(rng: np.random.Generator, encoding: str, height: int, width: int):
    kind, channels = PLAIN_ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if kind == 'f4':
        return rng.normal(0, 100, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(kind).max + 1, shape).astype(kind)


def hand_message(stored: np.ndarray, encoding: str, padding: int = 0,
                 big_endian: bool = False) -> Image:
    """Image whose rows are the array's bytes in the chosen byte order plus padding bytes."""
    height, width = stored.shape[:2]
    order = '>' if big_endian else '<'
    typed = stored.astype(stored.dtype.newbyteorder(order))
    rows = [typed[row].tobytes() + bytes([PAD_BYTE]) * padding for row in range(height)]
    msg = Image()
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(big_endian)
    msg.step = len(rows[0])
    msg.data = b''.join(rows)
    return msg


def bt601_limited_rgb(y: float, u: float, v: float) -> np.ndarray:
    """ITU-R BT.601 studio-swing YCbCr -> RGB, the standard coefficients."""
    r = 1.164 * (y - 16) + 1.596 * (v - 128)
    g = 1.164 * (y - 16) - 0.392 * (u - 128) - 0.813 * (v - 128)
    b = 1.164 * (y - 16) + 2.017 * (u - 128)
    return np.clip(np.round([r, g, b]), 0, 255)


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize('encoding', list(PLAIN_ENCODINGS))
def test_round_trip_every_plain_encoding_is_exact(encoding):
    array = random_array(np.random.default_rng(1), encoding, 5, 7)
    msg = numpy_to_imgmsg(array, encoding)
    _, channels = PLAIN_ENCODINGS[encoding]
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * channels * array.dtype.itemsize
    assert len(msg.data) == msg.step * 5
    back = imgmsg_to_numpy(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize('encoding', list(PLAIN_ENCODINGS))
@pytest.mark.parametrize('big_endian', [False, True])
def test_decode_padded_rows_and_byte_order(encoding, big_endian):
    array = random_array(np.random.default_rng(2), encoding, 4, 6)
    stored = array if array.ndim == 3 else array[:, :, None]
    msg = hand_message(stored, encoding, padding=5, big_endian=big_endian)
    back = imgmsg_to_numpy(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_encoder_writes_the_bytes_a_hand_encoder_writes():
    array = np.array([[1, 258], [65535, 4096]], dtype=np.uint16)
    msg = numpy_to_imgmsg(array, 'mono16')
    assert msg.is_bigendian == 0 and msg.step == 4
    assert bytes(msg.data) == bytes([1, 0, 2, 1, 255, 255, 0, 16])


def test_header_is_kept_and_single_channel_accepts_trailing_axis():
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    depth = np.full((3, 4, 1), 2.5, np.float32)
    msg = numpy_to_imgmsg(depth, '32FC1', header)
    assert msg.header.frame_id == 'camera_optical'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    assert imgmsg_to_numpy(msg).shape == (3, 4)


def test_little_endian_decode_is_a_view_of_the_message_buffer():
    msg = hand_message(np.arange(24, dtype=np.uint8).reshape(2, 4, 3), 'rgb8', padding=3)
    view = imgmsg_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    assert view[1, 0, 0] == 12  # second row starts after 12 + 3 bytes, padding skipped


@settings(max_examples=60, deadline=None)
@given(encoding=st.sampled_from(list(PLAIN_ENCODINGS)), height=st.integers(1, 64),
       width=st.integers(1, 64), padding=st.integers(0, 16), big_endian=st.booleans(),
       seed=st.integers(0, 2**31))
def test_hypothesis_decode_any_size_padding_byte_order(encoding, height, width, padding,
                                                        big_endian, seed):
    array = random_array(np.random.default_rng(seed), encoding, height, width)
    stored = array if array.ndim == 3 else array[:, :, None]
    back = imgmsg_to_numpy(hand_message(stored, encoding, padding, big_endian))
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(imgmsg_to_numpy(numpy_to_imgmsg(back, encoding)), array)


# ---------------------------------------------------------------- YUV 4:2:2

def test_yuv422_uyvy_decodes_with_bt601_limited_range():
    # Two pixel pairs: U Y0 V Y1 each. Expected RGB from the standard BT.601 formulas.
    u, y0, v, y1 = 129, 91, 198, 140
    msg = hand_message(np.array([[[u, y0], [v, y1]] * 2], np.uint8), 'yuv422', padding=4)
    rgb = imgmsg_to_numpy(msg)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    for column, y in enumerate([y0, y1, y0, y1]):
        np.testing.assert_allclose(rgb[0, column], bt601_limited_rgb(y, u, v), atol=1)


def test_yuv422_yuy2_byte_order_is_y_u_y_v():
    y0, u, y1, v = 91, 129, 140, 198
    msg = hand_message(np.array([[[y0, u], [y1, v]]], np.uint8), 'yuv422_yuy2')
    rgb = imgmsg_to_numpy(msg)
    np.testing.assert_allclose(rgb[0, 0], bt601_limited_rgb(y0, u, v), atol=1)
    np.testing.assert_allclose(rgb[0, 1], bt601_limited_rgb(y1, u, v), atol=1)


def test_yuv422_encode_from_rgb_gives_hand_computed_bytes():
    # RGB (200, 30, 90): Y = 16 + (65.481*200 + 128.553*30 + 24.966*90)/255 = 91.3,
    # Cb = 128 + (-37.797*200 - 74.203*30 + 112*90)/255 = 129.2,
    # Cr = 128 + (112*200 - 93.786*30 - 18.214*90)/255 = 198.4.
    rgb = np.full((2, 4, 3), (200, 30, 90), np.uint8)
    msg = numpy_to_imgmsg(rgb, 'yuv422')
    assert (msg.step, len(msg.data)) == (8, 16)
    np.testing.assert_allclose(np.frombuffer(msg.data, np.uint8)[:4], [129, 91, 198, 91], atol=1)
    yuy2 = numpy_to_imgmsg(rgb, 'yuv422_yuy2')
    np.testing.assert_allclose(np.frombuffer(yuy2.data, np.uint8)[:4], [91, 129, 91, 198], atol=1)


@pytest.mark.parametrize('encoding', ['yuv422', 'yuv422_yuy2'])
def test_yuv422_round_trip_of_smooth_colours_is_close(encoding):
    # Chroma is shared by pixel pairs, so use colours constant over each pair.
    rng = np.random.default_rng(3)
    pairs = rng.integers(20, 236, (6, 5, 3), dtype=np.uint8)
    rgb = np.repeat(pairs, 2, axis=1)
    back = imgmsg_to_numpy(numpy_to_imgmsg(rgb, encoding))
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).max() <= 3
    np.testing.assert_array_equal(to_rgb8(numpy_to_imgmsg(rgb, encoding)), back)


@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 64), pairs=st.integers(1, 32), padding=st.integers(0, 16),
       seed=st.integers(0, 2**31))
def test_hypothesis_yuv422_padded_decode_matches_unpadded(height, pairs, padding, seed):
    packed = np.random.default_rng(seed).integers(0, 256, (height, 2 * pairs, 2), dtype=np.uint8)
    padded = imgmsg_to_numpy(hand_message(packed, 'yuv422', padding))
    reference = cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_UYVY)
    np.testing.assert_array_equal(padded, reference)


# ---------------------------------------------------------------- to_rgb8

def test_to_rgb8_swaps_drops_alpha_and_expands_grey():
    rgb = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
    alpha = np.full((1, 2, 1), 99, np.uint8)
    cases = {
        'rgb8': rgb, 'bgr8': rgb[:, :, ::-1],
        'rgba8': np.concatenate([rgb, alpha], axis=2),
        'bgra8': np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }
    for encoding, stored in cases.items():
        out = to_rgb8(hand_message(stored, encoding, padding=2))
        assert out.dtype == np.uint8 and out.shape == (1, 2, 3), encoding
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)
    grey = to_rgb8(hand_message(np.array([[[7], [200]]], np.uint8), 'mono8'))
    np.testing.assert_array_equal(grey, [[[7, 7, 7], [200, 200, 200]]])
    deep = to_rgb8(hand_message(np.array([[[0x12FF], [0xFF00]]], np.uint16), 'mono16',
                                big_endian=True))
    np.testing.assert_array_equal(deep, [[[0x12] * 3, [0xFF] * 3]])


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_to_rgb8_rejects_depth_encodings_naming_encoding(encoding):
    msg = numpy_to_imgmsg(random_array(np.random.default_rng(4), encoding, 2, 2), encoding)
    with pytest.raises(ImageCodecError, match='encoding') as error:
        to_rgb8(msg)
    assert error.value.field == 'encoding'


# ---------------------------------------------------------------- compressed

def compressed(bgr: np.ndarray, extension: str, fmt: str) -> CompressedImage:
    ok, encoded = cv2.imencode(extension, bgr)
    assert ok
    return CompressedImage(format=fmt, data=encoded.tobytes())


@pytest.mark.parametrize('fmt', ['png', 'rgb8; png compressed bgr8', 'PNG'])
def test_png_decodes_exactly_to_rgb(fmt):
    rgb = np.random.default_rng(5).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(compressed_to_rgb(compressed(rgb[:, :, ::-1], '.png', fmt)), rgb)


@pytest.mark.parametrize('fmt', ['jpeg', 'bgr8; jpeg compressed bgr8'])
def test_jpeg_decodes_to_rgb_in_the_right_channel_order(fmt):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 230  # strongly red
    out = compressed_to_rgb(compressed(rgb[:, :, ::-1], '.jpg', fmt))
    assert out.shape == (16, 16, 3)
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 30


def test_grey_png_expands_to_three_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = compressed_to_rgb(compressed(grey, '.png', 'mono8; png compressed mono8'))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize('fmt', ['tiff', '16UC1; compressedDepth png', 'theora'])
def test_unsupported_compressed_format_names_format(fmt):
    with pytest.raises(ImageCodecError, match='^format') as error:
        compressed_to_rgb(CompressedImage(format=fmt, data=b'\x89PNG'))
    assert error.value.field == 'format'


@pytest.mark.parametrize('payload', [b'', b'not an image at all', b'\xff\xd8\xff' + b'\0' * 40])
def test_corrupt_compressed_data_names_data(payload):
    with pytest.raises(ImageCodecError, match='^data') as error:
        compressed_to_rgb(CompressedImage(format='jpeg', data=payload))
    assert error.value.field == 'data'


# ---------------------------------------------------------------- errors

def good_message() -> Image:
    return hand_message(np.zeros((2, 4, 3), np.uint8), 'rgb8')


def with_fields(**fields) -> Image:
    msg = good_message()
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize('msg, field', [
    (with_fields(encoding='rgb16'), 'encoding'),
    (with_fields(encoding=''), 'encoding'),
    (with_fields(height=0, data=b''), 'height'),
    (with_fields(width=0), 'width'),
    (with_fields(step=11), 'step'),
    (with_fields(data=b'\0' * 23), 'data'),
    (with_fields(data=b'\0' * 25), 'data'),
    (hand_message(np.zeros((2, 3, 2), np.uint8), 'yuv422'), 'width'),
])
def test_every_bad_message_raises_one_error_type_naming_the_field(msg, field):
    with pytest.raises(ImageCodecError, match=f'^{field}\\b') as error:
        imgmsg_to_numpy(msg)
    assert error.value.field == field
    assert issubclass(ImageCodecError, ValueError)


@pytest.mark.parametrize('array, encoding, field', [
    (np.zeros((2, 2, 3), np.uint8), 'rgb16', 'encoding'),
    (np.zeros((2, 2, 3), np.float32), 'rgb8', 'array'),
    (np.zeros((2, 2, 4), np.uint8), 'rgb8', 'array'),
    (np.zeros((2, 2), np.float64), '32FC1', 'array'),
    (np.zeros((2, 2), np.int32), '16UC1', 'array'),
    (np.zeros((0, 2), np.uint8), 'mono8', 'array'),
    (np.zeros((2, 3, 3), np.uint8), 'yuv422', 'array'),
    (np.zeros(5, np.uint8), 'mono8', 'array'),
])
def test_bad_arrays_raise_naming_the_array(array, encoding, field):
    with pytest.raises(ImageCodecError, match=f'^{field}\\b') as error:
        numpy_to_imgmsg(array, encoding)
    assert error.value.field == field


def test_supported_encodings_are_exactly_the_documented_set():
    assert set(SUPPORTED_ENCODINGS) == set(PLAIN_ENCODINGS) | {'yuv422', 'yuv422_yuy2'}
