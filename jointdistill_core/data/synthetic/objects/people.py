"""People (label human): head with hair, neck, torso, pelvis, jointed arms and legs, hands
and shoes, standing or walking, children and adults, varied clothing, workers in hi-vis
vests and hard hats, backpacks; cyclists (the rider human, the bicycle vehicle, as in
Cityscapes)."""
from __future__ import annotations

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


def person(kit: Kit, place: Placement, worker: bool = False) -> Thing:
    """A standing or walking person facing the placement's heading (local +y)."""
    rng, palette = kit.rng, kit.palette
    child = rng.random() < 0.1
    height = uniform(rng, 1.0, 1.4) if child else uniform(rng, 1.52, 1.95)
    build = uniform(rng, 0.85, 1.2)
    head_scale = 1.15 if child else 1.0
    walking = rng.random() < 0.6
    phase = uniform(rng, 0, 2 * np.pi)
    amplitude = np.deg2rad(uniform(rng, 15, 28)) if walking else np.deg2rad(uniform(rng, 0, 5))
    skin = palette.pick(SKIN, 0.03)
    top = palette.pick(TOPS, 0.06) if rng.random() < 0.85 else palette.color(rng.uniform(0, 1, 3))
    bottom = palette.pick(BOTTOMS, 0.05)
    shoes = palette.color((0.08, 0.07, 0.07), 0.05)
    hair = palette.pick(HAIR, 0.03)
    long_sleeves = rng.random() < 0.65
    bare_shins = rng.random() < 0.18
    top_m, bottom_m, skin_m = Material(top, 0.05), plain(bottom), plain(skin)

    legs = []
    for side, sign in ((-1, 1.0), (1, -1.0)):
        swing = sign * amplitude * np.sin(phase)
        bend = max(0.0, -np.sin(phase * sign)) * amplitude * 1.2 if walking else 0.0
        legs.append((side, *_leg(height, swing, bend)))
    hip_z = 0.52 * height
    lowest = min(hip_z + ankle[1] for _, _, ankle in legs)
    lift = 0.04 * height - lowest            # keep the lower foot on the ground
    hip_z += lift
    hip_x = 0.085 * height * build
    parts: list[Part] = []
    for side, knee, ankle in legs:
        hip = np.array([side * hip_x, 0.0, hip_z])
        knee_p = hip + [0.0, knee[0], knee[1]]
        ankle_p = hip + [0.0, ankle[0], ankle[1]]
        parts.append(place.capsule(hip, knee_p, 0.047 * height * build, HUMAN, bottom_m))
        parts.append(place.capsule(knee_p, ankle_p, 0.036 * height,
                                   HUMAN, skin_m if bare_shins else bottom_m))
        parts.append(place.box(ankle_p + [0.0, 0.035 * height, -0.015 * height],
                               (0.035 * height, 0.065 * height, 0.022 * height), HUMAN,
                               plain(shoes)))
    shoulder_z = hip_z + 0.295 * height
    lean = np.deg2rad(uniform(rng, 2, 7)) if walking else 0.0
    torso_center = place.point((0, 0.12 * height * np.sin(lean), hip_z + 0.16 * height))
    torso_rotation = place.rotation @ np.array([[1, 0, 0], [0, np.cos(lean), np.sin(lean)],
                                                [0, -np.sin(lean), np.cos(lean)]])
    torso_half = (0.125 * height * build, 0.068 * height * build, 0.13 * height)
    if worker or (rng.random() < 0.04):
        vest = _vest(palette.pick(HI_VIS, 0.03), np.array([0.8, 0.8, 0.78], np.float32))
        torso_material = vest
    else:
        torso_material = top_m
    parts.append(Part(Cylinder(torso_center, torso_half, torso_rotation), HUMAN, torso_material))
    parts.append(place.ellipsoid((0, 0, hip_z + 0.01 * height),
                                 (0.1 * height * build, 0.066 * height * build, 0.065 * height),
                                 HUMAN, bottom_m))
    for side, sign in ((-1, -1.0), (1, 1.0)):
        swing = sign * amplitude * 1.1 * np.sin(phase) if walking else np.deg2rad(
            uniform(rng, -6, 6))
        elbow_bend = np.deg2rad(uniform(rng, 8, 35))
        shoulder = np.array([side * 0.135 * height * build, 0.0, shoulder_z])
        out = side * 0.1
        upper = 0.172 * height
        elbow = shoulder + upper * np.array([out * 0.5, np.sin(swing), -np.cos(swing)])
        fore_angle = swing + elbow_bend
        wrist = elbow + 0.155 * height * np.array([out * 0.3, np.sin(fore_angle),
                                                   -np.cos(fore_angle)])
        hand = wrist + 0.05 * height * np.array([0, np.sin(fore_angle), -np.cos(fore_angle)])
        parts.append(place.capsule(shoulder, elbow, 0.03 * height * build, HUMAN, top_m))
        parts.append(place.capsule(elbow, wrist, 0.025 * height,
                                   HUMAN, top_m if long_sleeves else skin_m))
        parts.append(place.capsule(wrist, hand, 0.021 * height, HUMAN, skin_m))
    neck_z = shoulder_z + 0.01 * height
    parts.append(place.capsule((0, 0, neck_z - 0.02 * height), (0, 0.005 * height,
                                                                 neck_z + 0.05 * height),
                               0.026 * height, HUMAN, skin_m))
    head_center = np.array([0, 0.012 * height, neck_z + 0.11 * height])
    head_half = np.array([0.052, 0.06, 0.07]) * height * head_scale
    parts.append(place.ellipsoid(head_center, head_half, HUMAN, skin_m))
    if worker and rng.random() < 0.6:
        helmet = plain(palette.pick([[0.95, 0.85, 0.1], [0.95, 0.95, 0.93], [0.9, 0.4, 0.05]]))
        parts.append(place.ellipsoid(head_center + [0, -0.005 * height, 0.03 * height],
                                     head_half * [1.15, 1.12, 0.85], HUMAN, helmet))
    else:
        long_hair = rng.random() < 0.35
        hair_half = head_half * [1.06, 1.04, 1.0 + (0.25 if long_hair else 0.0)]
        hair_center = head_center + [0, -0.016 * height, (0.012 - (0.03 if long_hair else 0))
                                     * height]
        parts.append(place.ellipsoid(hair_center, hair_half, HUMAN, plain(hair)))
    if rng.random() < 0.2:
        bag = plain(palette.pick([[0.05, 0.05, 0.06], [0.15, 0.2, 0.4], [0.5, 0.1, 0.1]]))
        parts.append(place.box((0, -0.1 * height * build, hip_z + 0.18 * height),
                               (0.1 * height, 0.05 * height, 0.12 * height), HUMAN, bag))
    proxy = [place.capsule((0, 0, 0.12 * height), (0, 0, shoulder_z - 0.04 * height),
                           0.13 * height * build, HUMAN, top_m),
             Part(Ellipsoid(place.point(head_center), head_half, place.rotation), HUMAN, skin_m)]
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
