"""Vehicles: cars, vans, box trucks, buses (roads) and forklifts, trolleys, pallet jacks
(indoors). Label vehicle; cargo carried on trolleys and forks is object.

Road vehicles have a body and a cabin with a sloped windscreen (convex prisms), glazing with
pillars, lights, number plates, bumpers, wheel arches and wheels with hub caps.
"""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import OBJECT, VEHICLE
from jointdistill_core.data.synthetic.materials import face_uv, plain
from jointdistill_core.data.synthetic.objects import Kit, Placement, uniform
from jointdistill_core.data.synthetic.primitives import Hit, Material, Part, Thing

PAINTS = np.array([[0.85, 0.85, 0.84], [0.04, 0.04, 0.05], [0.58, 0.59, 0.61],
                   [0.32, 0.33, 0.35], [0.08, 0.12, 0.30], [0.55, 0.06, 0.05],
                   [0.16, 0.30, 0.60], [0.10, 0.28, 0.15], [0.68, 0.60, 0.45],
                   [0.85, 0.68, 0.10]])
PAINT_WEIGHTS = np.array([0.22, 0.18, 0.16, 0.12, 0.06, 0.08, 0.07, 0.04, 0.04, 0.03])
GLASS = np.array([0.05, 0.065, 0.08], np.float32)
TYRE = np.array([0.04, 0.04, 0.045], np.float32)
DARK_TRIM = np.array([0.06, 0.06, 0.065], np.float32)
LAMP = np.array([0.85, 0.85, 0.8], np.float32)
TAIL = np.array([0.6, 0.04, 0.03], np.float32)
PLATE = np.array([0.88, 0.88, 0.85], np.float32)


def paint(kit: Kit) -> np.ndarray:
    """A road vehicle colour drawn from a realistic mix (mostly white, black, grey)."""
    if kit.rng.random() < 0.12:
        return kit.palette.color(kit.rng.uniform(0.05, 0.9, 3), 0.0)
    return kit.palette.color(PAINTS[kit.rng.choice(len(PAINTS), p=PAINT_WEIGHTS)], 0.04)


def _shadow_box(place: Placement, length: float, width: float, bottom: float, top: float
                ) -> Part:
    """The box a vehicle's shadow is cast from (cheaper than its body and cabin)."""
    return place.box((0, 0, (bottom + top) / 2), (width / 2, length / 2, (top - bottom) / 2),
                     VEHICLE, Material(TYRE))


def _wheel_material(kit: Kit, radius: float) -> Material:
    hub = kit.palette.color((0.55, 0.56, 0.58) if kit.rng.random() < 0.7 else (0.1, 0.1, 0.1))

    def albedo(hit: Hit) -> np.ndarray:
        color = np.broadcast_to(TYRE, (hit.px.size, 3)).copy()
        on_cap = hit.face != 0
        radial = np.hypot(hit.local[:, 0], hit.local[:, 1])
        color[on_cap & (radial < 0.62 * radius)] = hub
        return color
    return Material(albedo, 0.05)


def _axles(place: Placement, kit: Kit, positions, radius: float, width: float) -> list[Part]:
    """One cylinder per axle: both wheels and the dark underbody between them."""
    material = _wheel_material(kit, radius)
    return [place.disc((0, y, radius), (1, 0, 0), radius, width, VEHICLE, material)
            for y in positions]


def _body_material(kit: Kit, color: np.ndarray, half_width: float, nose_z: float,
                   clearance: float, belt_z: float, axles, radius: float) -> Material:
    """Paint with bumpers, lamps, grille, plates, sills and wheel arches on a body prism
    (planes: 0 bottom, 1 front, ..., 5 rear, 6 and 7 sides; vans and trucks have other rear
    indices and simply show no tail lamps)."""

    def regions(hit: Hit) -> dict[str, np.ndarray]:
        x, y, z = hit.local[:, 0], hit.local[:, 1], hit.local[:, 2]
        front, rear, side = hit.face == 1, hit.face == 5, hit.face >= 6
        ax = np.abs(x)
        lamp_band = (ax > half_width - 0.4) & (ax < half_width - 0.05)
        arch = np.zeros(x.shape, bool)
        for axle in axles:
            arch |= side & ((y - axle) ** 2 + (z - radius) ** 2 < (radius + 0.07) ** 2)
        return {
            'trim': ((front | rear) & (z < clearance + 0.22)) | (side & (z < clearance + 0.1)),
            'grille': front & (ax < half_width - 0.45) & (z > nose_z - 0.28) & (z < nose_z - 0.06),
            'head': front & lamp_band & (z > nose_z - 0.2) & (z < nose_z - 0.05),
            'tail': rear & lamp_band & (z > belt_z - 0.3) & (z < belt_z - 0.1),
            'plate': (front | rear) & (ax < 0.26) & (z > clearance + 0.24) & (z < clearance + 0.36),
            'arch': arch,
        }

    def albedo(hit: Hit) -> np.ndarray:
        mask = hit.memo(regions, regions)
        out = np.broadcast_to(color, (hit.px.size, 3)).copy()
        for name, value in (('trim', DARK_TRIM), ('grille', DARK_TRIM), ('head', LAMP),
                            ('tail', TAIL), ('plate', PLATE), ('arch', TYRE)):
            out[mask[name]] = value
        return out

    def emission(hit: Hit) -> np.ndarray:
        mask = hit.memo(regions, regions)
        out = np.zeros((hit.px.size, 3), np.float32)
        out[mask['head']] = (3.0, 2.9, 2.5)
        out[mask['tail']] = (1.2, 0.05, 0.03)
        return out
    return Material(albedo, 0.3, emission if kit.lights_on else None)


def _cabin_material(shape, color: np.ndarray, pillar_y: float | None) -> Material:
    """Glazing inset from the edges of a cabin prism (planes: 0 bottom, 1 windscreen,
    2 roof, 3 rear window, 4 and 5 sides); paint on the roof and the pillars."""

    def glass_mask(hit: Hit) -> np.ndarray:
        distance = shape.plane_distances(hit.local)
        side = hit.face >= 4
        end = (hit.face == 1) | (hit.face == 3)
        inset_side = ((distance[:, 0] < -0.05) & (distance[:, 1] < -0.07)
                      & (distance[:, 2] < -0.05) & (distance[:, 3] < -0.08))
        if pillar_y is not None:
            inset_side &= np.abs(hit.local[:, 1] - pillar_y) > 0.05
        inset_end = ((distance[:, 4] < -0.07) & (distance[:, 5] < -0.07)
                     & (distance[:, 0] < -0.04) & (distance[:, 2] < -0.04))
        return (side & inset_side) | (end & inset_end)

    def albedo(hit: Hit) -> np.ndarray:
        return np.where(hit.memo(glass_mask, glass_mask)[:, None], GLASS, color)

    def gloss(hit: Hit) -> np.ndarray:
        return np.where(hit.memo(glass_mask, glass_mask), np.float32(0.55), np.float32(0.3))
    return Material(albedo, gloss)


def car(kit: Kit, place: Placement) -> Thing:
    """Saloon, hatchback or SUV about 3.8-4.9 m long."""
    rng = kit.rng
    style = rng.choice(['saloon', 'hatchback', 'suv'], p=[0.45, 0.35, 0.2])
    length = uniform(rng, 3.8, 4.9) if style != 'hatchback' else uniform(rng, 3.6, 4.3)
    width = uniform(rng, 1.68, 1.92)
    clearance = uniform(rng, 0.14, 0.2) + (0.08 if style == 'suv' else 0.0)
    belt = uniform(rng, 0.82, 0.98) + (0.15 if style == 'suv' else 0.0)
    roof = belt + uniform(rng, 0.45, 0.6)
    nose = belt - uniform(rng, 0.14, 0.24)
    hood = uniform(rng, 0.95, 1.25)
    boot = {'saloon': uniform(rng, 0.7, 1.0), 'hatchback': uniform(rng, 0.15, 0.3),
            'suv': uniform(rng, 0.2, 0.35)}[str(style)]
    radius = uniform(rng, 0.3, 0.36) + (0.03 if style == 'suv' else 0.0)
    color = paint(kit)
    half_l, half_w = length / 2, width / 2
    axles = (half_l - 0.8, -half_l + 0.75)
    body_profile = [(-half_l, clearance), (half_l, clearance), (half_l, nose),
                    (half_l - 0.3, belt), (-half_l + 0.15, belt), (-half_l, belt - 0.1)]
    body = place.prism((0, 0, 0), body_profile, half_w, VEHICLE,
                       _body_material(kit, color, half_w, nose, clearance, belt, axles, radius))
    rear_base, front_base = -half_l + boot, half_l - hood
    cabin_h = roof - belt
    rear_top = rear_base + cabin_h / np.tan(np.deg2rad(rng.uniform(
        55, 75) if style != 'saloon' else rng.uniform(30, 45)))
    front_top = front_base - cabin_h / np.tan(np.deg2rad(rng.uniform(28, 38)))
    profile = [(rear_base, belt), (front_base, belt), (front_top, roof), (rear_top, roof)]
    cabin_part = place.prism((0, 0, 0), profile, half_w - 0.07, VEHICLE, Material(GLASS))
    cabin_part.material = _cabin_material(cabin_part.shape, color, (rear_top + front_top) / 2)
    wheels = _axles(place, kit, axles, radius, width - 0.08)
    return Thing([body, cabin_part, *wheels], [body, cabin_part],
                 [_shadow_box(place, length, width, clearance, roof)])


def van(kit: Kit, place: Placement) -> Thing:
    """Panel van or minibus, 4.8-6 m long, one-box body with a sloped windscreen."""
    rng = kit.rng
    length, width = uniform(rng, 4.8, 6.0), uniform(rng, 1.9, 2.05)
    clearance, nose = uniform(rng, 0.18, 0.24), uniform(rng, 0.85, 1.0)
    screen_base, roof = nose + uniform(rng, 0.2, 0.3), uniform(rng, 1.95, 2.5)
    radius = uniform(rng, 0.32, 0.37)
    color = paint(kit)
    half_l, half_w = length / 2, width / 2
    profile = [(-half_l, clearance), (half_l, clearance), (half_l, nose),
               (half_l - 0.5, screen_base), (half_l - 1.35, roof), (-half_l, roof)]
    axles = (half_l - 0.85, -half_l + 0.95)
    windows_along = rng.random() < 0.4
    body = place.prism((0, 0, 0), profile, half_w, VEHICLE, Material(GLASS))
    shape = body.shape
    base = _body_material(kit, color, half_w, nose, clearance, nose + 0.1, axles, radius)

    def glass_mask(hit: Hit) -> np.ndarray:
        distance = shape.plane_distances(hit.local)
        z, y = hit.local[:, 2], hit.local[:, 1]
        screen = (hit.face == 3) & (distance[:, 6] < -0.08) & (distance[:, 7] < -0.08)
        band = (hit.face >= 6) & (z > screen_base + 0.05) & (z < roof - 0.3)
        cab = band & (distance[:, 3] < -0.1) & (y > half_l - 2.1)
        along = band & windows_along & (y < half_l - 2.2) & (y > -half_l + 0.4)
        along &= np.mod(y, 1.1) > 0.12
        return screen | cab | along

    def albedo(hit: Hit) -> np.ndarray:
        return np.where(hit.memo(glass_mask, glass_mask)[:, None], GLASS, base.albedo(hit))

    def gloss(hit: Hit) -> np.ndarray:
        return np.where(hit.memo(glass_mask, glass_mask), np.float32(0.55), np.float32(0.3))
    body.material = Material(albedo, gloss, base.emission)
    wheels = _axles(place, kit, axles, radius, width - 0.1)
    return Thing([body, *wheels], [body], [_shadow_box(place, length, width, clearance, roof)])


def truck(kit: Kit, place: Placement) -> Thing:
    """Box truck: cab with windscreen, cargo box 4-7 m, three axles."""
    rng = kit.rng
    width = uniform(rng, 2.3, 2.5)
    cab_l, box_l = uniform(rng, 1.9, 2.4), uniform(rng, 4.0, 7.0)
    box_h, cab_h = uniform(rng, 3.0, 3.7), uniform(rng, 2.5, 2.9)
    clearance, radius = 0.35, uniform(rng, 0.45, 0.52)
    half_w = width / 2
    total = cab_l + box_l + 0.3
    front = total / 2
    cab_color = paint(kit)
    cab_center_y = front - cab_l / 2
    profile = [(-cab_l / 2, clearance), (cab_l / 2, clearance), (cab_l / 2, 1.3),
               (cab_l / 2 - 0.25, cab_h - 0.2), (cab_l / 2 - 0.45, cab_h), (-cab_l / 2, cab_h)]
    cab = place.prism((0, cab_center_y, 0), profile, half_w, VEHICLE, Material(GLASS))
    shape = cab.shape
    base = _body_material(kit, cab_color, half_w, 1.2, clearance, 1.4,
                          (cab_l / 2 - 0.7,), radius)

    def glass_mask(hit: Hit) -> np.ndarray:
        distance = shape.plane_distances(hit.local)
        z = hit.local[:, 2]
        screen = (hit.face == 3) & (distance[:, 6] < -0.1) & (distance[:, 7] < -0.1)
        side = (hit.face >= 6) & (z > 1.55) & (z < cab_h - 0.3) & (hit.local[:, 1] > 0)
        return screen | side

    cab.material = Material(
        lambda hit: np.where(hit.memo(glass_mask, glass_mask)[:, None], GLASS, base.albedo(hit)),
        lambda hit: np.where(hit.memo(glass_mask, glass_mask), np.float32(0.55),
                             np.float32(0.3)), base.emission)
    box_color = kit.palette.pick([[0.9, 0.9, 0.88], [0.85, 0.85, 0.85], [0.6, 0.1, 0.08],
                                  [0.15, 0.25, 0.5], [0.8, 0.75, 0.6]], 0.04)
    box_center = front - cab_l - 0.3 - box_l / 2
    cargo_half = (half_w, box_l / 2, (box_h - clearance - 0.7) / 2)
    cargo = place.box((0, box_center, (clearance + 0.7 + box_h) / 2), cargo_half, VEHICLE,
                      _cargo_material(kit, box_color, cargo_half))
    chassis = place.box((0, box_center, clearance + 0.35), (half_w - 0.25, box_l / 2, 0.2),
                        VEHICLE, plain(DARK_TRIM))
    axles = (front - 0.8, box_center - box_l / 2 + 1.0, box_center - box_l / 2 + 2.1)
    wheels = _axles(place, kit, axles, radius, width - 0.1)
    return Thing([cab, cargo, chassis, *wheels], [cab, cargo])


def _cargo_material(kit: Kit, color: np.ndarray, half) -> Material:
    """Cargo box: rear doors with a centre seam, hinges, lamps and a bumper at the back
    (face 2, local -y), side rails, a logo band sometimes."""
    band = kit.palette.color(kit.rng.uniform(0, 1, 3)) if kit.rng.random() < 0.4 else None

    def albedo(hit: Hit) -> np.ndarray:
        u, v = face_uv(hit, half)
        out = np.broadcast_to(color, (u.size, 3)).copy()
        rear = hit.face == 2
        seam = rear & ((np.abs(u - half[0]) < 0.02) | (np.abs(u - 0.08) < 0.03)
                       | (np.abs(u - 2 * half[0] + 0.08) < 0.03))
        out[seam] *= 0.45
        lamps = rear & (v < 0.25) & ((u < 0.35) | (u > 2 * half[0] - 0.35))
        out[lamps] = TAIL
        out[rear & (v < 0.08)] = DARK_TRIM
        side = hit.face // 2 == 0
        out[side & (v < 0.06)] = DARK_TRIM
        if band is not None:
            out[side & (np.abs(v - half[2]) < 0.35)] = band
        return out
    return Material(albedo, 0.15)


def bus(kit: Kit, place: Placement) -> Thing:
    """City bus, 10-13 m: window band with pillars, large windscreen, lit destination sign."""
    rng = kit.rng
    length, width, height = uniform(rng, 10.0, 13.0), 2.55, uniform(rng, 2.9, 3.3)
    clearance, radius = 0.3, 0.5
    half_l, half_w = length / 2, width / 2
    color = kit.palette.pick([[0.75, 0.08, 0.06], [0.9, 0.9, 0.88], [0.1, 0.3, 0.65],
                              [0.85, 0.7, 0.1], [0.1, 0.45, 0.2]], 0.05)
    profile = [(-half_l, clearance), (half_l, clearance), (half_l, height - 0.25),
               (half_l - 0.2, height), (-half_l, height)]
    body = place.prism((0, 0, 0), profile, half_w, VEHICLE, Material(GLASS))
    sign_emit = np.array([2.2, 1.3, 0.2], np.float32)

    def layout(hit: Hit):
        y, z = hit.local[:, 1], hit.local[:, 2]
        side = hit.face >= 5
        front = (hit.face == 1) | (hit.face == 2)
        glass = side & (z > 1.25) & (z < height - 0.35) & (np.mod(y, 1.45) > 0.12)
        glass |= front & (z > 1.0) & (z < height - 0.45) & (np.abs(hit.local[:, 0]) < half_w - 0.1)
        door = side & (hit.local[:, 0] > 0) & (z > 0.4) & (z < height - 0.4)
        door &= (np.abs(y - (half_l - 1.3)) < 0.6) | (np.abs(y) < 0.6)
        sign = front & (z > height - 0.42) & (z < height - 0.12)
        return glass | door, sign

    def albedo(hit: Hit) -> np.ndarray:
        glass, sign = hit.memo(layout, layout)
        result = np.where(glass[:, None], GLASS, color)
        result[sign] = (0.1, 0.1, 0.1)
        result[hit.local[:, 2] < clearance + 0.25] *= 0.4
        return result

    def emission(hit: Hit) -> np.ndarray:
        _, sign = hit.memo(layout, layout)
        out = np.zeros((hit.px.size, 3), np.float32)
        out[sign] = sign_emit
        return out

    body.material = Material(albedo, lambda hit: np.where(hit.memo(layout, layout)[0],
                                                          np.float32(0.5), np.float32(0.25)),
                             emission)
    wheels = _axles(place, kit, (half_l - 2.5, -half_l + 3.2), radius, width - 0.1)
    return Thing([body, *wheels], [body], [_shadow_box(place, length, width, clearance, height)])


def road_vehicle(kit: Kit, place: Placement) -> Thing:
    """A car (74 %), van (14 %), box truck (7 %) or bus (5 %)."""
    kind = kit.rng.random()
    if kind < 0.74:
        return car(kit, place)
    if kind < 0.88:
        return van(kit, place)
    if kind < 0.95:
        return truck(kit, place)
    return bus(kit, place)


def cardboard(kit: Kit) -> Material:
    """Brown cardboard boxes with a lighter tape line (object cargo)."""
    base = kit.palette.pick([[0.6, 0.45, 0.28], [0.55, 0.42, 0.3], [0.7, 0.6, 0.45],
                             [0.85, 0.85, 0.82]], 0.05)
    noise = kit.noise

    def albedo(hit: Hit) -> np.ndarray:
        tone = noise.solid(hit.px, hit.py, hit.pz, 3.0)
        color = base[None, :] * (0.85 + 0.3 * tone[:, None])
        tape = (hit.face == 5) & (np.abs(hit.local[:, 0]) < 0.03)
        color[tape] *= 1.25
        return color
    return Material(albedo)


def forklift(kit: Kit, place: Placement) -> Thing:
    """Counterbalance forklift (vehicle) with mast, overhead guard and forks; sometimes a
    pallet load on the forks (object)."""
    rng = kit.rng
    color = kit.palette.pick([[0.9, 0.65, 0.05], [0.9, 0.4, 0.05], [0.75, 0.1, 0.08],
                              [0.15, 0.3, 0.6], [0.2, 0.5, 0.2]], 0.05)
    dark = kit.palette.color((0.12, 0.12, 0.13), 0.02)
    paint_m, dark_m = Material(color, 0.2), plain(dark)
    mast_h = uniform(rng, 2.1, 3.0)
    lift = uniform(rng, 0.05, 1.4)
    parts = [place.box((0, -0.3, 0.6), (0.55, 0.95, 0.38), VEHICLE, paint_m),
             place.box((0, -1.15, 0.8), (0.56, 0.2, 0.45), VEHICLE, plain(dark * 1.5)),
             place.box((0, -0.45, 1.1), (0.24, 0.22, 0.12), VEHICLE, dark_m)]
    for x in (-0.48, 0.48):
        for y in (0.35, -0.95):
            parts.append(place.box((x, y, 1.55), (0.035, 0.035, 0.55), VEHICLE, dark_m))
        parts.append(place.box((x * 0.62, 0.78, mast_h / 2 + 0.1), (0.05, 0.07, mast_h / 2),
                               VEHICLE, dark_m))
        parts.append(place.box((x * 0.5, 1.45, lift + 0.04), (0.05, 0.6, 0.03), VEHICLE,
                               plain((0.2, 0.2, 0.2))))
    parts.append(place.box((0, -0.3, 2.12), (0.52, 0.7, 0.025), VEHICLE, dark_m,
                           cutout=lambda local, face: np.mod(local[:, 1] + 1, 0.18) < 0.05))
    parts.append(place.box((0, 0.88, lift + 0.4), (0.5, 0.03, 0.38), VEHICLE, dark_m))
    parts += _axles(place, kit, (0.45,), 0.3, 1.05)
    parts += _axles(place, kit, (-0.95,), 0.25, 0.95)
    proxy = parts[:3]
    if rng.random() < 0.5:
        load_h = uniform(rng, 0.4, 1.2)
        parts.append(place.box((0, 1.45, lift + 0.12), (0.5, 0.6, 0.07), OBJECT,
                               plain(kit.palette.color((0.62, 0.5, 0.35)))))
        parts.append(place.box((0, 1.45, lift + 0.19 + load_h / 2), (0.48, 0.58, load_h / 2),
                               OBJECT, cardboard(kit)))
    return Thing(parts, proxy)


def trolley(kit: Kit, place: Placement) -> Thing:
    """Platform trolley (vehicle) with a push handle, sometimes carrying boxes (object)."""
    rng = kit.rng
    frame = plain(kit.palette.pick([[0.2, 0.35, 0.7], [0.1, 0.1, 0.1], [0.7, 0.7, 0.72],
                                    [0.8, 0.15, 0.1]], 0.04))
    half_l = uniform(rng, 0.45, 0.65)
    parts = [place.box((0, 0, 0.22), (0.32, half_l, 0.025), VEHICLE, frame)]
    for x in (-0.3, 0.3):
        parts.append(place.box((x, -half_l + 0.02, 0.6), (0.015, 0.015, 0.38), VEHICLE, frame))
        for y in (-half_l + 0.08, half_l - 0.08):
            parts.append(place.box((x * 0.9, y, 0.08), (0.03, 0.05, 0.08), VEHICLE,
                                   plain(TYRE)))
    parts.append(place.box((0, -half_l + 0.02, 0.97), (0.31, 0.015, 0.015), VEHICLE, frame))
    if rng.random() < 0.6:
        z = 0.245
        for _ in range(rng.integers(1, 4)):
            h = uniform(rng, 0.2, 0.45)
            parts.append(place.box((uniform(rng, -0.05, 0.05), uniform(rng, -0.1, 0.1),
                                    z + h / 2), (uniform(rng, 0.2, 0.3), uniform(rng, 0.25,
                                                                                 half_l - 0.05),
                                                 h / 2), OBJECT, cardboard(kit),
                                   yaw=uniform(rng, -0.1, 0.1)))
            z += h
    return Thing(parts, parts[:1])


def pallet_jack(kit: Kit, place: Placement) -> Thing:
    """Hand pallet truck: two forks, pump and a tilted handle (vehicle)."""
    color = plain(kit.palette.pick([[0.8, 0.1, 0.08], [0.9, 0.65, 0.05], [0.2, 0.3, 0.6]]))
    parts = [place.box((x, 0.55, 0.05), (0.08, 0.6, 0.04), VEHICLE, color) for x in (-0.28, 0.28)]
    parts.append(place.box((0, -0.1, 0.25), (0.3, 0.1, 0.2), VEHICLE, color))
    parts.append(place.capsule((0, -0.15, 0.4), (0, -0.55, 1.15), 0.025, VEHICLE, plain(TYRE)))
    return Thing(parts, parts[:3])
