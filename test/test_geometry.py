"""Pinhole geometry (jointdistill_core.geometry) against hand-computed values."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from jointdistill_core.geometry import backproject, default_intrinsics, parse_size, scale_intrinsics

K = np.array([[100.0, 0.0, 2.0],
              [0.0, 50.0, 1.0],
              [0.0, 0.0, 1.0]])


def test_backproject_hand_points():
    depth = np.full((3, 5), 4.0, np.float32)
    depth[2, 4] = 2.0
    points = backproject(depth, K)
    assert points.shape == (3, 5, 3) and points.dtype == np.float32
    # Principal point (u=2, v=1): straight ahead.
    np.testing.assert_allclose(points[1, 2], [0.0, 0.0, 4.0])
    # u=0, v=0: x = (0-2)*4/100 = -0.08, y = (0-1)*4/50 = -0.08.
    np.testing.assert_allclose(points[0, 0], [-0.08, -0.08, 4.0], rtol=1e-6)
    # u=4, v=2, z=2: x = 2*2/100 = 0.04, y = 1*2/50 = 0.04.
    np.testing.assert_allclose(points[2, 4], [0.04, 0.04, 2.0], rtol=1e-6)


def test_backproject_invalid_depth_gives_nan_points():
    depth = np.array([[1.0, 0.0, -1.0, np.nan, np.inf, 3.0]], np.float32)
    points = backproject(depth, K)
    valid = ~np.isnan(points).any(axis=2)[0]
    assert valid.tolist() == [True, False, False, False, False, True]
    assert np.isnan(points[0, 1:5]).all()


def test_backproject_does_not_modify_its_input_and_accepts_float64():
    depth = np.array([[0.0, 2.0]])
    backproject(depth, K)
    assert depth.tolist() == [[0.0, 2.0]]


@pytest.mark.parametrize('depth, intrinsics, message', [
    (np.ones((2, 2, 1)), K, 'depth'),
    (np.ones((2, 2)), np.eye(2), 'K'),
    (np.ones((2, 2)), np.diag([0.0, 1.0, 1.0]), 'fx'),
])
def test_backproject_rejects_bad_input(depth, intrinsics, message):
    with pytest.raises(ValueError, match=message):
        backproject(depth, intrinsics)


def test_scale_intrinsics_hand_values():
    # 480x640 -> 240x320 (s = 0.5): cx = (319.5 + 0.5) * 0.5 - 0.5 = 159.5.
    K_full = np.array([[500.0, 1.0, 319.5], [0.0, 400.0, 239.5], [0.0, 0.0, 1.0]])
    scaled = scale_intrinsics(K_full, (480, 640), (240, 320))
    np.testing.assert_allclose(scaled, [[250.0, 0.5, 159.5], [0.0, 200.0, 119.5], [0, 0, 1]])
    # Anisotropic: width x2, height x1.5; cx = (10+0.5)*2-0.5 = 20.5, cy = (4+0.5)*1.5-0.5 = 6.25.
    scaled = scale_intrinsics(np.array([[8.0, 0, 10], [0, 6.0, 4], [0, 0, 1]]), (10, 20), (15, 40))
    np.testing.assert_allclose(scaled, [[16.0, 0, 20.5], [0, 9.0, 6.25], [0, 0, 1]])


def test_scale_intrinsics_matches_where_cv2_resize_moves_a_feature():
    # A bright 2x2 block centred at u = 8.5, v = 4.5 in a 12x20 image; upsample x3 with
    # INTER_LINEAR and find the centroid: it lands where the scaled intrinsics map it.
    image = np.zeros((12, 20), np.float32)
    image[4:6, 8:10] = 1.0
    big = cv2.resize(image, (60, 36), interpolation=cv2.INTER_LINEAR)
    rows, cols = np.indices(big.shape)
    centroid = (float((cols * big).sum() / big.sum()), float((rows * big).sum() / big.sum()))
    K_small = np.array([[10.0, 0, 8.5], [0, 10.0, 4.5], [0, 0, 1]])
    scaled = scale_intrinsics(K_small, (12, 20), (36, 60))
    np.testing.assert_allclose(centroid, (scaled[0, 2], scaled[1, 2]), atol=1e-4)


def test_scale_intrinsics_round_trip_and_errors():
    there = scale_intrinsics(K, (3, 5), (7, 11))
    np.testing.assert_allclose(scale_intrinsics(there, (7, 11), (3, 5)), K)
    with pytest.raises(ValueError, match='to_size'):
        scale_intrinsics(K, (3, 5), (0, 5))
    with pytest.raises(ValueError, match='from_size'):
        scale_intrinsics(K, (3.5, 5), (3, 5))


def test_default_intrinsics_hand_values():
    # 90 degrees: fx = (W/2)/tan(45) = W/2.
    np.testing.assert_allclose(default_intrinsics(480, 640, 90.0),
                               [[320.0, 0, 319.5], [0, 320.0, 239.5], [0, 0, 1]])
    K70 = default_intrinsics(480, 640)
    assert K70[0, 0] == pytest.approx(320 / math.tan(math.radians(35)))
    # The left image edge (u = -0.5) is 35 degrees off axis.
    ray = (-0.5 - K70[0, 2]) / K70[0, 0]
    assert math.degrees(math.atan(-ray)) == pytest.approx(35.0)
    with pytest.raises(ValueError, match='hfov_deg'):
        default_intrinsics(480, 640, 180.0)
    with pytest.raises(ValueError, match='height, width'):
        default_intrinsics(0, 640)


@pytest.mark.parametrize('text, expected', [('128x256', (128, 256)), (' 48 X 64 ', (48, 64)),
                                            ('1x1', (1, 1))])
def test_parse_size_reads_height_then_width(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('text, rule, message', [
    ('64by128', {}, 'must be HxW in pixels'), ('128x', {}, 'must be HxW'),
    ('-8x8', {}, 'must be HxW'), ('0x0', {}, 'at least 1x1'),
    ('4x64', {'minimum': 8}, 'at least 8x8'), ('100x128', {'multiple': 32}, 'multiples of 32')])
def test_parse_size_names_the_rule_a_size_breaks(text, rule, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_size(text, **rule)
    assert repr(text) in str(error.value)
