"""Street furniture. Label object: poles, street lights, traffic lights, signs, bollards,
bins, benches, hydrants. Label construction: fences, railings, walls, guard rails."""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import CONSTRUCTION, OBJECT
from jointdistill_core.data.synthetic.materials import box_texture, brick, concrete, plain
from jointdistill_core.data.synthetic.objects import Kit, Placement, single, uniform
from jointdistill_core.data.synthetic.primitives import Hit, Material, Part, Thing

METAL = np.array([[0.45, 0.46, 0.48], [0.15, 0.16, 0.17], [0.12, 0.22, 0.15],
                  [0.6, 0.6, 0.58]])


def _metal(kit: Kit) -> Material:
    return Material(kit.palette.pick(METAL, 0.03), 0.15)


def street_light(kit: Kit, place: Placement, arm_direction: float) -> Thing:
    """Lamp post 5-9 m with an arm reaching `arm_direction` metres along local x (towards
    the road) and a lamp head that glows when the lights are on."""
    rng = kit.rng
    height = uniform(rng, 5.0, 9.0)
    metal = _metal(kit)
    emission = np.array([3.5, 3.0, 2.2], np.float32) if kit.lights_on else None
    lamp = Material(kit.palette.color((0.8, 0.8, 0.75), 0.02), 0.2, emission)
    tip = (arm_direction, 0, height + 0.3)
    parts = [place.cylinder((0, 0, 0), (0, 0, height), uniform(rng, 0.07, 0.12), OBJECT, metal),
             place.capsule((0, 0, height - 0.2), tip, 0.05, OBJECT, metal),
             place.box((arm_direction, 0, height + 0.22), (0.3, 0.14, 0.06), OBJECT, lamp)]
    return Thing(parts, parts[:1])


def traffic_light(kit: Kit, place: Placement, overhead_arm: float = 0.0) -> Thing:
    """Pole with a three-lamp head facing local +y (one lamp lit); with overhead_arm > 0 a
    second head hangs over the road from an arm of that length along local -x."""
    rng = kit.rng
    metal = _metal(kit)
    housing = kit.palette.color((0.1, 0.1, 0.1), 0.03)
    lit = int(rng.integers(3))
    colours = np.array([[0.9, 0.1, 0.05], [0.95, 0.6, 0.05], [0.1, 0.85, 0.4]], np.float32)

    def lamp_mask(hit: Hit):
        front = hit.face == 3
        x, z = hit.local[:, 0], hit.local[:, 2]
        index = np.clip(np.round(-z / 0.28 + 1), 0, 2).astype(np.int64)
        centre_z = (1 - index) * 0.28
        return front & ((x * x + (z - centre_z) ** 2) < 0.09 ** 2), index

    def albedo(hit: Hit) -> np.ndarray:
        mask, index = lamp_mask(hit)
        out = np.broadcast_to(housing, (hit.px.size, 3)).copy()
        out[mask] = colours[index[mask]] * 0.35
        out[mask & (index == lit)] = colours[lit]
        return out

    def emission(hit: Hit) -> np.ndarray:
        mask, index = lamp_mask(hit)
        out = np.zeros((hit.px.size, 3), np.float32)
        out[mask & (index == lit)] = colours[lit] * 4.0
        return out
    head = Material(albedo, 0.2, emission)
    height = uniform(rng, 2.6, 3.4)
    parts = [place.cylinder((0, 0, 0), (0, 0, height + 0.5), 0.08, OBJECT, metal),
             place.box((0, 0.16, height), (0.17, 0.13, 0.45), OBJECT, head)]
    if overhead_arm > 0:
        arm_z = uniform(rng, 5.2, 6.2)
        parts[0] = place.cylinder((0, 0, 0), (0, 0, arm_z + 0.2), 0.12, OBJECT, metal)
        parts.append(place.cylinder((0, 0, arm_z), (-overhead_arm, 0, arm_z), 0.07, OBJECT, metal))
        parts.append(place.box((-overhead_arm * 0.75, 0.16, arm_z - 0.55), (0.17, 0.13, 0.45),
                               OBJECT, head))
    return Thing(parts, parts[:2])


def _sign_material(kit: Kit, shape: str, size: float, aspect: float = 1.0) -> Material:
    """Sign face (border, field and a dark symbol) on the front, grey metal behind; `size`
    is the radius or half width (metres), aspect the half height over the half width."""
    rng = kit.rng
    scheme = rng.integers(4)
    faces = np.array([[0.92, 0.92, 0.9], [0.1, 0.3, 0.7], [0.95, 0.8, 0.1],
                      [0.1, 0.45, 0.2]], np.float32)
    border = np.array([[0.75, 0.08, 0.08], [0.92, 0.92, 0.9], [0.1, 0.1, 0.1],
                       [0.92, 0.92, 0.9]], np.float32)
    face_c = kit.palette.color(faces[scheme], 0.03)
    border_c = kit.palette.color(border[scheme], 0.03)
    back = np.array([0.5, 0.5, 0.52], np.float32)
    glyph = kit.palette.color((0.1, 0.1, 0.1), 0.02)

    def albedo(hit: Hit) -> np.ndarray:
        x, y, z = hit.local[:, 0], hit.local[:, 1], hit.local[:, 2]
        if shape == 'round':
            front = hit.face == 5
            radial = np.hypot(x, y) / size
            edge = radial > 0.78
            symbol = (np.abs(x) < 0.45 * size) & (np.abs(y) < 0.12 * size)
        else:
            front = hit.face == 3
            u, v = np.abs(x) / size, np.abs(z) / (size * aspect)
            edge = (u > 0.85) | (v > 0.85)
            symbol = (u < 0.4) & (v < 0.15)
        out = np.where(edge[:, None], border_c, face_c)
        out[symbol] = glyph
        out[~front] = back
        return out
    return Material(albedo, 0.3)


def sign_post(kit: Kit, place: Placement) -> Thing:
    """A pole with a round or square traffic sign facing local +y."""
    rng = kit.rng
    height = uniform(rng, 2.2, 3.0)
    size = uniform(rng, 0.3, 0.45)
    metal = _metal(kit)
    shape = 'round' if rng.random() < 0.55 else 'square'
    parts = [place.cylinder((0, 0, 0), (0, 0, height + size * 0.8), 0.04, OBJECT, metal)]
    if shape == 'round':
        parts.append(place.disc((0, 0.06, height), (0, 1, 0), size, 0.03, OBJECT,
                                _sign_material(kit, shape, size)))
    else:
        aspect = uniform(rng, 0.6, 1.0)
        parts.append(place.box((0, 0.06, height), (size, 0.015, size * aspect), OBJECT,
                               _sign_material(kit, shape, size, aspect)))
    return Thing(parts, parts)


def bollard(kit: Kit, place: Placement) -> Thing:
    """Short post 0.5-1.1 m, sometimes striped yellow and black (hazard)."""
    rng = kit.rng
    height, radius = uniform(rng, 0.5, 1.1), uniform(rng, 0.06, 0.14)
    if rng.random() < 0.4:
        yellow = kit.palette.color((0.9, 0.75, 0.05), 0.03)
        material = Material(lambda hit: np.where((np.mod(hit.local[:, 2], 0.3) < 0.15)[:, None],
                                                 yellow, np.float32(0.05)), 0.1)
    else:
        material = _metal(kit)
    part = place.cylinder((0, 0, 0), (0, 0, height), radius, OBJECT, material)
    return single(part)


def litter_bin(kit: Kit, place: Placement) -> Thing:
    """Round or square bin, about 1 m."""
    rng = kit.rng
    color = Material(kit.palette.pick([[0.1, 0.25, 0.15], [0.15, 0.15, 0.15], [0.6, 0.6, 0.6],
                                       [0.2, 0.3, 0.55]]), 0.1)
    if rng.random() < 0.5:
        part = place.cylinder((0, 0, 0), (0, 0, uniform(rng, 0.8, 1.1)), uniform(rng, 0.2, 0.3),
                              OBJECT, color)
    else:
        h = uniform(rng, 0.8, 1.2)
        part = place.box((0, 0, h / 2), (0.3, 0.3, h / 2), OBJECT, color)
    return single(part)


def bench(kit: Kit, place: Placement) -> Thing:
    """Bench 1.5-2 m long along local x with a backrest on local -y."""
    rng = kit.rng
    half = uniform(rng, 0.75, 1.0)
    wood = plain(kit.palette.pick([[0.45, 0.3, 0.18], [0.3, 0.3, 0.3], [0.2, 0.3, 0.2]]))
    legs = _metal(kit)
    parts = [place.box((0, 0, 0.45), (half, 0.22, 0.03), OBJECT, wood),
             place.box((0, -0.2, 0.72), (half, 0.02, 0.15), OBJECT, wood, pitch=-0.15)]
    for x in (-half + 0.1, half - 0.1):
        parts.append(place.box((x, 0, 0.22), (0.03, 0.2, 0.22), OBJECT, legs))
    return Thing(parts, parts[:2])


def hydrant(kit: Kit, place: Placement) -> Thing:
    """Fire hydrant, about 0.7 m."""
    color = Material(kit.palette.pick([[0.75, 0.08, 0.05], [0.9, 0.75, 0.1]]), 0.25)
    parts = [place.cylinder((0, 0, 0), (0, 0, 0.6), 0.11, OBJECT, color),
             place.ellipsoid((0, 0, 0.6), (0.12, 0.12, 0.09), OBJECT, color),
             place.cylinder((-0.18, 0, 0.42), (0.18, 0, 0.42), 0.05, OBJECT, color)]
    return Thing(parts, parts[:1])


def fence(kit: Kit, place: Placement, length: float, height: float) -> Thing:
    """Fence `length` metres along local y: metal bars or mesh you can see through, or
    solid wooden boards (construction)."""
    rng = kit.rng
    style = rng.choice(['bars', 'mesh', 'boards'], p=[0.45, 0.3, 0.25])
    half = (0.025, length / 2, height / 2)
    if style == 'boards':
        base = kit.palette.pick([[0.45, 0.32, 0.2], [0.6, 0.5, 0.38], [0.3, 0.22, 0.15]])
        noise = kit.noise

        def boards(u, v, footprint, hit):
            seam = np.mod(u, 0.12) < 0.01
            tone = noise.cell(np.floor(u / 0.12) * 3.1, 0.5)
            return base[None, :] * (0.8 + 0.35 * tone[:, None]) * np.where(seam, 0.6, 1.0)[:, None]
        return single(place.block(half, CONSTRUCTION, box_texture(half, boards)))
    metal = _metal(kit)
    pitch = uniform(rng, 0.1, 0.16) if style == 'bars' else uniform(rng, 0.05, 0.08)
    post_pitch = uniform(rng, 2.0, 3.0)

    def keep(local: np.ndarray, face: np.ndarray) -> np.ndarray:
        y, z = local[:, 1] + np.float32(length / 2), local[:, 2] + np.float32(height / 2)
        posts = np.mod(y, post_pitch) < 0.06
        rails = (z < 0.05) | (z > height - 0.05)
        if style == 'bars':
            bars = np.mod(y, pitch) < 0.022
        else:
            bars = (np.mod(y + z, pitch) < 0.008) | (np.mod(y - z, pitch) < 0.008)
        return posts | rails | bars | (face // 2 != 0)
    part = place.block(half, CONSTRUCTION, metal, cutout=keep)
    return Thing([part], [])


def wall(kit: Kit, place: Placement, length: float, height: float, thickness: float = 0.3
         ) -> Thing:
    """Brick or concrete wall `length` metres along local y (construction)."""
    rng = kit.rng
    half = (thickness / 2, length / 2, height / 2)
    noise = kit.noise
    if rng.random() < 0.6:
        brick_c = kit.palette.pick([[0.55, 0.27, 0.18], [0.62, 0.4, 0.28], [0.45, 0.22, 0.16]])
        mortar = kit.palette.color((0.7, 0.68, 0.62))
        texture = lambda u, v, footprint, hit: brick(noise, brick_c, mortar, u, v, footprint)  # noqa: E731
    else:
        grey = kit.palette.color(np.full(3, uniform(rng, 0.45, 0.7)))
        texture = lambda u, v, footprint, hit: concrete(noise, grey, u, v, footprint, 2.5)  # noqa: E731
    return single(place.block(half, CONSTRUCTION, box_texture(half, texture)))


def guard_rail(kit: Kit, place: Placement, length: float) -> Thing:
    """Steel crash barrier `length` metres along local y on short posts (construction)."""
    steel = Material(kit.palette.color((0.62, 0.63, 0.65), 0.03), 0.35)
    parts = [place.box((0, 0, 0.6), (0.04, length / 2, 0.16), CONSTRUCTION, steel)]
    for y in np.arange(-length / 2 + 1.0, length / 2, 4.0):
        parts.append(place.box((0.08, y, 0.35), (0.05, 0.05, 0.35), CONSTRUCTION, steel))
    return Thing(parts, parts[:1])


def planter(kit: Kit, place: Placement) -> list[Part]:
    """Concrete planter box (object); plants go on top of it (0.5 m high)."""
    half = (uniform(kit.rng, 0.5, 1.2), uniform(kit.rng, 0.5, 1.5), 0.25)
    grey = kit.palette.color((0.6, 0.6, 0.58))
    return [place.box((0, 0, 0.25), half, OBJECT,
                      box_texture(half, lambda u, v, fp, hit: concrete(kit.noise, grey, u, v, fp)))]
