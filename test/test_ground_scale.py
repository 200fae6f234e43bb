"""Metric scale from the ground plane and the camera's height (jointdistill_core.ground_scale)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from jointdistill_core.classes import CONSTRUCTION, FLAT
from jointdistill_core.ground_scale import MIN_GROUND_PIXELS, fit_plane, ground_scale

HEIGHT, WIDTH = 120, 160
K = np.array([[140.0, 0.0, 80.0], [0.0, 140.0, 60.0], [0.0, 0.0, 1.0]])


def ground_scene(camera_height: float, pitch_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact depth (H, W) metres and labels of a camera `camera_height` metres above a flat
    floor, pitched down by pitch_deg: floor pixels FLAT, the rest a wall 30 m ahead labelled
    CONSTRUCTION."""
    pitch = math.radians(pitch_deg)
    down = np.array([0.0, math.cos(pitch), math.sin(pitch)])  # the floor's normal, camera frame
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays = np.stack([(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1],
                     np.ones_like(rows)], axis=-1)
    along_down = rays @ down
    floor_depth = np.where(along_down > 1e-6, camera_height / np.maximum(along_down, 1e-6),
                           np.inf)
    is_floor = floor_depth < 30.0
    depth = np.where(is_floor, floor_depth, 30.0).astype(np.float32)
    labels = np.where(is_floor, FLAT, CONSTRUCTION).astype(np.uint8)
    return depth, labels


@pytest.mark.parametrize('pitch_deg', [0.0, 25.0])
def test_a_depth_map_too_near_by_a_factor_gets_that_factor_back(pitch_deg):
    depth, labels = ground_scene(1.5, pitch_deg)
    assert ground_scale(depth * 0.6, labels, K, 1.5) == pytest.approx(1 / 0.6, rel=1e-6)
    assert ground_scale(depth, labels, K, 1.5) == pytest.approx(1.0, rel=1e-6)
    # The camera's height sets the scale: the same prediction on a camera twice as high.
    assert ground_scale(depth, labels, K, 3.0) == pytest.approx(2.0, rel=1e-6)


def test_objects_on_the_ground_do_not_pull_the_plane():
    """A fifth of the floor pixels labelled ground but at random depths (boxes, parked cars,
    mislabelled pixels): the robust fit keeps the scale within 2 %, a plain least-squares
    plane does not."""
    depth, labels = ground_scene(1.2, 10.0)
    rng = np.random.default_rng(0)
    floor = np.flatnonzero(labels == FLAT)
    outliers = rng.choice(floor, floor.size // 5, replace=False)
    noisy = depth.copy().ravel()
    noisy[outliers] = rng.uniform(1.0, 15.0, outliers.size)
    noisy = noisy.reshape(depth.shape)
    assert ground_scale(noisy, labels, K, 1.2) == pytest.approx(1.0, rel=0.02)
    rows, cols = np.nonzero(labels == FLAT)
    points = np.stack([(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1],
                       np.ones(rows.size)], axis=1) * noisy[rows, cols, None]
    centre = points.mean(axis=0)
    normal = np.linalg.svd(points - centre, full_matrices=False)[2][2]
    assert abs(1.2 / abs(normal @ centre) - 1.0) > 0.05


def test_no_scale_without_a_floor():
    depth, labels = ground_scene(1.5, 0.0)
    # Too few ground pixels.
    few = np.full_like(labels, CONSTRUCTION)
    few.ravel()[np.flatnonzero(labels == FLAT)[:MIN_GROUND_PIXELS - 1]] = FLAT
    assert ground_scale(depth, few, K, 1.5) is None
    # A wall labelled as ground (its normal along the optical axis): no floor under the camera.
    wall = np.full_like(depth, 4.0)
    assert ground_scale(wall, np.full_like(labels, FLAT), K, 1.5) is None
    # The ground class of another class map.
    assert ground_scale(depth, labels, K, 1.5, ground_class=CONSTRUCTION) is None
    with pytest.raises(ValueError, match='camera_height'):
        ground_scale(depth, labels, K, 0.0)


def test_fit_plane_recovers_a_hand_made_plane():
    # Points on z = 5 (normal (0, 0, +-1), 5 units from the origin).
    grid = np.stack(np.meshgrid(np.arange(4.0), np.arange(3.0)), -1).reshape(-1, 2)
    points = np.column_stack([grid, np.full(len(grid), 5.0)])
    normal, distance = fit_plane(points)
    assert distance == pytest.approx(5.0)
    np.testing.assert_allclose(np.abs(normal), [0.0, 0.0, 1.0], atol=1e-9)
    assert fit_plane(points[:2]) is None


def test_the_predictor_puts_the_segmented_ground_at_the_camera_height():
    """The shipped student on a synthetic street: with camera_height the depth is its own
    depth times Prediction.ground_scale, the refitted ground then lies at that height, and a
    camera twice as high gets exactly twice the depth."""
    from conftest import REPO_ROOT
    from jointdistill_core.data.synthetic import SceneMix, render_scene
    from jointdistill_core.inference import Predictor
    predictor = Predictor.from_checkpoint(REPO_ROOT / 'models' / 'jointdistill_student',
                                          device='cpu', input_size=(192, 256))
    scene = render_scene(21, 192, 256, SceneMix.parse('road=1'), (60.0, 60.0),
                         camera_effects=False)
    plain = predictor.predict(scene.image, scene.K)
    assert plain.ground_scale is None
    low = predictor.predict(scene.image, scene.K, camera_height=1.4)
    high = predictor.predict(scene.image, scene.K, camera_height=2.8)
    assert low.ground_scale is not None
    np.testing.assert_allclose(low.depth, plain.depth * low.ground_scale, rtol=1e-5)
    np.testing.assert_allclose(high.depth, 2.0 * low.depth, rtol=1e-5)
    assert (low.labels == plain.labels).all()
    assert ground_scale(low.depth, low.labels, scene.K, 1.4) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match='camera_height must be > 0'):
        predictor.predict(scene.image, scene.K, camera_height=-1.0)
    with pytest.raises(ValueError, match='ground_class 7'):
        predictor.predict(scene.image, scene.K, camera_height=1.4, ground_class=7)
