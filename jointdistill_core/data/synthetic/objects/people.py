"""People (label human): head with hair, neck, torso, pelvis, jointed arms and legs, hands
and shoes, standing or walking, children and adults, varied clothing, workers in hi-vis
vests and hard hats, backpacks; cyclists (the rider human, the bicycle vehicle, as in
Cityscapes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.classes import HUMAN, VEHICLE
from jointdistill_core.data.synthetic.materials import plain
from jointdistill_core.data.synthetic.objects import Kit, Placement, uniform
from jointdistill_core.data.synthetic.primitives import (
    Cylinder,
    Ellipsoid,
    Hit,
    Material,
    Part,
    Thing,
)

SKIN = np.array([[0.93, 0.76, 0.64], [0.85, 0.64, 0.5], [0.7, 0.5, 0.36], [0.52, 0.36, 0.24],
                 [0.36, 0.24, 0.16]])
HAIR = np.array([[0.05, 0.04, 0.03], [0.2, 0.13, 0.07], [0.45, 0.32, 0.18], [0.75, 0.62, 0.4],
                 [0.55, 0.55, 0.55]])
TOPS = np.array([[0.06, 0.06, 0.07], [0.1, 0.13, 0.28], [0.45, 0.45, 0.47], [0.88, 0.88, 0.86],
                 [0.6, 0.1, 0.1], [0.2, 0.35, 0.65], [0.4, 0.28, 0.18], [0.22, 0.35, 0.2],
                 [0.75, 0.68, 0.52]])
BOTTOMS = np.array([[0.12, 0.18, 0.35], [0.05, 0.05, 0.06], [0.3, 0.3, 0.32],
                    [0.6, 0.54, 0.42], [0.25, 0.2, 0.15]])
HI_VIS = np.array([[0.85, 0.9, 0.1], [0.95, 0.5, 0.05]])


def _leg(height: float, swing: float, bend: float):
    """Knee and ankle offsets (y, z) from the hip for a leg swung by `swing` radians
    (> 0 forward) with the knee bent by `bend` radians."""
    thigh, shin = 0.245 * height, 0.245 * height
    knee = np.array([thigh * np.sin(swing), -thigh * np.cos(swing)])
    ankle = knee + shin * np.array([np.sin(swing - bend), -np.cos(swing - bend)])
    return knee, ankle


def _vest(color, stripe) -> Material:
    """Hi-vis vest: fluorescent with two reflective bands (heights in the torso frame)."""
    def albedo(hit: Hit) -> np.ndarray:
        z = hit.local[:, 2]
        band = (np.abs(z - 0.02) < 0.018) | (np.abs(z + 0.06) < 0.018)
        return np.where(band[:, None], stripe, color)
    return Material(albedo, 0.1)


@dataclass
class _Body:
    """Proportions, gait and clothes of one person (metres, radians)."""
    height: float
    build: float
    head_scale: float
    walking: bool
    phase: float
    amplitude: float
    skin: Material
    top: Material
    bottom: Material
    shoes: Material
    hair: Material
    long_sleeves: bool
    bare_shins: bool


def _draw_body(kit: Kit) -> _Body:
    rng, palette = kit.rng, kit.palette
    child = rng.random() < 0.1
    height = uniform(rng, 1.0, 1.4) if child else uniform(rng, 1.52, 1.95)
    build = uniform(rng, 0.85, 1.2)
    walking = rng.random() < 0.6
    phase = uniform(rng, 0, 2 * np.pi)
    amplitude = np.deg2rad(uniform(rng, 15, 28)) if walking else np.deg2rad(uniform(rng, 0, 5))
    skin = plain(palette.pick(SKIN, 0.03))
    top = palette.pick(TOPS, 0.06) if rng.random() < 0.85 else palette.color(rng.uniform(0, 1, 3))
    bottom = plain(palette.pick(BOTTOMS, 0.05))
    shoes = plain(palette.color((0.08, 0.07, 0.07), 0.05))
    hair = plain(palette.pick(HAIR, 0.03))
    return _Body(height, build, 1.15 if child else 1.0, walking, phase, float(amplitude), skin,
                 Material(top, 0.05), bottom, shoes, hair, rng.random() < 0.65,
                 rng.random() < 0.18)


def _legs(body: _Body, place: Placement) -> tuple[list[Part], float]:
    """Thighs, shins and shoes, the lower foot on the ground; returns them and the hip
    height (metres)."""
    height = body.height
    legs = []
    for side, sign in ((-1, 1.0), (1, -1.0)):
        swing = sign * body.amplitude * np.sin(body.phase)
        bend = (max(0.0, -np.sin(body.phase * sign)) * body.amplitude * 1.2 if body.walking
                else 0.0)
        legs.append((side, *_leg(height, swing, bend)))
    hip_z = 0.52 * height
    hip_z += 0.04 * height - min(hip_z + ankle[1] for _, _, ankle in legs)
    parts: list[Part] = []
    for side, knee, ankle in legs:
        hip = np.array([side * 0.085 * height * body.build, 0.0, hip_z])
        knee_p = hip + [0.0, knee[0], knee[1]]
        ankle_p = hip + [0.0, ankle[0], ankle[1]]
        parts.append(place.capsule(hip, knee_p, 0.047 * height * body.build, HUMAN,
                                   body.bottom))
        parts.append(place.capsule(knee_p, ankle_p, 0.036 * height, HUMAN,
                                   body.skin if body.bare_shins else body.bottom))
        parts.append(place.box(ankle_p + [0.0, 0.035 * height, -0.015 * height],
                               (0.035 * height, 0.065 * height, 0.022 * height), HUMAN,
                               body.shoes))
    return parts, hip_z


def _torso(kit: Kit, body: _Body, place: Placement, hip_z: float, worker: bool
           ) -> list[Part]:
    """Torso (leaning forward when walking; a hi-vis vest on workers) and pelvis."""
    rng, height = kit.rng, body.height
    lean = np.deg2rad(uniform(rng, 2, 7)) if body.walking else 0.0
    center = place.point((0, 0.12 * height * np.sin(lean), hip_z + 0.16 * height))
    rotation = place.rotation @ np.array([[1, 0, 0], [0, np.cos(lean), np.sin(lean)],
                                          [0, -np.sin(lean), np.cos(lean)]])
    half = (0.125 * height * body.build, 0.068 * height * body.build, 0.13 * height)
    material = body.top
    if worker or rng.random() < 0.04:
        material = _vest(kit.palette.pick(HI_VIS, 0.03), np.array([0.8, 0.8, 0.78], np.float32))
    pelvis = place.ellipsoid((0, 0, hip_z + 0.01 * height), (0.1 * height * body.build,
                                                             0.066 * height * body.build,
                                                             0.065 * height), HUMAN, body.bottom)
    return [Part(Cylinder(center, half, rotation), HUMAN, material), pelvis]


def _arms(rng: np.random.Generator, body: _Body, place: Placement, shoulder_z: float
          ) -> list[Part]:
    """Upper arms, forearms (sleeved or bare) and hands, swinging against the legs."""
    height, parts = body.height, []
    for side, sign in ((-1, -1.0), (1, 1.0)):
        swing = (sign * body.amplitude * 1.1 * np.sin(body.phase) if body.walking
                 else np.deg2rad(uniform(rng, -6, 6)))
        fore_angle = swing + np.deg2rad(uniform(rng, 8, 35))       # the elbow bends forward
        shoulder = np.array([side * 0.135 * height * body.build, 0.0, shoulder_z])
        elbow = shoulder + 0.172 * height * np.array([side * 0.05, np.sin(swing), -np.cos(swing)])
        along = np.array([0, np.sin(fore_angle), -np.cos(fore_angle)])
        wrist = elbow + 0.155 * height * (along + [side * 0.03, 0, 0])
        parts.append(place.capsule(shoulder, elbow, 0.03 * height * body.build, HUMAN, body.top))
        parts.append(place.capsule(elbow, wrist, 0.025 * height, HUMAN,
                                   body.top if body.long_sleeves else body.skin))
        parts.append(place.capsule(wrist, wrist + 0.05 * height * along, 0.021 * height, HUMAN,
                                   body.skin))
    return parts


def _head(kit: Kit, body: _Body, place: Placement, neck_z: float, worker: bool
          ) -> tuple[list[Part], np.ndarray, np.ndarray]:
    """Neck, head and hair (or a hard hat on most workers); returns them with the head's
    centre and semi-axes (local metres)."""
    rng, height = kit.rng, body.height
    neck = place.capsule((0, 0, neck_z - 0.02 * height), (0, 0.005 * height,
                                                          neck_z + 0.05 * height),
                         0.026 * height, HUMAN, body.skin)
    center = np.array([0, 0.012 * height, neck_z + 0.11 * height])
    half = np.array([0.052, 0.06, 0.07]) * height * body.head_scale
    parts = [neck, place.ellipsoid(center, half, HUMAN, body.skin)]
    if worker and rng.random() < 0.6:
        helmet = plain(kit.palette.pick([[0.95, 0.85, 0.1], [0.95, 0.95, 0.93],
                                         [0.9, 0.4, 0.05]]))
        parts.append(place.ellipsoid(center + [0, -0.005 * height, 0.03 * height],
                                     half * [1.15, 1.12, 0.85], HUMAN, helmet))
    else:
        long_hair = rng.random() < 0.35
        hair_half = half * [1.06, 1.04, 1.0 + (0.25 if long_hair else 0.0)]
        hair_center = center + [0, -0.016 * height, (0.012 - (0.03 if long_hair else 0)) * height]
        parts.append(place.ellipsoid(hair_center, hair_half, HUMAN, body.hair))
    return parts, center, half


def person(kit: Kit, place: Placement, worker: bool = False) -> Thing:
    """A standing or walking person facing the placement's heading (local +y)."""
    body = _draw_body(kit)
    height = body.height
    parts, hip_z = _legs(body, place)
    shoulder_z = hip_z + 0.295 * height
    parts += _torso(kit, body, place, hip_z, worker)
    parts += _arms(kit.rng, body, place, shoulder_z)
    head, head_center, head_half = _head(kit, body, place, shoulder_z + 0.01 * height, worker)
    parts += head
    if kit.rng.random() < 0.2:
        bag = plain(kit.palette.pick([[0.05, 0.05, 0.06], [0.15, 0.2, 0.4], [0.5, 0.1, 0.1]]))
        parts.append(place.box((0, -0.1 * height * body.build, hip_z + 0.18 * height),
                               (0.1 * height, 0.05 * height, 0.12 * height), HUMAN, bag))
    proxy = [place.capsule((0, 0, 0.12 * height), (0, 0, shoulder_z - 0.04 * height),
                           0.13 * height * body.build, HUMAN, body.top),
             Part(Ellipsoid(place.point(head_center), head_half, place.rotation), HUMAN,
                  body.skin)]
    return Thing(parts, proxy)


def _wheel(place: Placement, y: float, radius: float, material: Material) -> Part:
    """A bicycle wheel facing local x: tyre ring, rim, hub and spokes (a see-through disc)."""
    def keep(local: np.ndarray, face: np.ndarray) -> np.ndarray:
        r = np.hypot(local[:, 1], local[:, 2])
        angle = np.arctan2(local[:, 2], local[:, 1])
        spoke = np.abs(np.mod(angle * 8 / np.pi + 0.5, 1.0) - 0.5) * r < 0.006
        return (r < radius) & ((r > radius - 0.05) | (r < 0.04) | spoke)
    return place.box((0, y, radius), (0.02, radius, radius), VEHICLE, material, cutout=keep)


def bicycle(kit: Kit, place: Placement) -> Thing:
    """Bicycle along local y (vehicle, as Cityscapes counts bicycles): wheels with spokes,
    frame tubes, saddle and handlebar."""
    rng = kit.rng
    radius = uniform(rng, 0.32, 0.36)
    frame = plain(kit.palette.pick(TOPS, 0.08))
    black = plain((0.05, 0.05, 0.05))
    rear, front = -0.52, 0.52
    bracket = np.array([0.0, -0.05, radius - 0.02])
    saddle = np.array([0.0, -0.22, radius + 0.55])
    head = np.array([0.0, front - 0.12, radius + 0.5])
    parts = [_wheel(place, rear, radius, black), _wheel(place, front, radius, black)]
    for start, end in ((bracket, saddle), (bracket, head), (saddle - [0, 0, 0.08], head),
                       ((0, rear, radius), bracket), ((0, rear, radius), saddle - [0, 0, 0.1]),
                       (head, (0, front, radius))):
        parts.append(place.capsule(start, end, 0.018, VEHICLE, frame))
    parts.append(place.box(saddle + [0, 0, 0.03], (0.07, 0.12, 0.025), VEHICLE, black))
    parts.append(place.capsule(head + [-0.25, 0.05, 0.12], head + [0.25, 0.05, 0.12], 0.015,
                               VEHICLE, black))
    return Thing(parts, parts[:2], [place.box((0, 0, radius + 0.2), (0.05, 0.8, radius + 0.2),
                                              VEHICLE, black)])


def cyclist(kit: Kit, place: Placement) -> Thing:
    """A rider (human) pedalling a bicycle (vehicle) along local y."""
    rng, palette = kit.rng, kit.palette
    bike = bicycle(kit, place)
    radius = float(bike.parts[0].shape.half[1])
    skin = plain(palette.pick(SKIN, 0.03))
    top = Material(palette.pick(TOPS, 0.06), 0.05)
    bottom = plain(palette.pick(BOTTOMS, 0.05))
    hip = np.array([0.0, -0.24, radius + 0.62])
    shoulder = hip + [0.0, 0.32, 0.42]
    hands = np.array([0.0, 0.45, radius + 0.62])
    phase = uniform(rng, 0, 2 * np.pi)
    parts: list[Part] = [place.capsule(hip, shoulder, 0.14, HUMAN, top),
                         place.ellipsoid(shoulder + [0, 0.06, 0.2], (0.09, 0.1, 0.12), HUMAN,
                                         skin)]
    if rng.random() < 0.5:
        helmet = plain(palette.pick(TOPS, 0.1))
        parts.append(place.ellipsoid(shoulder + [0, 0.04, 0.27], (0.11, 0.14, 0.08), HUMAN,
                                     helmet))
    for side in (-1, 1):
        crank = phase + (0 if side > 0 else np.pi)
        pedal = np.array([side * 0.1, -0.05 + 0.17 * np.cos(crank), radius - 0.02
                          + 0.17 * np.sin(crank)])
        knee = (hip + pedal) / 2 + [0.0, 0.22, 0.08]
        parts.append(place.capsule(hip + [side * 0.09, 0, 0], knee, 0.07, HUMAN, bottom))
        parts.append(place.capsule(knee, pedal, 0.055, HUMAN, bottom))
        parts.append(place.capsule(shoulder + [side * 0.17, 0, -0.03], hands + [side * 0.22, 0, 0],
                                   0.04, HUMAN, top))
    proxy = [place.capsule(hip, shoulder + [0, 0, 0.25], 0.2, HUMAN, top)]
    return Thing(parts + bike.parts, proxy + bike.proxy, proxy + bike.shadow_parts())
