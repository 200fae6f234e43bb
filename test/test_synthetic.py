"""Synthetic scenes: determinism, exact ground-truth geometry per layout, classes, indoor
rules, field of view, camera effects, the scene mix and the dataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jointdistill_core.classes import FLAT, SKY
from jointdistill_core.data.synthetic import (
    DEFAULT_MIX,
    GROUPS,
    INDOOR_LAYOUTS,
    LAYOUTS,
    SPLIT_SEED_START,
    SceneMix,
    SyntheticStreetDataset,
    camera_rotation,
    render_scene,
)
from jointdistill_core.data.synthetic.camera import CAR_RIG, HANDHELD_RIG, ROBOT_RIG

RIG_HEIGHTS = {rig.name: rig.height_m for rig in (CAR_RIG, ROBOT_RIG, HANDHELD_RIG)}
ROAD_LAYOUTS = tuple(GROUPS['road'])


def _only(layout: str) -> SceneMix:
    return SceneMix.parse(f'{layout}=1')


def _world_rays(frame) -> np.ndarray:
    """(3, H, W) world ray directions with optical z = 1, from K and the pose only."""
    height, width = frame.depth.shape
    v, u = np.mgrid[0:height, 0:width]
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)]).astype(np.float64)
    rays = frame.rotation_cam_to_world @ np.linalg.solve(frame.K, pixels)
    return rays.reshape(3, height, width)


def test_same_seed_gives_bit_identical_arrays():
    first, second = render_scene(123, 48, 96), render_scene(123, 48, 96)
    for name in ('image', 'depth', 'labels', 'K', 'rotation_cam_to_world', 'camera_position'):
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert first.layout == second.layout and first.lighting == second.lighting
    other = render_scene(124, 48, 96)
    assert not np.array_equal(first.image, other.image)
    assert not np.array_equal(first.depth, other.depth)


def test_scene_does_not_depend_on_the_image_size():
    """Layout, camera and light come from the seed alone, not from the image size."""
    for seed in range(4):
        small, large = render_scene(seed, 30, 40), render_scene(seed, 90, 160)
        assert (small.layout, small.lighting) == (large.layout, large.lighting)
        np.testing.assert_array_equal(small.camera_position, large.camera_position)
        np.testing.assert_array_equal(small.rotation_cam_to_world, large.rotation_cam_to_world)
        assert small.horizontal_fov_rad == large.horizontal_fov_rad


def test_dtypes_shapes_and_value_ranges():
    for seed in range(12):
        frame = render_scene(seed, 40, 72)
        assert frame.image.shape == (40, 72, 3) and frame.image.dtype == np.uint8
        assert frame.depth.shape == (40, 72) and frame.depth.dtype == np.float32
        assert frame.labels.shape == (40, 72) and frame.labels.dtype == np.uint8
        assert frame.K.shape == (3, 3) and frame.K.dtype == np.float64
        assert np.all(np.isfinite(frame.depth)) and frame.depth.min() >= 0
        assert set(np.unique(frame.labels)) <= set(range(7))
        # Sky is exactly the invalid-depth set; everything else has a surface.
        np.testing.assert_array_equal(frame.depth == 0, frame.labels == SKY)
        assert frame.depth.max() < 400.0
        assert frame.layout in LAYOUTS
        assert frame.lighting in (('indoor',) if frame.indoor else ('clear', 'overcast', 'dusk'))
        low, high = RIG_HEIGHTS['car'] if frame.layout in ROAD_LAYOUTS else (0.3, 1.7)
        assert low <= frame.camera_height_m <= high
        assert np.deg2rad(40) <= frame.horizontal_fov_rad <= np.deg2rad(110)
        focal = 36.0 / np.tan(frame.horizontal_fov_rad / 2)
        np.testing.assert_allclose(frame.K, [[focal, 0, 35.5], [0, focal, 19.5], [0, 0, 1]])
        standing_on = frame.camera_position[2] - frame.camera_height_m
        assert min(abs(standing_on - level) for level in frame.ground_levels_m) < 1e-12


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


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_ground_depth_is_the_analytic_plane_intersection(layout):
    """Every flat pixel lies on the ground: its depth is the ray's intersection with one of
    the horizontal ground planes (road Z = 0, raised sidewalks), recomputed here from K and
    the pose alone, or it is on a kerb face between them; and no pixel sees below Z = 0."""
    exact = flat_total = 0
    for seed in range(4):
        frame = render_scene(seed, 48, 96, _only(layout))
        rays = _world_rays(frame)
        oz, dz = frame.camera_position[2], rays[2]
        depth = frame.depth.astype(np.float64)
        flat = frame.labels == FLAT
        with np.errstate(divide='ignore', invalid='ignore'):
            plane_depths = [(level - oz) / dz for level in frame.ground_levels_m]
        on_plane = np.zeros(flat.shape, bool)
        for expected in plane_depths:
            on_plane |= (dz < 0) & (np.abs(depth - expected) <= 2e-6 * expected)
        height = oz + depth * dz
        assert np.all(height[flat] >= -1e-4), layout
        assert np.all(height[flat] <= max(frame.ground_levels_m) + 1e-4), layout
        floor_depth = np.where(dz < 0, plane_depths[0], np.inf)
        assert np.all(depth <= floor_depth * (1 + 1e-6)), layout   # nothing below the ground
        exact += int((on_plane & flat).sum())
        flat_total += int(flat.sum())
    assert flat_total > 1000
    # All but the kerb faces (a few pixels per frame at this size).
    assert exact >= 0.95 * flat_total, (exact, flat_total)


def test_every_class_appears_across_a_small_set():
    frames_with_class = np.zeros(7, int)
    outdoor = 0
    for seed in range(40):
        frame = render_scene(SPLIT_SEED_START['test'] + seed, 48, 96)
        present = np.bincount(frame.labels.ravel(), minlength=256)[:7] > 0
        frames_with_class += present
        outdoor += not frame.indoor
        if not frame.indoor:
            assert present[SKY] or frame.depth.max() < 400
    # Every class in several frames; flat, construction and object in nearly all.
    assert frames_with_class.min() >= 5, frames_with_class
    assert frames_with_class[[FLAT, 1, 2]].min() >= 36, frames_with_class
    assert frames_with_class[SKY] >= 0.8 * outdoor


@pytest.mark.parametrize('layout', INDOOR_LAYOUTS)
def test_indoor_scenes_have_no_sky_and_bounded_depth(layout):
    for seed in range(3):
        frame = render_scene(seed, 40, 64, _only(layout))
        assert frame.indoor and frame.lighting == 'indoor' and frame.ceiling_m is not None
        assert not np.any(frame.labels == SKY)
        assert np.all(frame.depth > 0)           # walls close every view
        assert frame.depth.max() < 120.0
        rays = _world_rays(frame)
        height = frame.camera_position[2] + frame.depth * rays[2]
        assert height.max() <= frame.ceiling_m + 1e-3   # nothing above the ceiling


def test_field_of_view_range_is_honoured_and_k_matches_it():
    for seed in range(6):
        frame = render_scene(seed, 30, 50, fov_range_deg=(70, 70))
        assert frame.horizontal_fov_rad == pytest.approx(np.deg2rad(70))
        assert frame.K[0, 0] == pytest.approx(25.0 / np.tan(np.deg2rad(35)))
        assert frame.K[1, 1] == frame.K[0, 0]
    fovs = [np.rad2deg(render_scene(seed, 16, 16, fov_range_deg=(30, 130)).horizontal_fov_rad)
            for seed in range(40)]
    assert 30 <= min(fovs) < 45 and 115 < max(fovs) <= 130
    with pytest.raises(ValueError, match='field of view'):
        render_scene(0, 16, 16, fov_range_deg=(100, 50))


def test_camera_effects_change_the_image_only():
    for seed in range(8):
        clean = render_scene(seed, 40, 64, camera_effects=False)
        real = render_scene(seed, 40, 64)
        np.testing.assert_array_equal(clean.depth, real.depth)
        np.testing.assert_array_equal(clean.labels, real.labels)
        np.testing.assert_array_equal(clean.K, real.K)
        assert clean.layout == real.layout
        assert not np.array_equal(clean.image, real.image)


def test_scene_mix_parses_weighs_and_rejects():
    mix = SceneMix.parse('road=3, indoor=1')
    fractions = mix.fractions()
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert sum(fractions[name] for name in GROUPS['road']) == pytest.approx(0.75)
    assert sum(fractions[name] for name in GROUPS['indoor']) == pytest.approx(0.25)
    assert not set(fractions) & set(GROUPS['sidewalk'])
    rng = np.random.default_rng(0)
    draws = [mix.draw(rng) for _ in range(4000)]
    assert np.mean([name in GROUPS['road'] for name in draws]) == pytest.approx(0.75, abs=0.03)
    default = DEFAULT_MIX.fractions()
    assert sum(default[name] for name in GROUPS['indoor']) == pytest.approx(0.3)
    assert SceneMix.parse(str(DEFAULT_MIX)) == DEFAULT_MIX
    for frame_seed in range(3):
        assert render_scene(frame_seed, 16, 16, _only('corridor')).layout == 'corridor'
    for bad, message in (('road', 'name=weight'), ('moon=1', 'unknown layout'),
                         ('road=-1', '>= 0'), ('road=0', 'all be zero'), ('', 'at least one')):
        with pytest.raises(ValueError, match=message):
            SceneMix.parse(bad)


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
    indoor = SyntheticStreetDataset('train', 2, 24, 32, _only('office'), (60, 60))
    expected = render_scene(1, 24, 32, _only('office'), (60, 60))
    np.testing.assert_array_equal(indoor[1]['depth'][0].numpy(), expected.depth)
    assert indoor[1]['K'][0, 0].item() == pytest.approx(16 / np.tan(np.deg2rad(30)))


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        SyntheticStreetDataset('training', 3, 32, 64)
    with pytest.raises(IndexError):
        SyntheticStreetDataset('train', 3, 32, 64)[3]
    with pytest.raises(ValueError, match='8x8'):
        render_scene(0, 4, 64)
    with pytest.raises(ValueError, match='field of view'):
        SyntheticStreetDataset('train', 3, 32, 64, fov_range_deg=(5, 50))


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_every_layout_renders_whatever_the_draw(layout):
    """Many seeds over the widest field-of-view range: every random layout draw builds."""
    for seed in range(25):
        frame = render_scene(seed, 12, 16, _only(layout), (10, 150))
        assert frame.layout == layout and np.all(np.isfinite(frame.depth))
