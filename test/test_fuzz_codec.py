"""Fuzzing the image codec and the node's CameraInfo handling with hypothesis.

Every message either decodes to what a hand-written oracle says it holds, or raises the one
error type (ImageCodecError) naming the field at fault; nothing else escapes, and messages
that claim huge sizes are refused before anything of that size is allocated. The oracle
below (bytes per pixel per encoding, the validity rule) is written out here from the
sensor_msgs/Image definition, not imported from the codec.
"""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from jointdistill_core.geometry import default_intrinsics
from jointdistill_ros.camera_info import output_camera_info
from jointdistill_ros.image_codec import (
    ImageCodecError,
    check_colour_image,
    compressed_to_rgb,
    imgmsg_to_numpy,
    to_rgb8,
)

# Bytes per pixel of each encoding as sensor_msgs/image_encodings defines them.
BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 2,
                   'yuv422': 2, 'yuv422_yuy2': 2, '16UC1': 2, '32FC1': 4}
COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', 'yuv422', 'yuv422_yuy2')
UNKNOWN_ENCODINGS = ('', 'rgb16', 'RGB8', 'bayer_rggb8', '8UC3', 'jpeg', 'rgb8 ', 'nv12')
UINT32_MAX = 2**32 - 1
FIELDS = ('encoding', 'height', 'width', 'step', 'data')
FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def oracle_is_valid_colour_image(encoding: str, height: int, width: int, step: int,
                                 data_length: int) -> bool:
    """The rule a colour image message must satisfy, from the message definition."""
    if encoding not in COLOUR_ENCODINGS or height == 0 or width == 0:
        return False
    if encoding.startswith('yuv422') and width % 2:
        return False  # pixel pairs share chroma
    return step >= width * BYTES_PER_PIXEL[encoding] and data_length == step * height


def image_message(encoding: str, height: int, width: int, step: int, data: bytes,
                  big_endian: int = 0) -> Image:
    return Image(header=Header(frame_id='cam'), encoding=encoding, height=height, width=width,
                 step=step, is_bigendian=big_endian, data=data)


@st.composite
def arbitrary_image_messages(draw) -> Image:
    """Messages whose fields disagree in every way: sizes from 0 to UINT32_MAX (8K and far
    beyond), step below/at/above the row size, data shorter, exact or longer."""
    encoding = draw(st.sampled_from(COLOUR_ENCODINGS + UNKNOWN_ENCODINGS + ('16UC1', '32FC1')))
    small = st.integers(0, 12)
    huge = st.sampled_from([4320, 7680, 8192, 16384, 100_000, 2**31, UINT32_MAX])
    height = draw(st.one_of(small, huge))
    width = draw(st.one_of(small, huge))
    row = width * BYTES_PER_PIXEL.get(encoding, 3)
    step = draw(st.one_of(st.integers(0, 64), st.just(min(row, UINT32_MAX)),
                          st.just(min(row + 3, UINT32_MAX)), st.just(UINT32_MAX)))
    exact = step * height
    length = draw(st.one_of(st.integers(0, 200),
                            st.sampled_from([exact - 1, exact, exact + 1]).filter(
                                lambda n: 0 <= n <= 4096)))
    return image_message(encoding, height, width, step, bytes(length),
                         big_endian=draw(st.integers(0, 255)))


@st.composite
def valid_image_messages(draw) -> Image:
    """Well-formed colour messages with random pixels and padded rows."""
    encoding = draw(st.sampled_from(COLOUR_ENCODINGS))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if encoding.startswith('yuv'):
        width += width % 2
    step = width * BYTES_PER_PIXEL[encoding] + draw(st.integers(0, 5))
    data = draw(st.binary(min_size=step * height, max_size=step * height))
    return image_message(encoding, height, width, step, data, big_endian=draw(st.integers(0, 1)))


@FUZZ
@given(st.one_of(arbitrary_image_messages(), valid_image_messages()))
def test_any_image_message_decodes_or_raises_the_codec_error(msg):
    valid = oracle_is_valid_colour_image(msg.encoding, msg.height, msg.width, msg.step,
                                         len(msg.data))
    event('valid' if valid else 'invalid')
    if valid:
        check_colour_image(msg)
        rgb = to_rgb8(msg)
        assert rgb.shape == (msg.height, msg.width, 3) and rgb.dtype == np.uint8
        if msg.encoding == 'rgb8':  # the pixels are the row bytes without their padding
            rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
            np.testing.assert_array_equal(rgb.reshape(msg.height, -1), rows[:, :msg.width * 3])
    else:
        with pytest.raises(ImageCodecError) as check_error:
            check_colour_image(msg)
        with pytest.raises(ImageCodecError) as decode_error:
            to_rgb8(msg)
        # The node's cheap check and the decoder refuse with the same reason.
        assert str(check_error.value) == str(decode_error.value)
        assert decode_error.value.field in FIELDS
        assert check_error.value.field == decode_error.value.field
        assert str(decode_error.value).startswith(decode_error.value.field)


@pytest.mark.parametrize('height, width, step, reason', [
    (4320, 7680, 7680 * 3, 'data has 1000 bytes'),          # 8K
    (100_000, 100_000, 300_000, 'data has 1000 bytes'),     # 30 GB claimed
    (UINT32_MAX, UINT32_MAX, UINT32_MAX, 'step 4294967295 < width'),  # row overflows uint32
])
def test_huge_claimed_sizes_are_refused_without_a_large_allocation(height, width, step, reason):
    msg = image_message('rgb8', height, width, step, bytes(1000))
    tracemalloc.start()
    try:
        with pytest.raises(ImageCodecError, match=f'^{reason}'):
            to_rgb8(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f'{peak} bytes allocated while refusing the message'


@FUZZ
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2), st.booleans(),
       st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.5, 3.25e38, 1e-45]),
                min_size=1, max_size=36))
def test_float_images_keep_nan_and_inf_bit_exact_and_are_not_colour(height, width, padding,
                                                                    big_endian, pool):
    values = np.resize(np.asarray(pool, np.float32), (height, width))
    order = '>' if big_endian else '<'
    rows = [values[row].astype(order + 'f4').tobytes() + bytes(padding) for row in
            range(height)]
    msg = image_message('32FC1', height, width, width * 4 + padding, b''.join(rows),
                        big_endian=int(big_endian))
    decoded = imgmsg_to_numpy(msg)
    assert decoded.dtype == np.float32 and decoded.shape == (height, width)
    np.testing.assert_array_equal(decoded.view(np.uint32), values.view(np.uint32))
    with pytest.raises(ImageCodecError, match="^encoding '32FC1' is a data encoding"):
        to_rgb8(msg)


def _encoded(extension: str) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(extension, image)
    assert ok
    return buffer.tobytes()


JPEG, PNG = _encoded('.jpg'), _encoded('.png')


@FUZZ
@given(st.sampled_from([('jpeg', JPEG), ('png', PNG)]), st.data())
def test_corrupt_jpeg_and_png_decode_or_raise_the_codec_error(kind, data):
    fmt, payload = kind
    corruption = data.draw(st.sampled_from(['truncate', 'flip', 'garbage', 'header_only']))
    if corruption == 'truncate':
        payload = payload[:data.draw(st.integers(0, len(payload) - 1))]
    elif corruption == 'flip':
        buffer = bytearray(payload)
        for index in data.draw(st.lists(st.integers(0, len(buffer) - 1), min_size=1,
                                        max_size=20)):
            buffer[index] ^= 0xFF
        payload = bytes(buffer)
    elif corruption == 'garbage':
        payload = data.draw(st.binary(min_size=0, max_size=300))
    else:
        payload = payload[:16] + bytes(64)
    msg = CompressedImage(format=fmt, data=payload)
    try:
        rgb = compressed_to_rgb(msg)
    except ImageCodecError as error:
        assert str(error).split(' ', 1)[0] in ('data', 'format')
    else:  # decoders recover from some damage: then the result is still a plain RGB image
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


# ------------------------------------------------------------------- CameraInfo in the node
def hand_scaled_K(K: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """cv2.resize pixel mapping: f' = f s, c' = (c + 0.5) s - 0.5 (pixel centres)."""
    sx, sy = target[1] / source[1], target[0] / source[0]
    return np.array([[K[0, 0] * sx, K[0, 1] * sx, (K[0, 2] + 0.5) * sx - 0.5],
                     [0.0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


focal = st.one_of(st.sampled_from([0.0, -500.0, np.nan, np.inf, -np.inf]),
                  st.floats(1.0, 5000.0))


@FUZZ
@given(st.integers(0, 5000), st.integers(0, 5000), focal, focal,
       st.floats(-100, 2000), st.floats(-100, 2000), st.integers(0, 12))
def test_camera_info_of_any_size_and_k_gives_usable_intrinsics(info_height, info_width, fx, fy,
                                                                cx, cy, distortion_count):
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    info = CameraInfo(height=info_height, width=info_width, distortion_model='plumb_bob',
                      d=[0.01] * distortion_count, k=K.ravel().tolist(),
                      p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist())
    header = Header(frame_id='cam')
    out, used_K = output_camera_info(info, header, 480, 640)
    assert (out.height, out.width) == (480, 640) and out.header == header
    usable = info_height > 0 and info_width > 0 and np.isfinite([fx, fy]).all() \
        and fx > 0 and fy > 0
    expected = hand_scaled_K(K, (info_height, info_width), (480, 640)) if usable \
        else default_intrinsics(480, 640)
    np.testing.assert_allclose(used_K, expected, rtol=1e-12)
    np.testing.assert_allclose(np.reshape(out.k, (3, 3)), expected, rtol=1e-12)
    assert np.isfinite(used_K).all() and used_K[0, 0] > 0 and used_K[1, 1] > 0


def test_all_zero_camera_info_falls_back_to_default_intrinsics():
    out, K = output_camera_info(CameraInfo(height=480, width=640), Header(), 240, 320)
    focal = 160 / np.tan(np.radians(35))  # 70 degree horizontal field of view, half width 160
    np.testing.assert_allclose(K, [[focal, 0, 159.5], [0, focal, 119.5], [0, 0, 1]])
    assert out.distortion_model == 'plumb_bob' and list(out.d) == [0.0] * 5
