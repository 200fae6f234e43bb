"""Synthetic street scenes: determinism, exact ground geometry, class coverage, dataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jointdistill_core.classes import FLAT, SKY
from jointdistill_core.data.synthetic import (SPLIT_SEED_START, SyntheticStreetDataset,
                                              camera_rotation, render_scene)


def test_same_seed_gives_bit_identical_arrays():
    first, second = render_scene(123, 48, 96), render_scene(123, 48, 96)
    for name in ('image', 'depth', 'labels', 'K', 'rotation_cam_to_world', 'camera_position'):
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    other = render_scene(124, 48, 96)
    assert not np.array_equal(first.image, other.image)
    assert not np.array_equal(first.depth, other.depth)


def test_dtypes_shapes_and_value_ranges():
    for seed in range(5):
        frame = render_scene(seed, 40, 72)
        assert frame.image.shape == (40, 72, 3) and frame.image.dtype == np.uint8
        assert frame.depth.shape == (40, 72) and frame.depth.dtype == np.float32
        assert frame.labels.shape == (40, 72) and frame.labels.dtype == np.uint8
        assert frame.K.shape == (3, 3) and frame.K.dtype == np.float64
        assert np.all(np.isfinite(frame.depth)) and frame.depth.min() >= 0
        assert set(np.unique(frame.labels)) <= set(range(7)) | {255}
        # Sky is exactly the invalid-depth set; everything else has a surface.
        np.testing.assert_array_equal(frame.depth == 0, frame.labels == SKY)
        assert frame.depth.max() < 400.0
        # Camera within the documented ranges.
        assert 1.2 <= frame.camera_height_m <= 1.8
        assert abs(frame.pitch_rad) <= np.deg2rad(5) and abs(frame.roll_rad) <= np.deg2rad(2)
        assert np.deg2rad(60) <= frame.horizontal_fov_rad <= np.deg2rad(90)
        focal = 36.0 / np.tan(frame.horizontal_fov_rad / 2)
        np.testing.assert_allclose(frame.K, [[focal, 0, 35.5], [0, focal, 19.5], [0, 0, 1]])
        assert frame.camera_position[2] == frame.camera_height_m


def test_camera_rotation_conventions():
    # Zero angles: optical x = world X (right), y = -world Z (down), z = world Y (forward).
    np.testing.assert_allclose(camera_rotation(0, 0, 0), [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
                               atol=1e-15)
    pitch = np.deg2rad(4)
    axis = camera_rotation(pitch, 0.3, 0) @ [0, 0, 1]      # roll leaves the optical axis alone
    np.testing.assert_allclose(axis, [0, np.cos(pitch), -np.sin(pitch)], atol=1e-15)
    yawed = camera_rotation(0, 0, np.deg2rad(90)) @ [0, 0, 1]  # yaw > 0 turns left (-X)
    np.testing.assert_allclose(yawed, [-1, 0, 0], atol=1e-15)
    for rotation in (camera_rotation(0.05, -0.03, 0.07), camera_rotation(-0.02, 0.01, -0.08)):
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)


def _expected_ground_depth(frame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Independent ray/plane intersection for every pixel from K and the pose only."""
    height, width = frame.depth.shape
    v, u = np.mgrid[0:height, 0:width]
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)]).astype(np.float64)
    rays = frame.rotation_cam_to_world @ np.linalg.solve(frame.K, pixels)   # (3, H*W), z_cam = 1
    ox, _, oz = frame.camera_position
    dx, dz = rays[0], rays[2]
    half, curb = frame.road_half_width_m, frame.curb_height_m
    with np.errstate(divide='ignore', invalid='ignore'):
        s_raised = (curb - oz) / dz          # sidewalk plane Z = curb height
        s_road = -oz / dz                    # road plane Z = 0
        s_curb = (np.sign(ox + s_road * dx) * half - ox) / dx   # curb face X = +-half
    raised = (dz < 0) & (np.abs(ox + s_raised * dx) >= half)
    road = (dz < 0) & ~raised & (np.abs(ox + s_road * dx) < half)
    expected = np.where(raised, s_raised, np.where(road, s_road, s_curb))
    regions = {'road': road, 'raised': raised, 'curb': (dz < 0) & ~raised & ~road}
    return expected.reshape(height, width), {k: m.reshape(height, width) for k, m in regions.items()}


def test_road_and_sidewalk_depth_is_the_analytic_plane_intersection():
    counts = {'road': 0, 'raised': 0, 'curb': 0}
    for seed in range(12):
        frame = render_scene(seed, 96, 192)
        expected, regions = _expected_ground_depth(frame)
        flat = frame.labels == FLAT
        np.testing.assert_allclose(frame.depth[flat], expected[flat], rtol=2e-6, atol=0)
        for name, region in regions.items():
            counts[name] += int((region & flat).sum())
        # Flat labels only where the pixel ray goes down to the ground.
        assert (flat & ~(regions['road'] | regions['raised'] | regions['curb'])).sum() == 0
    assert counts['road'] > 20_000 and counts['raised'] > 1_000 and counts['curb'] > 10, counts


@pytest.mark.parametrize('split', ['train', 'test'])
def test_every_class_appears_in_100_frames(split):
    start = SPLIT_SEED_START[split]
    frames_with_class = np.zeros(7, int)
    for seed in range(start, start + 100):
        labels = render_scene(seed, 64, 128).labels
        frames_with_class += np.bincount(labels.ravel(), minlength=256)[:7] > 0
    # Every class is in most frames, not merely once.
    assert frames_with_class.min() >= 50, frames_with_class


def test_scenes_vary_with_the_seed():
    frames = [render_scene(seed, 32, 64) for seed in range(6)]
    assert len({round(f.camera_height_m, 6) for f in frames}) == 6
    assert len({round(f.road_half_width_m, 6) for f in frames}) == 6
    assert len({f.image.tobytes() for f in frames}) == 6


def test_dataset_samples_follow_split_seeds():
    dataset = SyntheticStreetDataset('val', 3, 32, 64)
    assert len(dataset) == 3
    sample = dataset[2]
    assert sample['image'].shape == (3, 32, 64) and sample['image'].dtype == torch.float32
    assert sample['depth'].shape == (1, 32, 64) and sample['depth'].dtype == torch.float32
    assert sample['labels'].shape == (32, 64) and sample['labels'].dtype == torch.int64
    assert sample['K'].shape == (3, 3)
    frame = render_scene(1_000_002, 32, 64)
    np.testing.assert_array_equal(sample['image'].numpy(),
                                  frame.image.transpose(2, 0, 1).astype(np.float32) / 255)
    np.testing.assert_array_equal(sample['depth'][0].numpy(), frame.depth)
    np.testing.assert_array_equal(sample['labels'].numpy(), frame.labels)
    assert SPLIT_SEED_START == {'train': 0, 'val': 1_000_000, 'test': 2_000_000}
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch['image'].shape == (2, 3, 32, 64)


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        SyntheticStreetDataset('training', 3, 32, 64)
    with pytest.raises(IndexError):
        SyntheticStreetDataset('train', 3, 32, 64)[3]
    with pytest.raises(ValueError, match='8x8'):
        render_scene(0, 4, 64)
