"""`render_scene`: one frame with its exact ground truth, from a seed."""
from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

from jointdistill_core.classes import SKY
from jointdistill_core.data.sample import IGNORE_INDEX
from jointdistill_core.data.synthetic.camera import (
    DEFAULT_FOV_RANGE_DEG,
    CameraPose,
    check_fov_range,
    intrinsics,
    pixel_rays,
)
from jointdistill_core.data.synthetic.effects import CameraEffects, develop, draw_effects
from jointdistill_core.data.synthetic.layouts import DEFAULT_MIX, LAYOUTS, SceneMix
from jointdistill_core.data.synthetic.layouts.base import LayoutContext, Scene
from jointdistill_core.data.synthetic.lighting import ambient_occlusion, shade
from jointdistill_core.data.synthetic.materials import Palette
from jointdistill_core.data.synthetic.noise import Noise
from jointdistill_core.data.synthetic.objects import Kit
from jointdistill_core.data.synthetic.primitives import Part
from jointdistill_core.data.synthetic.raycast import Canvas

MIN_SIDE = 8
DETAIL_MIN_PX = 12.0         # objects smaller than this on screen are drawn as their proxy
SHADOW_REACH_M = 90.0        # objects further than this from the camera cast no shadow


@dataclass
class SceneFrame:
    """One rendered frame with its ground truth and the camera used.

    image: (H, W, 3) uint8 RGB. depth: (H, W) float32 metres along the optical axis, 0 =
    invalid (sky). labels: (H, W) uint8 Cityscapes-7 ids, 255 void. K: (3, 3) float64 pinhole
    intrinsics in pixels. The pose maps optical-frame vectors to the world frame:
    ``p_world = rotation_cam_to_world @ p_cam + camera_position``. camera_height_m is the
    height above the surface the camera stands on; ground_levels_m the heights (metres) of
    the horizontal ground planes (the road at 0, the raised sidewalks); layout the layout
    name, lighting 'clear', 'overcast', 'dusk' or 'indoor'; ceiling_m the ceiling height
    indoors, else None.
    """
    image: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    K: np.ndarray
    camera_height_m: float
    pitch_rad: float            # > 0 tilts the optical axis down
    roll_rad: float             # rotation about the optical axis
    yaw_rad: float              # > 0 turns the camera left (about world Z)
    horizontal_fov_rad: float
    rotation_cam_to_world: np.ndarray   # (3, 3) float64
    camera_position: np.ndarray         # (3,) float64 metres, world frame
    layout: str
    lighting: str
    indoor: bool
    ground_levels_m: tuple[float, ...]
    ceiling_m: float | None


def _visible_parts(scene: Scene, camera: CameraPose, focal: float
                   ) -> tuple[list[Part], list[Part]]:
    """Parts to draw (detailed or proxy by on-screen size) and shadow casters (proxies)."""
    parts: list[Part] = []
    casters: list[Part] = []
    for thing in scene.things:
        center, radius = thing.center_and_radius()
        distance = max(float(np.linalg.norm(center - camera.position)), 0.1)
        detailed = not thing.proxy or focal * radius / distance >= DETAIL_MIN_PX
        parts.extend(thing.parts if detailed else thing.proxy)
        if distance - radius < SHADOW_REACH_M:
            casters.extend(part for part in thing.shadow_parts() if part.casts_shadow)
    return parts, casters


def render_scene(seed: int, height: int, width: int, mix: SceneMix | None = None,
                 fov_range_deg: tuple[float, float] = DEFAULT_FOV_RANGE_DEG,
                 camera_effects: bool = True) -> SceneFrame:
    """Render one scene of (height, width) pixels; the same arguments give identical arrays.

    mix: how often each layout is drawn (default DEFAULT_MIX). fov_range_deg: the horizontal
    field of view is drawn uniformly from this range (degrees). camera_effects: False gives
    a clean image (metered exposure only) of the same scene; depth and labels do not change.
    """
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ValueError(f'render_scene: size must be at least {MIN_SIDE}x{MIN_SIDE} pixels, '
                         f'got {height}x{width}')
    low, high = check_fov_range(fov_range_deg)
    # Building a scene makes tens of thousands of short-lived objects and no reference
    # cycles; pausing the cycle collector meanwhile saves about a third of the build time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _render(seed, height, width, mix or DEFAULT_MIX, (low, high), camera_effects)
    finally:
        if collecting:
            gc.enable()


def _render(seed: int, height: int, width: int, mix: SceneMix, fov_range: tuple[float, float],
            camera_effects: bool) -> SceneFrame:
    low, high = fov_range
    rng = np.random.default_rng(seed)
    camera_rng = np.random.default_rng([seed, 1])      # effects never shift the scene
    layout = mix.draw(rng)
    fov = float(np.deg2rad(rng.uniform(low, high)))
    kit = Kit(rng, Noise(rng), Palette(rng))
    scene = LAYOUTS[layout](LayoutContext(rng, kit, fov))
    camera = scene.camera
    K = intrinsics(height, width, camera.horizontal_fov)
    rotation = camera.rotation
    canvas = Canvas(pixel_rays(K, rotation, height, width), camera.position, K, rotation)
    scene.ground.draw(canvas)
    parts, casters = _visible_parts(scene, camera, float(K[0, 0]))
    canvas.draw(parts)
    shadowed = canvas.shadowed(casters, scene.environment.key_direction)
    ao = ambient_occlusion(canvas, 0.35 if scene.indoor else 0.6)
    radiance = shade(canvas, scene.environment, kit.noise, shadowed, ao)

    nothing = ~np.isfinite(canvas.depth)
    labels = canvas.labels
    labels[nothing] = IGNORE_INDEX if scene.indoor else SKY
    depth = np.where(nothing, 0.0, canvas.depth).astype(np.float32)
    effects = (draw_effects(camera_rng, width, scene.environment.kind) if camera_effects
               else CameraEffects.neutral())
    image = develop(radiance, depth, effects, camera_rng)
    return SceneFrame(image=image, depth=depth, labels=labels, K=K,
                      camera_height_m=camera.height_m, pitch_rad=camera.pitch,
                      roll_rad=camera.roll, yaw_rad=camera.yaw,
                      horizontal_fov_rad=camera.horizontal_fov, rotation_cam_to_world=rotation,
                      camera_position=camera.position, layout=layout,
                      lighting=scene.environment.kind, indoor=scene.indoor,
                      ground_levels_m=scene.ground.levels, ceiling_m=scene.ceiling_m)
