"""The synthetic renderer's parts: exact ray-primitive distances, kerbs of the two-level
ground against brute-force ray marching, screen-space culling against intersecting every
pixel, shadow rays, and the camera model."""
from __future__ import annotations

import numpy as np
import pytest

from jointdistill_core.data.synthetic.camera import camera_rotation, intrinsics, pixel_rays
from jointdistill_core.data.synthetic.effects import CameraEffects, develop, draw_effects
from jointdistill_core.data.synthetic.ground import KERB, LOW, RAISED, Ground, Strip
from jointdistill_core.data.synthetic.layouts import LAYOUTS, SceneMix
from jointdistill_core.data.synthetic.layouts.base import LayoutContext
from jointdistill_core.data.synthetic.layouts.roads import Centerline
from jointdistill_core.data.synthetic.materials import Palette
from jointdistill_core.data.synthetic.noise import Noise
from jointdistill_core.data.synthetic.objects import Kit
from jointdistill_core.data.synthetic.primitives import (
    Box,
    Capsule,
    Convex,
    Cylinder,
    Ellipsoid,
    Material,
    Part,
    yaw_rotation,
)
from jointdistill_core.data.synthetic.raycast import Canvas
from jointdistill_core.data.synthetic.render import _visible_parts

ALONG_Y = (np.array([0.0], np.float32), np.array([1.0], np.float32), np.array([0.0], np.float32))


def _t(shape, origin=(0.0, 0.0, 0.0), direction=ALONG_Y) -> float:
    t, _ = shape.distance(origin, direction)
    return float(t[0])


def test_primitive_distances_match_closed_forms():
    assert _t(Box((0, 10, 0), (1, 1, 1))) == pytest.approx(9.0)
    assert _t(Box((0, 10, 0), (2, 1, 1), yaw_rotation(np.pi / 2))) == pytest.approx(8.0)
    assert _t(Ellipsoid((0, 10, 0), (1, 2, 3))) == pytest.approx(8.0)
    assert _t(Cylinder.between((0, 10, -1), (0, 10, 1), 0.5)) == pytest.approx(9.5)
    assert _t(Capsule((0, 10, -1), (0, 10, 1), 0.5)) == pytest.approx(9.5)
    down = (np.array([0.0], np.float32), np.array([0.0], np.float32),
            np.array([-1.0], np.float32))
    assert _t(Cylinder.between((0, 10, -1), (0, 10, 1), 0.5), (0, 10, 5), down) == pytest.approx(4)
    assert _t(Capsule((0, 10, -1), (0, 10, 1), 0.5), (0, 10, 5), down) == pytest.approx(3.5)
    assert _t(Box((0, 10, 0), (1, 1, 1)), (0, 0, 5)) == np.inf          # passes above
    # From inside a room the first wall ahead is the hit.
    assert _t(Box((0, 3, 0), (5, 8, 4), inside=True)) == pytest.approx(11.0)


def test_surface_normals_face_the_ray():
    rng = np.random.default_rng(0)
    direction = tuple(rng.normal(0, 1, 500).astype(np.float32) for _ in range(3))
    origin = (0.1, -0.2, 0.3)
    rotation = yaw_rotation(0.4, 0.2, -0.1)
    for shape in (Box((0, 0, 0), (2, 3, 1), rotation), Ellipsoid((0, 0, 0), (2, 3, 1), rotation),
                  Cylinder((0, 0, 0), (2, 2, 3), rotation)):
        far = tuple(d * -20 for d in direction)      # origins on a sphere of radius ~20
        for index in range(3):
            far = far[:index] + (far[index] + origin[index],) + far[index + 1:]
        t, state = shape.distance(far, direction)
        hit = np.nonzero(np.isfinite(t))
        assert hit[0].size > 100
        surface = shape.surface(state, hit, far, direction, t[hit])
        rays = np.stack([d[hit] for d in direction], axis=1)
        assert np.all((surface.normal * rays).sum(axis=1) < 1e-4)
        np.testing.assert_allclose(np.linalg.norm(surface.normal, axis=1), 1, atol=1e-5)


def test_convex_prism_equals_the_box_and_shadow_rays_equal_primary_rays():
    rng = np.random.default_rng(1)
    rotation = yaw_rotation(0.3)
    box = Box((1, 8, 1), (1.0, 2.0, 0.5), rotation)
    prism = Convex.prism((1, 8, 1), [(-2, -0.5), (2, -0.5), (2, 0.5), (-2, 0.5)], 1.0, rotation)
    direction = tuple(value.astype(np.float32) for value in
                      (rng.normal(0.1, 0.15, 2000), np.ones(2000), rng.normal(0.05, 0.1, 2000)))
    t_box, _ = box.distance((0.0, 0.0, 1.5), direction)
    t_prism, _ = prism.distance((0.0, 0.0, 1.5), direction)
    assert np.isfinite(t_box).sum() > 200
    np.testing.assert_allclose(t_prism, t_box, rtol=1e-5)
    # The same rays as (per-ray origins, one shared direction), as shadow rays are cast.
    for shape in (box, prism, Ellipsoid((1, 8, 1), (1, 2, 0.5), rotation),
                  Capsule((0, 7, 1), (2, 9, 1), 0.6)):
        t_primary, _ = shape.distance((0.0, 0.0, 1.5), direction)
        for index in np.flatnonzero(np.isfinite(t_primary))[:20]:
            shared = tuple(float(d[index]) for d in direction)
            origins = (np.zeros(3, np.float32), np.zeros(3, np.float32),
                       np.full(3, 1.5, np.float32))
            t_shadow, _ = shape.distance(origins, shared)
            assert t_shadow[0] == pytest.approx(t_primary[index], rel=1e-5)


def test_cutouts_let_rays_through():
    bars = Box((0, 10, 1), (1.0, 0.02, 1.0), cutout=lambda local, face: np.abs(local[:, 0]) < 0.1)
    through_gap = (np.array([0.5], np.float32), np.array([10.0], np.float32),
                   np.array([0.0], np.float32))
    assert _t(bars, (0, 0, 1), through_gap) == np.inf
    assert _t(bars, (0, 0, 1)) == pytest.approx(9.98, rel=1e-5)
    crown = Ellipsoid((0, 10, 0), (1, 1, 1), cutout=lambda local: local[:, 1] > 0)
    assert _t(crown) == pytest.approx(11.0)      # the front is cut away: the back is seen


def _march(ground: Ground, origin, rays: np.ndarray, step: float = 0.02, reach: float = 60.0
           ) -> np.ndarray:
    """First t where the ray is on or below the two-level ground: coarse steps, then
    bisection of the below-ground test (independent of the analytic solution)."""
    def below(t):
        x, y, z = (origin[i] + t * rays[i] for i in range(3))
        surface = np.where(ground.low.contains(x, y), 0.0, ground.raise_m)
        return z <= surface
    steps = np.arange(step, reach, step)
    inside = below(steps[:, None])
    first = inside.argmax(axis=0)
    low, high = steps[np.maximum(first - 1, 0)] * (first > 0), steps[first]
    for _ in range(40):
        middle = (low + high) / 2
        is_below = below(middle)
        high = np.where(is_below, middle, high)
        low = np.where(is_below, low, middle)
    return np.where(inside.any(axis=0), high, np.inf)


@pytest.mark.parametrize('region', ['straight', 'curved', 'crossroads'])
def test_ground_kerbs_match_ray_marching(region):
    """Low camera (0.45 m, a robot's) so that many rays pass over kerbs: the analytic hit
    (road, raised sidewalk or kerb face) equals a brute-force march along each ray."""
    if region == 'straight':
        low = Centerline(0.0).region(4.0)
    elif region == 'curved':
        low = Centerline(0.0, 2.0, 1 / 18.0, 1.4).region(3.5)
    else:
        from jointdistill_core.data.synthetic.ground import Union
        low = Union(Strip(0.0, 0.0, 0.0, 3.0), Strip(0.0, 12.0, np.pi / 2, 4.0))
    ground = Ground(low, 0.15, lambda px, py, kind, fp: (None, None, None))
    rng = np.random.default_rng(3)
    count = 400
    rays = np.stack([rng.uniform(-1, 1, count), np.ones(count), rng.uniform(-0.12, -0.01, count)])
    origin = (-4.8, 0.0, 0.6)      # on the left sidewalk (raised 0.15) looking ahead
    t, kind, normal_xy = ground._hits(*origin, *rays)
    expected = _march(ground, origin, rays)
    finite = np.isfinite(expected) & (t < 55)
    assert finite.sum() > 300
    np.testing.assert_allclose(t[finite], expected[finite], rtol=1e-6, atol=1e-6)
    assert {LOW, RAISED, KERB} <= set(kind[finite].tolist())
    kerb = kind == KERB
    np.testing.assert_allclose(np.linalg.norm(normal_xy[kerb], axis=1), 1, atol=1e-5)
    assert np.all((normal_xy[kerb] * rays[:2, kerb].T).sum(axis=1) < 0)   # facing the camera


def _scene_canvas(layout: str, seed: int, height: int = 40, width: int = 64):
    rng = np.random.default_rng(seed)
    kit = Kit(rng, Noise(rng), Palette(rng))
    scene = LAYOUTS[layout](LayoutContext(rng, kit, np.deg2rad(rng.uniform(40, 110))))
    camera = scene.camera
    K = intrinsics(height, width, camera.horizontal_fov)
    canvas = Canvas(pixel_rays(K, camera.rotation, height, width), camera.position, K,
                    camera.rotation)
    parts, casters = _visible_parts(scene, camera, float(K[0, 0]))
    return canvas, parts, casters, scene


@pytest.mark.parametrize('layout,seed', [('parking', 2), ('street', 0), ('plaza', 4),
                                         ('warehouse', 1), ('office', 3)])
def test_culled_drawing_equals_intersecting_every_pixel(layout, seed):
    """Screen boxes, near-plane clipping, early depth rejection and gathered rays change
    nothing: the z-buffer equals the nearest hit of every part over every pixel."""
    canvas, parts, _, _ = _scene_canvas(layout, seed)
    canvas.draw(parts)
    rays = tuple(canvas.rays32[i] for i in range(3))
    best = np.full(canvas.depth.shape, np.inf)
    label = np.full(canvas.depth.shape, 255, np.uint8)
    for part in parts:
        t, _ = part.shape.distance(canvas.origin_floats, rays)
        closer = t < best
        best[closer] = t[closer]
        label[closer] = part.label
    drawn = np.isfinite(best)
    assert drawn.sum() > 100
    np.testing.assert_array_equal(canvas.depth[drawn], best[drawn])
    assert np.mean(canvas.labels[drawn] == label[drawn]) > 0.999


def test_shadow_rays_darken_only_what_lies_under_a_caster():
    height, width = 60, 80
    K = intrinsics(height, width, np.deg2rad(90))
    rotation = camera_rotation(np.deg2rad(30), 0, 0)
    canvas = Canvas(pixel_rays(K, rotation, height, width), np.array([0.0, 0.0, 3.0]), K, rotation)
    Ground(None, 0.0, lambda px, py, kind, fp: (np.full((px.size, 3), 0.5, np.float32),
                                                np.zeros(px.size, np.uint8), 0.0)).draw(canvas)
    roof = Part(Box((0, 6, 1.5), (1.0, 1.0, 0.1)), 1, Material(np.array([1.0, 1, 1], np.float32)))
    shadowed = canvas.shadowed([roof], np.array([0.0, 0.0, 1.0]))   # sun straight overhead
    points = canvas.surface_points()
    under = (np.abs(points[..., 0]) < 0.9) & (np.abs(points[..., 1] - 6) < 0.9)
    clear = (np.abs(points[..., 0]) > 1.1) | (np.abs(points[..., 1] - 6) > 1.1)
    assert under.sum() > 20 and shadowed[under].all()
    assert not shadowed[clear & np.isfinite(canvas.depth)].any()


def test_camera_development_exposes_and_keeps_shape():
    radiance = np.full((20, 30, 3), 0.7, np.float32)
    depth = np.full((20, 30), 5.0, np.float32)
    neutral = develop(radiance, depth, CameraEffects.neutral(), np.random.default_rng(0))
    assert neutral.dtype == np.uint8 and neutral.shape == (20, 30, 3)
    assert np.ptp(neutral) == 0                       # uniform in, uniform out
    brighter = develop(radiance * 100, depth, CameraEffects.neutral(), np.random.default_rng(0))
    np.testing.assert_array_equal(brighter, neutral)  # auto exposure meters the scene
    assert 90 < int(neutral[0, 0, 0]) < 150           # mid grey
    effects = draw_effects(np.random.default_rng(5), 30)
    first = develop(radiance, depth, effects, np.random.default_rng(1))
    again = develop(radiance, depth, effects, np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)


def test_scene_mix_names_every_layout_once():
    names = set(SceneMix.parse('road=1,sidewalk=1,indoor=1').fractions())
    assert names == set(LAYOUTS)
