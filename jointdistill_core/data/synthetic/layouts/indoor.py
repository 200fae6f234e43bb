"""Indoor scenes, closed rooms with no sky: warehouse aisles between pallet racks, corridors,
loading bays with dock doors, and offices. Floor = flat, walls, ceilings, racks, columns
and doors = construction, pallets, boxes and furniture = object, plants = nature,
forklifts, pallet jacks and trolleys = vehicle, people = human.

The camera is a robot's (0.3-0.8 m) or a hand-held / cart-mounted one (1.0-1.7 m, often
tilted down, as indoor RGB-D data sets are recorded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.classes import FLAT
from jointdistill_core.data.synthetic.camera import HANDHELD_RIG, ROBOT_RIG, draw_pose
from jointdistill_core.data.synthetic.ground import Ground
from jointdistill_core.data.synthetic.layouts.base import (
    Footprints,
    LayoutContext,
    Scene,
    indoor_environment,
)
from jointdistill_core.data.synthetic.materials import (
    band,
    concrete,
    fade,
    lines,
    pavers,
    stripes,
    wood,
)
from jointdistill_core.data.synthetic.objects import Kit, Placement, uniform
from jointdistill_core.data.synthetic.objects.indoor import (
    RoomPlan,
    bookcase,
    box_stack,
    cabinet,
    column,
    desk,
    dining_chair,
    floor_lamp,
    office_chair,
    pallet_load,
    rack_block,
    rack_row,
    room,
    sofa,
    table,
    television,
    wall_item,
)
from jointdistill_core.data.synthetic.objects.people import person
from jointdistill_core.data.synthetic.objects.plants import potted_plant
from jointdistill_core.data.synthetic.objects.street import bollard, litter_bin
from jointdistill_core.data.synthetic.objects.vehicles import forklift, pallet_jack, trolley
from jointdistill_core.data.synthetic.primitives import Thing

SAFETY_YELLOW = (0.9, 0.75, 0.1)


def _rig(rng: np.random.Generator):
    return ROBOT_RIG if rng.random() < 0.5 else HANDHELD_RIG


def floor_texture(kit: Kit, style: str, lines_fn=None):
    """Ground texture of a floor: 'concrete' (polished, glossy), 'tiles', 'linoleum',
    'wood' (planks) or 'carpet'; lines_fn(x, y, footprint) -> (M,) coverage of painted
    safety lines on top."""
    rng, noise = kit.rng, kit.noise
    gloss = {'concrete': uniform(rng, 0.1, 0.3), 'tiles': uniform(rng, 0.1, 0.3),
             'linoleum': uniform(rng, 0.15, 0.35), 'wood': uniform(rng, 0.05, 0.2),
             'carpet': 0.0}[style]
    if style == 'concrete':
        color = kit.palette.color(np.full(3, uniform(rng, 0.45, 0.7)), 0.04)
        slab = uniform(rng, 4, 8)
        surface = lambda x, y, fp: concrete(noise, color, x, y, fp, slab)   # noqa: E731
    elif style == 'tiles':
        color = kit.palette.pick([[0.8, 0.78, 0.74], [0.6, 0.6, 0.6], [0.7, 0.62, 0.5]], 0.05)
        size = uniform(rng, 0.3, 0.6)
        surface = lambda x, y, fp: pavers(noise, color, x, y, fp, size, size, 0.006, 0.08)  # noqa: E731
    elif style == 'wood':
        color = kit.palette.pick([[0.62, 0.45, 0.28], [0.75, 0.6, 0.42], [0.4, 0.28, 0.18]], 0.04)
        surface = lambda x, y, fp: wood(noise, color, y, x, fp) * (  # noqa: E731
            1 - 0.3 * lines(x, 0.15, 0.004, fp))[:, None]
    elif style == 'carpet':
        color = kit.palette.pick([[0.35, 0.35, 0.38], [0.3, 0.25, 0.22], [0.25, 0.3, 0.4],
                                  [0.45, 0.4, 0.35]], 0.05)
        surface = lambda x, y, fp: color[None, :] * (  # noqa: E731
            0.85 + 0.2 * noise.fractal(x * 2, y * 2)[:, None]
            + 0.1 * ((noise.cell(x * 30, y * 30) - 0.5) * fade(fp, 0.03))[:, None])
    else:
        color = kit.palette.pick([[0.7, 0.72, 0.68], [0.55, 0.6, 0.65], [0.75, 0.7, 0.6]], 0.05)
        surface = lambda x, y, fp: color[None, :] * (  # noqa: E731
            0.9 + 0.15 * noise.fractal(x * 0.7, y * 0.7)[:, None])
    paint = kit.palette.color(SAFETY_YELLOW, 0.04)

    def texture(px, py, kind, footprint):
        x, y = px.astype(np.float32), py.astype(np.float32)
        out = surface(x, y, footprint)
        if lines_fn is not None:
            cover = lines_fn(x, y, footprint)
            out = out * (1 - cover[:, None]) + paint * cover[:, None]
        return out, np.full(px.size, FLAT, np.uint8), np.float32(gloss)
    return texture


def _finish(name: str, environment, things, camera, texture, height: float) -> Scene:
    return Scene(name, Ground(None, 0.0, texture, 1000.0), things, camera, environment,
                 indoor=True, ceiling_m=height)


@dataclass
class RackHall:
    """A warehouse: double rack rows along +Y either side of the camera's aisle (centred on
    X = 0), `depth` deep with `aisle` between rows, racks from rows_begin to rows_end with a
    cross aisle at `gap` (or none); metres."""
    height: float
    level_h: float
    depth: float
    aisle: float
    rows: tuple[int, int]
    rows_begin: float
    rows_end: float
    gap: float | None
    bay: float

    @property
    def pitch(self) -> float:
        return self.depth + self.aisle

    @property
    def levels(self) -> int:
        return int(min(6, (self.height - 1.5) // self.level_h))

    def row_x(self, index: int) -> float:
        """X of rack row `index` (..., -1 left of the camera's aisle, 0 right of it, ...)."""
        if index >= 0:
            return self.aisle / 2 + self.depth / 2 + index * self.pitch
        return -self.aisle / 2 - self.depth / 2 + (index + 1) * self.pitch

    def spans(self) -> list[tuple[float, float]]:
        if self.gap is None:
            return [(self.rows_begin, self.rows_end)]
        return [(self.rows_begin, self.gap - 2.0), (self.gap + 2.0, self.rows_end)]

    def floor_lines(self, x, y, footprint) -> np.ndarray:
        """Coverage of the yellow lines along the aisle edges."""
        across = np.mod(x + self.aisle / 2, self.pitch)
        lines = np.maximum(band(across, 0.12, 0.1, footprint),
                           band(across, self.aisle - 0.12, 0.1, footprint))
        return lines * (y > self.rows_begin) * (y < self.rows_end)


def warehouse_scene(context: LayoutContext) -> Scene:
    """An aisle between high pallet racks, forklifts and workers, safety lines on the floor."""
    rng, kit = context.rng, context.kit
    environment = indoor_environment(context)
    height, level_h = uniform(rng, 7, 12), uniform(rng, 1.5, 2.2)
    depth, aisle = uniform(rng, 2.2, 2.6), uniform(rng, 2.8, 4.0)
    rows = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    width = sum(rows) * (depth + aisle) + aisle + uniform(rng, 2, 8)
    length = uniform(rng, 40, 90)
    wall_left = -(rows[0] * (depth + aisle) + aisle / 2) - uniform(rng, 1, 3)
    y_start = -uniform(rng, 3, 10)
    rows_begin, rows_end = uniform(rng, 1, 6), length + y_start - uniform(rng, 4, 10)
    gap = (rows_begin + rows_end) / 2 if rng.random() < 0.6 else None
    hall = RackHall(height, level_h, depth, aisle, rows, rows_begin, rows_end, gap,
                    uniform(rng, 2.4, 3.0))
    texture = floor_texture(kit, 'concrete', hall.floor_lines)
    taken = Footprints()
    camera_x = uniform(rng, -aisle / 2 + 0.5, aisle / 2 - 0.5)
    taken.claim_around(camera_x, 0.0, 0.6, 1.5)
    camera = draw_pose(rng, _rig(rng), camera_x, 0.0, 0.0, 0.0, context.fov)
    context.camera = camera
    things: list[Thing] = []
    _racks(context, hall, things)
    plan = RoomPlan(str(rng.choice(['block', 'cladding', 'concrete'])), 'trusses',
                    environment.lamp_grid, [(3, uniform(rng, 2, width - 2), 3.5)])
    things.append(Thing([room(kit, Placement(wall_left + width / 2, y_start + length / 2),
                              length, width, height, plan)]))
    _aisle_life(context, aisle, things, taken)
    return _finish('warehouse', environment, things, camera, texture, height)


def _racks(context: LayoutContext, hall: RackHall, things: list[Thing]) -> None:
    """Rack rows with their end columns: the two along the camera's aisle in full, the
    others (seen only across the cross aisle or far away) as textured blocks."""
    rng = context.rng
    for index in range(-hall.rows[0], hall.rows[1]):
        x = hall.row_x(index)
        for y0, y1 in hall.spans():
            place = Placement(x, (y0 + y1) / 2)
            if index in (-1, 0):
                context.put(things, rack_row, place, y1 - y0, hall.depth, hall.levels, hall.level_h,
                            hall.bay, uniform(rng, 0.5, 0.95))
            else:
                context.put(things, rack_block, place, y1 - y0, hall.depth, hall.levels,
                            hall.level_h, hall.bay)
            context.put(things, column, Placement(x, y0 - 0.5), 0.4, hall.height)


def _aisle_life(context: LayoutContext, aisle: float, things: list[Thing],
                taken: Footprints) -> None:
    """A forklift, a pallet jack, a trolley, workers and pallets in the camera's aisle."""
    rng, kit = context.rng, context.kit
    for builder, chance in ((forklift, 0.45), (pallet_jack, 0.3), (trolley, 0.35)):
        if rng.random() < chance:
            x, y = uniform(rng, -aisle / 2 + 0.8, aisle / 2 - 0.8), uniform(rng, 5, 30)
            if taken.claim_around(x, y, 1.0, 2.0):
                heading = rng.choice([0.0, np.pi]) + uniform(rng, -0.2, 0.2)
                context.put(things, builder, Placement(x, y, 0.0, heading))
    for _ in range(rng.integers(0, 5)):
        x, y = uniform(rng, -aisle / 2 + 0.4, aisle / 2 - 0.4), uniform(rng, 2, 40)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)),
                        worker=rng.random() < 0.7)
    for _ in range(rng.integers(0, 4)):
        x, y = uniform(rng, -aisle / 2 + 0.7, aisle / 2 - 0.7), uniform(rng, 3, 40)
        if taken.claim_around(x, y, 0.7, 0.7):
            things.append(Thing(pallet_load(kit, Placement(x, y, 0.0, uniform(rng, -0.2, 0.2)))))


def corridor_scene(context: LayoutContext) -> Scene:
    """A long corridor: doors, notice boards, extinguishers, plants, trolleys, people."""
    rng, kit = context.rng, context.kit
    environment = indoor_environment(context)
    width, length, height = uniform(rng, 1.8, 3.2), uniform(rng, 20, 60), uniform(rng, 2.4, 3.2)
    environment.lamp_grid = (2 * width, uniform(rng, 2.5, 5.0), -width, uniform(rng, 0, 3))
    y_start = -uniform(rng, 1, 4)
    doors = []
    for face in (0, 1):
        u = uniform(rng, 1, 6)
        while u < length - 1:
            doors.append((face, u, uniform(rng, 0.85, 1.2)))
            u += uniform(rng, 3, 10)
    windows = [(3, width / 2, width * 0.6, 0.9)] if rng.random() < 0.4 else []
    if not windows:
        doors.append((3, width / 2, min(width - 0.4, uniform(rng, 0.9, 1.6))))
    plan = RoomPlan(str(rng.choice(['paint', 'paint', 'block'])), 'panels',
                    environment.lamp_grid, doors, windows)
    things: list[Thing] = [Thing([room(kit, Placement(0.0, y_start + length / 2), length, width,
                                       height, plan)])]
    texture = floor_texture(kit, str(rng.choice(['tiles', 'linoleum', 'concrete'])))
    taken = Footprints()
    camera_x = uniform(rng, -width / 2 + 0.5, width / 2 - 0.5)
    taken.claim_around(camera_x, 0.0, 0.5, 1.0)
    camera = draw_pose(rng, _rig(rng), camera_x, 0.0, 0.0, 0.0, context.fov)
    context.camera = camera
    for _ in range(rng.integers(2, 9)):
        side = 1 if rng.random() < 0.5 else -1
        y = uniform(rng, 1, length + y_start - 1)
        door_here = any(face == (side > 0) and abs(y - y_start - u) < w / 2 + 0.4
                        for face, u, w in doors if face < 2)
        if door_here or not taken.claim_around(side * width / 2, y, 0.5, 0.6):
            continue
        kind = str(rng.choice(['board', 'picture', 'extinguisher', 'sign', 'bin', 'plant',
                               'boxes']))
        wall = Placement(side * width / 2, y, 0.0, side * np.pi / 2)
        inset = Placement(side * (width / 2 - 0.35), y, 0.0, side * np.pi / 2)
        if kind in ('board', 'picture', 'extinguisher', 'sign'):
            context.put(things, wall_item, wall, kind)
        elif kind == 'bin':
            context.put(things, litter_bin, inset)
        elif kind == 'plant':
            context.put(things, potted_plant, inset)
        else:
            context.put(things, box_stack, inset)
    for _ in range(rng.integers(0, 4)):
        x, y = uniform(rng, -width / 2 + 0.4, width / 2 - 0.4), uniform(rng, 2, 25)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person,
                        Placement(x, y, 0.0, rng.choice([0.0, np.pi]) + uniform(rng, -0.4, 0.4)))
    if rng.random() < 0.3:
        x, y = uniform(rng, -width / 2 + 0.5, width / 2 - 0.5), uniform(rng, 3, 15)
        if taken.claim_around(x, y, 0.5, 0.8):
            context.put(things, trolley, Placement(x, y, 0.0, uniform(rng, -0.3, 0.3)))
    return _finish('corridor', environment, things, camera, texture, height)


def loading_scene(context: LayoutContext) -> Scene:
    """A loading bay: dock doors (some open) in the far wall, hatched zones in front of them,
    pallets staged on the floor, forklifts, pallet jacks, trolleys, workers, columns."""
    rng, kit = context.rng, context.kit
    environment = indoor_environment(context)
    width, length, height = uniform(rng, 20, 40), uniform(rng, 25, 55), uniform(rng, 6, 10)
    y_start = -uniform(rng, 2, 8)
    far_wall = y_start + length
    spacing = uniform(rng, 4.0, 5.5)
    count = int(min(8, (width - 4) // spacing))
    first = (width - (count - 1) * spacing) / 2
    docks = [(first + index * spacing, bool(rng.random() < 0.3)) for index in range(count)]
    dock_x = [u - width / 2 for u, _ in docks]

    def safety(x, y, fp):
        near = (y > far_wall - 4.0)
        in_front = np.zeros(x.shape, bool)
        for center in dock_x:
            in_front |= np.abs(x - np.float32(center)) < 1.6
        hatch = stripes(x + y, 0.35, [[1, 1, 1], [0, 0, 0]], fp)[:, 0] * (near & in_front)
        walkway = np.maximum(band(x, -width / 2 + 2.0, 0.1, fp), band(x, width / 2 - 2.0, 0.1, fp))
        return np.maximum(hatch, walkway)
    texture = floor_texture(kit, 'concrete', safety)
    plan = RoomPlan(str(rng.choice(['block', 'cladding', 'concrete'])), 'trusses',
                    environment.lamp_grid, docks=docks)
    things: list[Thing] = [Thing([room(kit, Placement(0.0, y_start + length / 2), length, width,
                                       height, plan)])]
    taken = Footprints()
    camera_x = uniform(rng, -width / 4, width / 4)
    taken.claim_around(camera_x, 0.0, 0.8, 1.5)
    camera = draw_pose(rng, _rig(rng), camera_x, 0.0, 0.0, uniform(rng, -0.4, 0.4), context.fov)
    context.camera = camera
    column_pitch = uniform(rng, 8, 12)
    for x in np.arange(-width / 2 + column_pitch, width / 2 - 1, column_pitch):
        for y in np.arange(y_start + column_pitch, far_wall - 5, column_pitch):
            if taken.claim_around(x, y, 0.5, 0.5):
                context.put(things, column, Placement(x, y), 0.45, height)
    for center in dock_x:
        for side in (-1, 1):
            if rng.random() < 0.6:
                context.put(things, bollard, Placement(center + side * 1.7, far_wall - 0.4))
    staging_rows = int(rng.integers(1, 4))
    for row in range(staging_rows):
        y = far_wall - 6.0 - row * 2.0
        for x in np.arange(-width / 2 + 3, width / 2 - 3, 1.5):
            if rng.random() < 0.45 and taken.claim_around(x, y, 0.7, 0.5):
                things.append(Thing(pallet_load(kit, Placement(x, y))))
    if rng.random() < 0.6:
        context.put(things, rack_block, Placement(-width / 2 + 0.7, y_start + length / 2),
                    length - 10, 1.1, 4, 1.6, 2.7)
    for builder, count in ((forklift, rng.integers(0, 3)), (pallet_jack, rng.integers(0, 3)),
                           (trolley, rng.integers(0, 3))):
        for _ in range(count):
            x, y = uniform(rng, -width / 2 + 2, width / 2 - 2), uniform(rng, 4, far_wall - 5)
            if taken.claim_around(x, y, 1.0, 2.0):
                context.put(things, builder, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
    for _ in range(rng.integers(0, 6)):
        x, y = uniform(rng, -width / 2 + 1, width / 2 - 1), uniform(rng, 2, far_wall - 2)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)),
                        worker=rng.random() < 0.8)
    return _finish('loading', environment, things, camera, texture, height)


@dataclass
class Room:
    """An office's floor: x within +-width / 2, y from y_start to y_end (metres); the camera
    stands near y = 0. home: a living room rather than an office."""
    width: float
    y_start: float
    y_end: float
    home: bool

    def spot(self, rng: np.random.Generator, margin: float) -> tuple[float, float]:
        """A random floor point in front of the camera, `margin` metres from the walls."""
        return (uniform(rng, -self.width / 2 + margin, self.width / 2 - margin),
                uniform(rng, 1.0, self.y_end - margin))

    def by_a_wall(self, rng: np.random.Generator) -> Placement:
        """A spot against the left, right or far wall, facing into the room."""
        side = int(rng.integers(3))
        if side == 2:
            return Placement(uniform(rng, -self.width / 2 + 0.8, self.width / 2 - 0.8),
                             self.y_end - 0.35, 0.0, np.pi)
        sign = -1 if side == 0 else 1
        return Placement(sign * (self.width / 2 - 0.3), uniform(rng, 0.8, self.y_end - 0.5), 0.0,
                         sign * np.pi / 2)


def office_scene(context: LayoutContext) -> Scene:
    """An office or a living room, as indoor RGB-D data sets show them: desks with monitors
    and chairs, or sofas, tables, a television and dining chairs; shelves, cabinets,
    plants, lamps, pictures and boards, windows and doors; sometimes people. The camera
    stands near the entrance and looks across the room."""
    rng, kit = context.rng, context.kit
    environment = indoor_environment(context)
    home = rng.random() < 0.45
    width, length, height = uniform(rng, 3.5, 8.0), uniform(rng, 4.0, 10.0), uniform(rng, 2.4, 3.0)
    environment.lamp_grid = (uniform(rng, 1.8, 3.0), uniform(rng, 1.8, 3.0),
                             *rng.uniform(0, 2, 2))
    y_start = -uniform(rng, 0.6, 1.5)
    area = Room(width, y_start, y_start + length, home)
    plan = RoomPlan('paint', 'panels', environment.lamp_grid, *_doors_and_windows(rng, width,
                                                                                  length))
    things: list[Thing] = [Thing([room(kit, Placement(0.0, y_start + length / 2), length, width,
                                       height, plan)])]
    styles = ['carpet', 'wood', 'tiles'] if home else ['carpet', 'wood', 'tiles', 'linoleum']
    texture = floor_texture(kit, str(rng.choice(styles)))
    taken = Footprints()
    camera_x = uniform(rng, -width / 2 + 0.6, width / 2 - 0.6)
    taken.claim_around(camera_x, 0.0, 0.5, 0.5)
    target = (uniform(rng, -width / 4, width / 4), y_start + length * uniform(rng, 0.5, 0.9))
    heading = float(np.arctan2(-(target[0] - camera_x), target[1]))
    camera = draw_pose(rng, _rig(rng), camera_x, 0.0, 0.0, heading, context.fov)
    context.camera = camera
    _centre_pieces(context, area, things, taken)
    _furniture_by_walls(context, area, things, taken)
    for _ in range(rng.integers(0, 3)):
        x, y = area.spot(rng, 0.5)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
    return _finish('office', environment, things, camera, texture, height)


def _doors_and_windows(rng: np.random.Generator, width: float, length: float):
    """Windows along the left, right or far wall; a door on another wall."""
    window_face = int(rng.choice([0, 1, 3]))
    wall_length = length if window_face < 2 else width
    windows = [(window_face, u, uniform(rng, 0.9, 2.0), uniform(rng, 0.5, 1.0))
               for u in np.arange(1.0, wall_length - 0.8, uniform(rng, 1.6, 2.8))]
    door_face = 1 - window_face if window_face < 2 else int(rng.integers(2))
    return [(door_face, uniform(rng, 0.8, length - 0.8), 0.95)], windows


def _centre_pieces(context: LayoutContext, area: Room, things: list[Thing],
                   taken: Footprints) -> None:
    """Desks with office chairs, or tables with dining chairs and sofas, in the room."""
    rng = context.rng
    pieces = (table, sofa) if area.home else (desk,)
    seat = dining_chair if area.home else office_chair
    for _ in range(rng.integers(2, 7)):
        x, y = area.spot(rng, 0.9)
        turn = float(rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2]))
        if not taken.claim_around(x, y, 1.0, 1.0):
            continue
        builder = pieces[int(rng.integers(len(pieces)))]
        context.put(things, builder, Placement(x, y, 0.0, turn))
        for side in range(int(rng.integers(0, 5 if builder is table else 2))):
            angle = turn + np.pi + side * np.pi / 2
            chair_at = Placement(x - 0.75 * np.sin(angle), y + 0.75 * np.cos(angle), 0.0,
                                 angle + uniform(rng, -0.4, 0.4))
            context.put(things, seat, chair_at)


def _furniture_by_walls(context: LayoutContext, area: Room, things: list[Thing],
                        taken: Footprints) -> None:
    """Bookcases, cabinets, plants, boxes, a television or lamps against the walls, and
    pictures or boards on them."""
    rng = context.rng
    along_walls = ((bookcase, 0.3), (cabinet, 0.2), (potted_plant, 0.15), (box_stack, 0.1),
                   (television if area.home else cabinet, 0.15), (floor_lamp, 0.1))
    builders, weights = zip(*along_walls)
    for _ in range(rng.integers(3, 9)):
        place = area.by_a_wall(rng)
        if not taken.claim_around(place.origin[0], place.origin[1], 0.8, 0.8):
            continue
        builder = builders[int(rng.choice(len(builders), p=weights))]
        if builder is bookcase:
            context.put(things, bookcase, place, uniform(rng, 0.8, 1.6), uniform(rng, 1.0, 2.2))
        else:
            context.put(things, builder, place)
    for _ in range(rng.integers(1, 5)):
        side = 1 if rng.random() < 0.5 else -1
        place = Placement(side * area.width / 2, uniform(rng, 1.0, area.y_end - 0.5), 0.0,
                          side * np.pi / 2)
        context.put(things, wall_item, place,
                    'board' if not area.home and rng.random() < 0.3 else 'picture')
