"""Indoor objects. Construction: pallet racks (uprights and beams), columns, rooms (with
their doors, windows and dock doors). Object: pallets and their loads, boxes, furniture
(desks, chairs, tables, shelves, cabinets, sofas, televisions, lamps), monitors, boards,
pictures, extinguishers.

A room is one box seen from inside: its walls and ceiling carry textures (doors, windows,
skirting, ceiling panels and lamps) and it casts no shadow; the floor is the ground plane.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jointdistill_core.classes import CONSTRUCTION, OBJECT
from jointdistill_core.data.synthetic.materials import (
    box_texture,
    brick,
    concrete,
    face_uv,
    lines,
    pavers,
    plain,
    plaster,
    stripes,
    wood,
)
from jointdistill_core.data.synthetic.objects import Kit, Placement, single, uniform
from jointdistill_core.data.synthetic.objects.vehicles import cardboard
from jointdistill_core.data.synthetic.primitives import Box, Hit, Material, Part, Thing

HAZARD = [[0.9, 0.75, 0.05], [0.05, 0.05, 0.05]]
RACK_BEAMS = np.array([[0.9, 0.45, 0.05], [0.15, 0.3, 0.6], [0.85, 0.1, 0.08],
                       [0.2, 0.45, 0.25]])
WALL_PAINT = np.array([[0.9, 0.88, 0.82], [0.85, 0.85, 0.85], [0.75, 0.8, 0.85],
                       [0.85, 0.8, 0.7], [0.7, 0.75, 0.65], [0.95, 0.93, 0.9]])


def wall_texture(kit: Kit, style: str):
    """texture(u, v, footprint) of an indoor wall: 'paint', 'block' (concrete blocks),
    'brick', 'cladding' (ribbed metal panels) or 'concrete'."""
    rng, noise = kit.rng, kit.noise
    if style == 'block':
        color = kit.palette.color(np.full(3, uniform(rng, 0.55, 0.8)), 0.04)
        return lambda u, v, fp: pavers(noise, color, u, v, fp, 0.4, 0.2, 0.01, 0.08)
    if style == 'brick':
        color = kit.palette.pick([[0.55, 0.28, 0.2], [0.6, 0.45, 0.35]], 0.04)
        mortar = kit.palette.color((0.7, 0.68, 0.62))
        return lambda u, v, fp: brick(noise, color, mortar, u, v, fp)
    if style == 'cladding':
        color = kit.palette.pick([[0.75, 0.77, 0.78], [0.55, 0.62, 0.7], [0.85, 0.85, 0.8]], 0.04)
        return lambda u, v, fp: color[None, :] * (0.92 - 0.18 * lines(u, 0.25, 0.05, fp))[:, None]
    if style == 'concrete':
        color = kit.palette.color(np.full(3, uniform(rng, 0.5, 0.7)), 0.04)
        return lambda u, v, fp: concrete(noise, color, u, v, fp, 3.0)
    color = kit.palette.pick(WALL_PAINT, 0.05)
    return lambda u, v, fp: plaster(noise, color, u, v, fp)


@dataclass
class RoomPlan:
    """What is on a room's walls and ceiling (metres along a wall from its lower corner).

    ceiling: 'panels' (suspended tiles) or 'trusses' (dark hall roof). lamp_grid: (spacing x,
    spacing y, offset x, offset y) world metres of glowing ceiling lamps. doors: (face,
    centre u, width) on walls (faces 0..3 of the box). windows: (face, centre u, width,
    sill height). docks: (centre u on face 3, the far wall, open) roller doors.
    """
    wall_style: str
    ceiling: str
    lamp_grid: tuple[float, float, float, float]
    doors: list[tuple[int, float, float]] = field(default_factory=list)
    windows: list[tuple[int, float, float, float]] = field(default_factory=list)
    docks: list[tuple[float, bool]] = field(default_factory=list)


@dataclass
class _RoomRegions:
    """Per-pixel masks (M,) of a room surface, and u, v: metres along and above the floor."""
    u: np.ndarray
    v: np.ndarray
    wall: np.ndarray
    door: np.ndarray
    door_frame: np.ndarray
    window: np.ndarray
    dock: np.ndarray
    dock_open: np.ndarray
    lamp: np.ndarray


class RoomSurface:
    """The material of a room's walls and ceiling (see RoomPlan)."""

    WINDOW_LIGHT = np.array([2.4, 2.5, 2.7], np.float32)
    LAMP_LIGHT = np.array([5.0, 5.0, 4.8], np.float32)

    def __init__(self, kit: Kit, plan: RoomPlan, half, height: float):
        self.plan, self.half, self.height = plan, half, height
        self.walls = wall_texture(kit, plan.wall_style)
        self.skirting = kit.palette.color((0.25, 0.22, 0.2), 0.05)
        self.door_color = kit.palette.pick([[0.55, 0.4, 0.25], [0.85, 0.85, 0.83],
                                            [0.3, 0.35, 0.45], [0.6, 0.15, 0.1]], 0.04)
        self.frame_color = kit.palette.color((0.8, 0.8, 0.78), 0.05)
        self.ceiling_color = kit.palette.color((0.9, 0.9, 0.88) if plan.ceiling == 'panels'
                                               else (0.35, 0.35, 0.37), 0.04)
        self.dock_color = kit.palette.pick([[0.75, 0.75, 0.78], [0.2, 0.35, 0.6],
                                            [0.8, 0.3, 0.1]], 0.04)
        self.lamp_half = (0.3, 0.6) if plan.ceiling == 'panels' else (0.35, 1.2)

    def material(self) -> Material:
        return Material(self.albedo, self.gloss, self.emission)

    def regions(self, hit: Hit) -> _RoomRegions:
        u, v = face_uv(hit, self.half)
        v = v - np.float32(0.5)                  # height above the floor
        face, plan = hit.face, self.plan
        empty = np.zeros(u.shape, bool)
        door, frame, window, dock, dock_open = (empty.copy() for _ in range(5))
        for wall_face, center, width in plan.doors:
            near = (face == wall_face) & (np.abs(u - center) < width / 2 + 0.08) & (v < 2.18)
            inner = near & (np.abs(u - center) < width / 2) & (v < 2.1)
            door |= inner
            frame |= near & ~inner
        for wall_face, center, width, sill in plan.windows:
            window |= (face == wall_face) & (np.abs(u - center) < width / 2) & (v > sill) & (
                v < min(sill + 1.6, self.height - 0.3))
        for center, is_open in plan.docks:
            inside = (face == 3) & (np.abs(u - center) < 1.5) & (v < 3.2)
            (dock_open if is_open else dock)[...] |= inside
        spacing_x, spacing_y, offset_x, offset_y = plan.lamp_grid
        fx = np.mod(hit.px - np.float32(offset_x), spacing_x) - np.float32(spacing_x / 2)
        fy = np.mod(hit.py - np.float32(offset_y), spacing_y) - np.float32(spacing_y / 2)
        lamp = (face == 5) & (np.abs(fx) < self.lamp_half[0]) & (np.abs(fy) < self.lamp_half[1])
        return _RoomRegions(u, v, face < 4, door, frame, window, dock, dock_open, lamp)

    def albedo(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        out = self.walls(r.u, r.v, hit.footprint)
        out[r.wall & (r.v < 0.1)] = self.skirting
        top = hit.face == 5
        if self.plan.ceiling == 'panels':
            grid = np.maximum(lines(r.u, 0.6, 0.02, hit.footprint),
                              lines(r.v, 0.6, 0.02, hit.footprint))
            out[top] = self.ceiling_color * (1 - 0.3 * grid[top, None])
        else:
            truss = lines(r.u, 6.0, 0.3, hit.footprint)
            out[top] = self.ceiling_color * (1 - 0.5 * truss[top, None])
        out[r.door_frame] = self.frame_color
        out[r.door] = self.door_color
        out[r.window] = (0.8, 0.85, 0.9)
        ribs = 0.85 + 0.15 * np.sin((r.v[r.dock] * 40).astype(np.float32))
        out[r.dock] = self.dock_color * ribs[:, None]
        out[r.dock_open] = (0.04, 0.04, 0.05)
        out[r.lamp] = (0.95, 0.95, 0.95)
        out[hit.face == 4] = (0.2, 0.2, 0.2)
        return out

    def emission(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        out = np.zeros((hit.px.size, 3), np.float32)
        out[r.window] = self.WINDOW_LIGHT
        out[r.lamp] = self.LAMP_LIGHT
        return out

    def gloss(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        return np.where(r.window, np.float32(0.4), np.where(r.door, np.float32(0.1),
                                                            np.float32(0.02)))


def room(kit: Kit, place: Placement, length: float, width: float, height: float,
         plan: RoomPlan) -> Part:
    """A room `width` (local x) by `length` (local y) by `height` metres, seen from inside,
    its walls and ceiling as `plan` says; it casts no shadow."""
    half = (width / 2, length / 2, (height + 0.5) / 2)
    shape = Box(place.point((0, 0, (height - 0.5) / 2)), half, place.rotation, inside=True)
    return Part(shape, CONSTRUCTION, RoomSurface(kit, plan, half, height).material(),
                casts_shadow=False)


def load_material(kit: Kit) -> Material:
    """Goods on a pallet: cardboard boxes (seams, tape) or shrink-wrapped (glossy white)."""
    if kit.rng.random() < 0.3:
        return Material(kit.palette.color((0.85, 0.86, 0.88), 0.05), 0.35)
    base = cardboard(kit)
    noise = kit.noise

    def albedo(hit: Hit) -> np.ndarray:
        color = base.albedo(hit)
        u, v = hit.local[:, 0] + hit.local[:, 1], hit.local[:, 2]
        seams = np.maximum(lines(u, 0.4, 0.015, hit.footprint), lines(v, 0.3, 0.015, hit.footprint))
        tone = noise.cell(np.floor(u / 0.4) * 1.7, np.floor(v / 0.3) * 2.3)
        return color * ((0.85 + 0.3 * tone) * (1 - 0.35 * seams))[:, None]
    return Material(albedo)


def pallet_load(kit: Kit, place: Placement, width: float = 1.2, depth: float = 0.8,
                height: float | None = None) -> list[Part]:
    """A wooden pallet (0.15 m) with goods on it, centred on the placement (object)."""
    rng = kit.rng
    height = uniform(rng, 0.5, 1.6) if height is None else height
    timber = kit.palette.color((0.62, 0.5, 0.34), 0.06)
    pallet = place.box((0, 0, 0.075), (width / 2, depth / 2, 0.075), OBJECT,
                       box_texture((width / 2, depth / 2, 0.075),
                                   lambda u, v, fp, hit: wood(kit.noise, timber, u, v, fp)))
    inset = uniform(rng, 0.0, 0.06)
    goods = place.box((0, 0, 0.15 + height / 2), (width / 2 - inset, depth / 2 - inset,
                                                  height / 2), OBJECT, load_material(kit))
    return [pallet, goods]


def rack_row(kit: Kit, place: Placement, length: float, depth: float, levels: int,
             level_h: float, bay: float, fill: float) -> Thing:
    """Pallet rack `length` metres along local y, `depth` across (local x): uprights
    (construction), orange or blue beams at every level (construction) and pallet loads
    (object) in a `fill` fraction of the bays."""
    rng = kit.rng
    upright = plain(kit.palette.pick([[0.15, 0.3, 0.6], [0.5, 0.5, 0.52], [0.85, 0.6, 0.05]], 0.04))
    beam = Material(kit.palette.pick(RACK_BEAMS, 0.04), 0.2)
    bays = max(1, int(round(length / bay)))
    bay = length / bays
    parts: list[Part] = []
    for index in range(bays + 1):
        y = -length / 2 + index * bay
        for x in (-depth / 2 + 0.04, depth / 2 - 0.04):
            half_height = levels * level_h / 2 + 0.1
            parts.append(place.box((x, y, half_height), (0.04, 0.045, half_height),
                                   CONSTRUCTION, upright))
    for level in range(levels):
        z = level * level_h
        if level > 0:
            for x in (-depth / 2 + 0.05, depth / 2 - 0.05):
                parts.append(place.box((x, 0, z - 0.06), (0.05, length / 2, 0.06), CONSTRUCTION,
                                       beam))
        for index in range(bays):
            if rng.random() > fill:
                continue
            y = -length / 2 + (index + 0.5) * bay
            top = level_h - 0.25 if level < levels - 1 else uniform(rng, 0.8, 1.8)
            load_h = uniform(rng, 0.4, max(0.5, top - 0.2))
            parts += pallet_load(kit, Placement(*place.point((0, y, z)), yaw=place.yaw + np.pi / 2),
                                 min(bay - 0.2, 2.4) / 2 + 0.4, depth - 0.1, load_h)
    proxy = [place.box((0, 0, (levels * level_h) / 2), (depth / 2, length / 2,
                                                        levels * level_h / 2), CONSTRUCTION,
                       _rack_texture(kit, (depth / 2, length / 2, levels * level_h / 2),
                                     level_h, bay, beam.albedo, upright.albedo))]
    return Thing(parts, proxy)


def rack_block(kit: Kit, place: Placement, length: float, depth: float, levels: int,
               level_h: float, bay: float) -> Thing:
    """A rack row as one textured box: for rows the camera only sees from afar."""
    upright = kit.palette.pick([[0.15, 0.3, 0.6], [0.5, 0.5, 0.52]], 0.04)
    beam = kit.palette.pick(RACK_BEAMS, 0.04)
    half = (depth / 2, length / 2, levels * level_h / 2)
    part = place.box((0, 0, half[2]), half, CONSTRUCTION,
                     _rack_texture(kit, half, level_h, bay, beam, upright))
    return single(part)


def _rack_texture(kit: Kit, half, level_h: float, bay: float, beam, upright) -> Material:
    goods = cardboard(kit).albedo

    def albedo(hit: Hit) -> np.ndarray:
        u, v = face_uv(hit, half)
        out = goods(hit) * 0.8
        shade = np.mod(v, level_h) > level_h * 0.85
        out[shade] *= 0.3
        beam_band = np.mod(v, level_h) < 0.12
        out[beam_band] = beam
        out[lines(u, bay, 0.09, hit.footprint) > 0.5] = upright
        return out
    return Material(albedo)


def column(kit: Kit, place: Placement, size: float, height: float) -> Thing:
    """Square concrete or steel column with a hazard-striped foot (construction)."""
    color = kit.palette.color(np.full(3, uniform(kit.rng, 0.45, 0.75)), 0.04)
    half = (size / 2, size / 2, height / 2)

    def texture(u, v, fp, hit):
        out = concrete(kit.noise, color, u, v, fp, 4.0)
        foot = v < 1.2
        out[foot] = stripes(u[foot] + v[foot], 0.2, HAZARD, fp[foot] if fp is not None else None)
        return out
    return single(place.block(half, CONSTRUCTION, box_texture(half, texture)))


def desk(kit: Kit, place: Placement) -> Thing:
    """Desk 1.2-1.8 m with legs, often a monitor and a keyboard (object)."""
    rng = kit.rng
    width, depth = uniform(rng, 1.2, 1.8), uniform(rng, 0.6, 0.8)
    top_color = kit.palette.pick([[0.75, 0.6, 0.42], [0.9, 0.9, 0.88], [0.35, 0.25, 0.18],
                                  [0.5, 0.5, 0.5]], 0.04)
    legs = plain(kit.palette.pick([[0.2, 0.2, 0.2], [0.7, 0.7, 0.72]]))
    half = (width / 2, depth / 2, 0.015)
    parts = [place.box((0, 0, 0.735), half, OBJECT, box_texture(
        half, lambda u, v, fp, hit: wood(kit.noise, top_color, u, v, fp)))]
    for sx in (-1, 1):
        parts.append(place.box((sx * (width / 2 - 0.04), 0, 0.36), (0.025, depth / 2 - 0.03, 0.36),
                               OBJECT, legs))
    if rng.random() < 0.7:
        screen = Material(np.array([0.03, 0.03, 0.04], np.float32), 0.5,
                          np.array([0.3, 0.35, 0.45], np.float32) if rng.random() < 0.5 else None)
        x = uniform(rng, -0.2, 0.2)
        parts.append(place.box((x, depth / 2 - 0.2, 1.0), (0.28, 0.02, 0.18), OBJECT, screen))
        parts.append(place.box((x, depth / 2 - 0.18, 0.8), (0.03, 0.03, 0.07), OBJECT, legs))
        parts.append(place.box((x, -0.05, 0.76), (0.22, 0.07, 0.01), OBJECT,
                               plain((0.1, 0.1, 0.1))))
    return Thing(parts, parts[:1])


def office_chair(kit: Kit, place: Placement) -> Thing:
    """Swivel chair: seat, backrest, column and a five-star base (object)."""
    fabric = plain(kit.palette.pick([[0.1, 0.1, 0.12], [0.15, 0.2, 0.4], [0.4, 0.1, 0.1],
                                     [0.3, 0.3, 0.3]], 0.04))
    metal = plain((0.15, 0.15, 0.15))
    parts = [place.box((0, 0, 0.47), (0.24, 0.24, 0.04), OBJECT, fabric),
             place.box((0, -0.24, 0.78), (0.22, 0.03, 0.25), OBJECT, fabric, pitch=-0.12),
             place.cylinder((0, 0, 0.1), (0, 0, 0.44), 0.025, OBJECT, metal)]
    for angle in np.arange(5) * 2 * np.pi / 5:
        parts.append(place.capsule((0, 0, 0.08), (0.3 * np.cos(angle), 0.3 * np.sin(angle), 0.04),
                                   0.02, OBJECT, metal))
    return Thing(parts, parts[:2])


def bookcase(kit: Kit, place: Placement, width: float, height: float) -> Thing:
    """Shelving unit against a wall, its back to local -y, with rows of book spines."""
    rng = kit.rng
    depth = uniform(rng, 0.3, 0.45)
    carcass = kit.palette.pick([[0.75, 0.6, 0.42], [0.9, 0.9, 0.88], [0.3, 0.22, 0.16]], 0.04)
    shelf_h = uniform(rng, 0.32, 0.42)
    noise = kit.noise
    half = (width / 2, depth / 2, height / 2)
    fill = uniform(rng, 0.55, 0.9)

    def texture(u, v, fp, hit):
        out = np.broadcast_to(carcass, (u.size, 3)).copy()
        front = hit.face == 3
        cell = np.mod(v, shelf_h)
        frame = (cell < 0.025) | (u < 0.025) | (u > width - 0.025) | (v > height - 0.03)
        books = front & ~frame & (cell < shelf_h * fill)
        spine = noise.cell(u * 28.0, np.floor(v / shelf_h) * 5.1)
        colors = np.stack([0.2 + 0.6 * spine, 0.15 + 0.5 * noise.cell(u * 28.0 + 9, 3.3),
                           0.1 + 0.5 * noise.cell(u * 28.0 + 17, 1.1)], axis=1)
        out[books] = colors[books]
        out[front & ~frame & ~books] *= 0.35
        return out
    return single(place.block(half, OBJECT, box_texture(half, texture)))


def cabinet(kit: Kit, place: Placement) -> Thing:
    """Filing cabinet or sideboard with drawer fronts (object)."""
    rng = kit.rng
    width, height = uniform(rng, 0.4, 1.6), uniform(rng, 0.7, 1.4)
    color = kit.palette.pick([[0.6, 0.62, 0.64], [0.9, 0.9, 0.88], [0.45, 0.33, 0.22]], 0.04)
    half = (width / 2, 0.25, height / 2)
    rows = int(rng.integers(2, 5))

    def texture(u, v, fp, hit):
        gaps = lines(v, height / rows, 0.012, fp)
        return color[None, :] * (1 - 0.6 * gaps)[:, None]
    return single(place.block(half, OBJECT, box_texture(half, texture)))


def sofa(kit: Kit, place: Placement) -> Thing:
    """Two- or three-seat sofa, back to local -y (object)."""
    rng = kit.rng
    width = uniform(rng, 1.5, 2.3)
    fabric = plain(kit.palette.pick([[0.35, 0.3, 0.25], [0.2, 0.25, 0.35], [0.55, 0.5, 0.45],
                                     [0.4, 0.12, 0.1]], 0.05))
    parts = [place.box((0, 0, 0.22), (width / 2, 0.45, 0.2), OBJECT, fabric),
             place.box((0, -0.35, 0.6), (width / 2, 0.12, 0.25), OBJECT, fabric)]
    for sx in (-1, 1):
        parts.append(place.box((sx * (width / 2 - 0.1), 0, 0.45), (0.1, 0.45, 0.15), OBJECT,
                               fabric))
    return Thing(parts, parts[:2])


def wall_item(kit: Kit, place: Placement, kind: str) -> Thing:
    """On a wall facing local +y: 'board' (whiteboard or notice board), 'picture',
    'extinguisher' (red cylinder) or 'sign' (object)."""
    rng = kit.rng
    if kind == 'extinguisher':
        red = Material(kit.palette.color((0.75, 0.06, 0.05), 0.03), 0.3)
        part = place.cylinder((0, 0.1, 0.9), (0, 0.1, 1.45), 0.09, OBJECT, red)
        return single(part)
    if kind == 'picture':
        w, h = uniform(rng, 0.4, 1.2), uniform(rng, 0.3, 0.9)
        noise = kit.noise
        tint = kit.palette.color(rng.uniform(0.2, 0.8, 3))

        def texture(u, v, fp, hit):
            return tint[None, :] * (0.5 + noise.fractal(u * 3, v * 3)[:, None])
        half = (w / 2, 0.015, h / 2)
        part = place.box((0, 0.015, uniform(rng, 1.3, 1.8)), half, OBJECT,
                         box_texture(half, texture))
        return single(part)
    if kind == 'sign':
        color = kit.palette.pick([[0.1, 0.5, 0.2], [0.9, 0.9, 0.9], [0.1, 0.2, 0.6]])
        part = place.box((0, 0.01, uniform(rng, 1.8, 2.3)), (uniform(rng, 0.15, 0.4), 0.01, 0.12),
                         OBJECT, plain(color))
        return single(part)
    w, h = uniform(rng, 0.9, 2.0), uniform(rng, 0.6, 1.2)
    board = kit.palette.pick([[0.93, 0.93, 0.92], [0.65, 0.5, 0.35]], 0.02)
    part = place.box((0, 0.012, 1.0 + h / 2), (w / 2, 0.012, h / 2), OBJECT, Material(board, 0.2))
    return single(part)


def box_stack(kit: Kit, place: Placement) -> Thing:
    """One to four cardboard boxes stacked loosely (object)."""
    rng = kit.rng
    parts: list[Part] = []
    z = 0.0
    for _ in range(rng.integers(1, 5)):
        w, d, h = uniform(rng, 0.25, 0.7), uniform(rng, 0.25, 0.6), uniform(rng, 0.2, 0.5)
        parts.append(place.box((uniform(rng, -0.05, 0.05), uniform(rng, -0.05, 0.05), z + h / 2),
                               (w / 2, d / 2, h / 2), OBJECT, cardboard(kit),
                               yaw=uniform(rng, -0.3, 0.3)))
        z += h
    return Thing(parts, parts)


def table(kit: Kit, place: Placement, height: float | None = None) -> Thing:
    """Dining or coffee table (height 0.4-0.78 m) on four legs (object)."""
    rng = kit.rng
    height = uniform(rng, 0.4, 0.78) if height is None else height
    width, depth = uniform(rng, 0.8, 1.8), uniform(rng, 0.6, 1.0)
    top_color = kit.palette.pick([[0.6, 0.42, 0.26], [0.85, 0.84, 0.8], [0.3, 0.2, 0.14]], 0.05)
    half = (width / 2, depth / 2, 0.02)
    wood_top = box_texture(half, lambda u, v, fp, hit: wood(kit.noise, top_color, u, v, fp))
    parts = [place.box((0, 0, height - 0.02), half, OBJECT, wood_top)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(place.box((sx * (width / 2 - 0.05), sy * (depth / 2 - 0.05),
                                    (height - 0.04) / 2), (0.025, 0.025, (height - 0.04) / 2),
                                   OBJECT, plain(top_color * 0.8)))
    return Thing(parts, parts[:1])


def dining_chair(kit: Kit, place: Placement) -> Thing:
    """Four-legged chair with a backrest on local -y (object)."""
    color = kit.palette.pick([[0.55, 0.38, 0.22], [0.2, 0.2, 0.2], [0.85, 0.85, 0.82]], 0.05)
    material = plain(color)
    parts = [place.box((0, 0, 0.45), (0.21, 0.21, 0.02), OBJECT, material),
             place.box((0, -0.2, 0.72), (0.2, 0.02, 0.22), OBJECT, material)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(place.box((sx * 0.18, sy * 0.18, 0.22), (0.018, 0.018, 0.22), OBJECT,
                                   material))
    return Thing(parts, parts[:2])


def floor_lamp(kit: Kit, place: Placement) -> Thing:
    """Standard lamp with a glowing shade (object)."""
    shade = Material(kit.palette.pick([[0.9, 0.85, 0.7], [0.95, 0.95, 0.93]], 0.03), 0.0,
                     np.array([1.6, 1.4, 1.0], np.float32))
    parts = [place.cylinder((0, 0, 0), (0, 0, 1.45), 0.015, OBJECT, plain((0.2, 0.2, 0.2))),
             place.cylinder((0, 0, 1.35), (0, 0, 1.65), 0.2, OBJECT, shade),
             place.cylinder((0, 0, 0), (0, 0, 0.03), 0.15, OBJECT, plain((0.2, 0.2, 0.2)))]
    return Thing(parts, parts[:2])


def television(kit: Kit, place: Placement) -> Thing:
    """Low sideboard with a flat screen on top, screen facing local +y (object)."""
    rng = kit.rng
    width = uniform(rng, 1.2, 2.0)
    board = kit.palette.pick([[0.25, 0.2, 0.16], [0.9, 0.9, 0.88], [0.45, 0.35, 0.25]], 0.04)
    screen_w = min(width - 0.1, uniform(rng, 0.8, 1.4))
    lit = np.array(rng.uniform(0.1, 0.6, 3), np.float32) if rng.random() < 0.4 else None
    parts = [place.box((0, 0, 0.25), (width / 2, 0.22, 0.25), OBJECT, plain(board)),
             place.box((0, 0, 0.52 + screen_w * 0.29), (screen_w / 2, 0.03, screen_w * 0.29),
                       OBJECT, Material(np.array([0.02, 0.02, 0.025], np.float32), 0.5, lit))]
    return Thing(parts, parts)
