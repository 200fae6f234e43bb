"""Light: sky and sun (clear, overcast, dusk) or indoor lamps; cast shadows, ambient
occlusion, reflections and haze, all in linear radiance (before the camera, effects.py).

Shading of a surface with albedo a, normal n, emission e:

    L = a * (E_key * max(n . l, 0) * lit * pools + (E_sky * (0.6 + 0.4 n_z)
             + E_bounce * (0.4 - 0.4 n_z)) * ao) + e

lit is 0 where a shadow ray towards the key light (the sun, or the ceiling lamps) is
blocked, ao the screen-space ambient occlusion, pools (indoors) the brightness under the
grid of ceiling lamps. Glossy surfaces mix in the sky seen in the mirror direction
(Schlick's Fresnel term); outdoors light fades into the haze colour with distance.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from jointdistill_core.data.synthetic.noise import Noise
from jointdistill_core.data.synthetic.raycast import Canvas

KINDS = ('clear', 'overcast', 'dusk', 'indoor')


@dataclass
class Environment:
    """The light of one frame. Directions are unit (3,) world vectors towards the light;
    colours are linear RGB radiance (arbitrary units: the camera's auto exposure scales)."""
    kind: str
    key_direction: np.ndarray
    key_color: np.ndarray
    sky_color: np.ndarray          # ambient from above
    bounce_color: np.ndarray       # ambient from below
    zenith: np.ndarray             # sky radiance straight up
    horizon: np.ndarray            # sky radiance at the horizon
    cloud_cover: float             # 0 clear .. 1 overcast
    haze_color: np.ndarray
    visibility_m: float            # haze: light falls to 1/e over this distance
    lamp_grid: tuple[float, float, float, float] | None = None   # spacing x, y, offset x, y
    shadow_softness: float = 0.0   # 0 sharp .. 1 almost none (overcast)


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    return np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                     np.sin(elevation)])


def draw_environment(rng: np.random.Generator, kind: str) -> Environment:
    """Random light of one kind: 'clear', 'overcast', 'dusk' or 'indoor'."""
    azimuth = rng.uniform(0, 2 * np.pi)
    jitter = lambda scale: 1 + rng.uniform(-scale, scale, 3)   # noqa: E731
    if kind == 'clear':
        sun = _direction(azimuth, np.deg2rad(rng.uniform(15, 70)))
        horizon = np.array([0.75, 0.82, 0.92]) * jitter(0.05) * 1.3
        sun_color = np.array([1.0, 0.96, 0.88]) * jitter(0.04) * rng.uniform(2.5, 3.5)
        return Environment(kind, sun, sun_color,
                           np.array([0.42, 0.5, 0.68]) * jitter(0.05), np.array([0.25, 0.23, 0.2]),
                           np.array([0.22, 0.38, 0.78]) * jitter(0.08), horizon,
                           rng.uniform(0.0, 0.55), horizon * 0.9, rng.uniform(250, 1200))
    if kind == 'overcast':
        sun = _direction(azimuth, np.deg2rad(rng.uniform(25, 70)))
        grey = rng.uniform(1.0, 1.5)
        sky = np.array([0.88, 0.9, 0.93]) * grey * jitter(0.03)
        return Environment(kind, sun, np.array([1.0, 1.0, 0.98]) * rng.uniform(0.2, 0.6),
                           sky * 0.75, np.array([0.3, 0.3, 0.3]) * grey, sky * 0.95, sky,
                           1.0, sky * 0.95, rng.uniform(150, 700), shadow_softness=0.6)
    if kind == 'dusk':
        sun = _direction(azimuth, np.deg2rad(rng.uniform(1, 10)))
        horizon = np.array([1.0, 0.62, 0.38]) * jitter(0.08) * rng.uniform(0.9, 1.4)
        sun_color = np.array([1.0, 0.55, 0.28]) * jitter(0.06) * rng.uniform(0.8, 1.6)
        return Environment(kind, sun, sun_color,
                           np.array([0.2, 0.22, 0.35]) * jitter(0.08) * rng.uniform(0.5, 1.0),
                           np.array([0.12, 0.1, 0.1]), np.array([0.08, 0.12, 0.3]) * jitter(0.1),
                           horizon, rng.uniform(0.0, 0.6), horizon * 0.5, rng.uniform(300, 1500))
    if kind == 'indoor':
        tilt = np.deg2rad(rng.uniform(0, 20))
        key = _direction(azimuth, np.pi / 2 - tilt)
        tint = rng.choice([[1.0, 0.9, 0.75], [1.0, 0.98, 0.95], [0.9, 0.96, 1.0]])
        tint = np.asarray(tint) * jitter(0.03)
        spacing = rng.uniform(2.5, 8.0, 2)
        return Environment(kind, key, tint * rng.uniform(0.8, 1.8), tint * rng.uniform(0.35, 0.7),
                           tint * rng.uniform(0.15, 0.3), tint, tint, 0.0, tint * 0.5, np.inf,
                           (spacing[0], spacing[1], *rng.uniform(0, 1, 2) * spacing),
                           shadow_softness=rng.uniform(0.2, 0.6))
    raise ValueError(f'unknown lighting kind {kind!r}; expected one of {KINDS}')


def sky_radiance(env: Environment, noise: Noise, dx, dy, dz) -> np.ndarray:
    """(M, 3) radiance of the sky seen along world directions (M,) each: gradient from the
    horizon to the zenith, clouds on a plane far above, a glow around the sun."""
    length = np.sqrt(dx * dx + dy * dy + dz * dz)
    elevation = np.clip(dz / length, -1, 1)
    blend = np.clip(elevation * 2.2, 0, 1)[:, None] ** 0.6
    color = env.horizon * (1 - blend) + env.zenith * blend
    up = np.maximum(dz / length, 0.02)
    a, b = dx / length / up * 0.6, dy / length / up * 0.6 + 17.0
    clouds = noise.fractal(a, b, 3)
    threshold = 1.0 - env.cloud_cover
    cover = (np.clip((clouds - threshold) * 3.0 + env.cloud_cover * 0.3, 0, 1)
             * np.clip(elevation * 20, 0, 1))[:, None]
    shade = 0.75 + 0.45 * noise.smooth(a * 2.3 + 5.0, b * 2.3)[:, None]
    cloud_color = np.maximum(env.horizon, env.zenith) * shade * (1.1 if env.kind != 'dusk' else 0.8)
    color = color * (1 - cover) + cloud_color * cover
    sun = env.key_direction
    glow = np.clip((dx * sun[0] + dy * sun[1] + dz * sun[2]) / length, 0, 1)
    color = color + env.key_color * (0.5 * glow ** 64 + 0.08 * glow ** 6)[:, None] * (
        1 - 0.7 * cover)
    return color.astype(np.float32)


def ambient_occlusion(canvas: Canvas, radius_m: float, strength: float = 0.9,
                      max_side: int = 96) -> np.ndarray:
    """(H, W) float32 in [0, 1]: 1 open, lower in creases and under objects.

    Screen-space: each pixel looks at 8 neighbours about radius_m metres away on screen; a
    neighbour above the tangent plane within reach occludes. Computed on a grid at most
    max_side pixels high (AO is smooth) and resized back.
    """
    step = max(1, int(np.ceil(canvas.height / max_side)))
    depth = canvas.depth[::step, ::step]
    valid = np.isfinite(depth)
    points = canvas.surface_points()[::step, ::step]
    normal = canvas.normal[::step, ::step]
    height, width = depth.shape
    focal = canvas.K[0, 0] / step
    reach = np.clip(focal * radius_m / np.where(valid, depth, np.inf), 1.0, width / 6)
    rows, cols = np.mgrid[0:height, 0:width]
    occlusion = np.zeros((height, width), np.float32)
    angles = np.arange(8) * (np.pi / 4) + np.pi / 8
    for index, angle in enumerate(angles):
        scale = 0.5 if index % 2 else 1.0
        r = np.clip(np.rint(rows + np.sin(angle) * reach * scale), 0, height - 1).astype(np.int64)
        c = np.clip(np.rint(cols + np.cos(angle) * reach * scale), 0, width - 1).astype(np.int64)
        offset = points[r, c] - points
        distance = np.sqrt((offset * offset).sum(axis=2)) + 1e-4
        cosine = (offset * normal).sum(axis=2) / distance
        falloff = 1.0 / (1.0 + (distance / radius_m) ** 2)
        occlusion += np.clip(cosine - 0.1, 0, 1) * falloff * valid[r, c]
    ao = 1.0 - strength * occlusion / len(angles)
    ao = np.where(valid, ao, 1.0).astype(np.float32)
    if step > 1:
        ao = cv2.resize(ao, (canvas.width, canvas.height), interpolation=cv2.INTER_LINEAR)
    return np.clip(ao, 0, 1)


def _lamp_pools(env: Environment, points: np.ndarray) -> np.ndarray:
    spacing_x, spacing_y, offset_x, offset_y = env.lamp_grid
    fx = np.mod(points[..., 0] - offset_x, spacing_x) - spacing_x / 2
    fy = np.mod(points[..., 1] - offset_y, spacing_y) - spacing_y / 2
    reach = 0.35 * min(spacing_x, spacing_y) + 0.6
    return (0.45 + 0.9 * np.exp(-(fx * fx + fy * fy) / (2 * reach * reach))).astype(np.float32)


def shade(canvas: Canvas, env: Environment, noise: Noise, shadowed: np.ndarray,
          ao: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 linear radiance of the frame, sky included."""
    normal = canvas.normal
    key = env.key_direction.astype(np.float32)
    lambert = np.maximum(normal @ key, 0)
    lit = 1.0 - (1.0 - env.shadow_softness) * shadowed.astype(np.float32)
    if lit.shape[0] > 2:
        lit = cv2.blur(lit, (3, 3))     # a little penumbra
    direct = (lambert * lit)[..., None] * env.key_color.astype(np.float32)
    if env.lamp_grid is not None:
        direct = direct * _lamp_pools(env, canvas.surface_points())[..., None]
    up = normal[..., 2:3]
    ambient = (env.sky_color.astype(np.float32) * (0.6 + 0.4 * up)
               + env.bounce_color.astype(np.float32) * (0.4 - 0.4 * up)) * ao[..., None]
    color = canvas.albedo * (direct + ambient) + canvas.emission

    rays = canvas.rays32
    ray_length = np.sqrt((rays * rays).sum(axis=0))
    surface = np.isfinite(canvas.depth)
    glossy = surface & (canvas.gloss > 0)
    if glossy.any():
        view = rays[:, glossy].T / ray_length[glossy, None]
        n = normal[glossy]
        cosine = np.clip(-(view * n).sum(axis=1), 0, 1)
        mirror = view + 2 * cosine[:, None] * n
        fresnel = canvas.gloss[glossy] * (0.06 + 0.94 * (1 - cosine) ** 5)
        reflected = sky_radiance(env, noise, *mirror.T) if env.kind != 'indoor' else (
            np.broadcast_to(env.sky_color.astype(np.float32) * 1.5, mirror.shape))
        below = mirror[:, 2] < 0
        reflected = np.where(below[:, None], env.bounce_color.astype(np.float32), reflected)
        color[glossy] = color[glossy] * (1 - fresnel[:, None]) + reflected * fresnel[:, None]

    if np.isfinite(env.visibility_m):
        distance = np.where(surface, canvas.depth.astype(np.float32), 0) * ray_length
        transmittance = np.exp(-distance / np.float32(env.visibility_m))[..., None]
        color = color * transmittance + env.haze_color.astype(np.float32) * (1 - transmittance)
    sky = ~surface
    if sky.any():
        color[sky] = sky_radiance(env, noise, *(component[sky] for component in rays))
    return color.astype(np.float32)
