"""Open paved areas: a parking lot driven through by a car, and a city plaza crossed by a
delivery robot."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.classes import FLAT, NATURE, OBJECT
from jointdistill_core.data.synthetic.camera import CAR_RIG, ROBOT_RIG, draw_pose
from jointdistill_core.data.synthetic.ground import LOW, Ground, Strip
from jointdistill_core.data.synthetic.layouts.base import (
    Footprints,
    LayoutContext,
    Scene,
    outdoor_environment,
)
from jointdistill_core.data.synthetic.materials import (
    asphalt,
    band,
    box_texture,
    concrete,
    dashes,
    grass,
    pavers,
    plain,
)
from jointdistill_core.data.synthetic.objects import Kit, Placement, uniform
from jointdistill_core.data.synthetic.objects.buildings import shed, urban_block
from jointdistill_core.data.synthetic.objects.people import cyclist, person
from jointdistill_core.data.synthetic.objects.plants import bush, tree
from jointdistill_core.data.synthetic.objects.street import (
    bench,
    bollard,
    litter_bin,
    planter,
    sign_post,
    street_light,
)
from jointdistill_core.data.synthetic.objects.vehicles import car, road_vehicle, trolley
from jointdistill_core.data.synthetic.primitives import Box, Convex, Part, Thing

BAY_W, BAY_D = 2.5, 5.0        # a parking bay across and along, metres


@dataclass
class ParkingLot:
    """A lot of `aisles` parallel aisles along +Y (centres `centers`, metres), each with a
    row of bays on both sides, marked from rows_start to y_high - 8; kerb around it."""
    aisle: float
    centers: np.ndarray
    y_low: float
    y_high: float
    kerb: float

    @property
    def pitch(self) -> float:
        return 2 * BAY_D + self.aisle

    @property
    def x_range(self) -> tuple[float, float]:
        return self.centers[0] - self.pitch / 2, self.centers[-1] + self.pitch / 2

    @property
    def rows_start(self) -> float:
        return self.y_low + 8.0

    def region(self) -> Strip:
        x_low, x_high = self.x_range
        return Strip((x_low + x_high) / 2, 0.0, 0.0, (x_high - x_low) / 2,
                     (self.y_low, self.y_high))


class ParkingSurface:
    """Ground colours of a lot: asphalt with bay lines; a concrete apron, then grass."""

    def __init__(self, kit: Kit, lot: ParkingLot):
        rng = kit.rng
        self.lot, self.noise = lot, kit.noise
        self.paint = kit.palette.color((0.85, 0.85, 0.8), 0.03)
        self.tarmac = kit.palette.color(np.full(3, uniform(rng, 0.2, 0.35)), 0.02)
        self.lawn = kit.palette.color((0.28, 0.38, 0.15))
        self.dirt = kit.palette.color((0.4, 0.34, 0.25))

    def __call__(self, px, py, kind, footprint):
        albedo = np.empty((px.size, 3), np.float32)
        labels = np.full(px.size, FLAT, np.uint8)
        x, y = px.astype(np.float32), py.astype(np.float32)
        low = kind == LOW
        albedo[low] = self._lot(x[low], y[low], footprint[low])
        albedo[~low], labels[~low] = self._around(x[~low], y[~low], footprint[~low])
        return albedo, labels, np.float32(0.02)

    def _lot(self, x, y, footprint) -> np.ndarray:
        lot, pitch = self.lot, self.lot.pitch
        color = asphalt(self.noise, self.tarmac, x, y, footprint)
        offset = np.mod(x - np.float32(lot.centers[0]) + pitch / 2, pitch)   # 0 .. pitch
        in_bays = (offset < BAY_D) | (offset > pitch - BAY_D)
        along = y - np.float32(lot.rows_start)
        marked = along > 0
        paint = dashes(along, BAY_W, 0.12, footprint) * in_bays * marked * (y < lot.y_high - 8)
        paint = np.maximum(paint, band(offset, BAY_D, 0.12, footprint) * marked)
        paint = np.maximum(paint, band(offset, pitch - BAY_D, 0.12, footprint) * marked)
        return color * (1 - paint[:, None]) + self.paint * paint[:, None]

    def _around(self, x, y, footprint) -> tuple[np.ndarray, np.ndarray]:
        x_low, x_high = self.lot.x_range
        apron = (np.abs(x - np.float32((x_low + x_high) / 2)) < (x_high - x_low) / 2 + 2.0) & (
            y < self.lot.y_high + 2.0)
        green = grass(self.noise, self.lawn, self.dirt, x, y, footprint)
        paved = concrete(self.noise, self.paint * 0.75, x, y, footprint)
        return (np.where(apron[:, None], paved, green),
                np.where(apron, FLAT, NATURE).astype(np.uint8))


def parking_scene(context: LayoutContext) -> Scene:
    """A car driving along an aisle of a parking lot: rows of marked bays, parked cars,
    lamp posts on planted islands, people walking to their cars, a store at the end."""
    rng, kit = context.rng, context.kit
    aisle = uniform(rng, 6.0, 7.5)
    aisles = int(rng.integers(2, 6))
    pitch = 2 * BAY_D + aisle
    centers = -pitch * int(rng.integers(0, aisles)) + pitch * np.arange(aisles)
    lot = ParkingLot(aisle, centers, -12.0, uniform(rng, 45, 110), uniform(rng, 0.1, 0.16))
    ground = Ground(lot.region(), lot.kerb, ParkingSurface(kit, lot))
    camera_x = float(centers[rng.integers(aisles)]) + uniform(rng, -1.0, 1.0)
    camera = draw_pose(rng, CAR_RIG, camera_x, 0.0, 0.0, 0.0, context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    things: list[Thing] = []
    taken = Footprints()
    taken.claim(camera_x - 1.2, camera_x + 1.2, -6.0, 3.0)
    _parked_rows(context, lot, things, taken)
    _islands(context, lot, things)
    _lot_traffic(context, lot, things, taken)
    things += _perimeter(context, *lot.x_range, lot.y_high, lot.kerb)
    return Scene('parking', ground, things, camera, environment)


def _parked_rows(context: LayoutContext, lot: ParkingLot, things: list[Thing],
                 taken: Footprints) -> None:
    """Cars (some vans, trucks) nose-in or nose-out in a random share of the bays."""
    rng = context.rng
    occupancy = uniform(rng, 0.35, 0.95)
    for center in lot.centers:
        for side in (-1, 1):
            bay_x = center + side * (lot.aisle / 2 + BAY_D / 2)
            y = lot.rows_start
            while y + BAY_W < lot.y_high - 8:
                if rng.random() < occupancy:
                    heading = (np.pi / 2 if rng.random() < 0.5 else -np.pi / 2)
                    place = Placement(bay_x + uniform(rng, -0.3, 0.3), y + BAY_W / 2,
                                      0.0, heading + uniform(rng, -0.06, 0.06))
                    context.put(things, car if rng.random() < 0.85 else road_vehicle, place)
                    taken.claim(bay_x - 2.4, bay_x + 2.4, y, y + BAY_W)
                y += BAY_W


def _islands(context: LayoutContext, lot: ParkingLot, things: list[Thing]) -> None:
    """Kerbed islands between the row ends with a lamp post and a tree."""
    kit = context.kit
    color = kit.palette.color((0.68, 0.68, 0.64), 0.03)
    for center in lot.centers[:-1]:
        island_x = center + lot.pitch / 2
        half = (1.0, 3.0, lot.kerb)
        material = box_texture(half, lambda u, v, fp, hit: concrete(kit.noise, color, u, v, fp))
        things.append(Thing([Part(Box((island_x, lot.rows_start - 4.0, lot.kerb / 2), half),
                                  FLAT, material)]))
        context.put(things, street_light, Placement(island_x, lot.rows_start - 4.5, lot.kerb), 1.2)
        context.put(things, tree, Placement(island_x, lot.rows_start - 3.0, lot.kerb), 0.7)


def _lot_traffic(context: LayoutContext, lot: ParkingLot, things: list[Thing],
                 taken: Footprints) -> None:
    """A few cars moving along the aisles, people walking to their cars, trolleys."""
    rng = context.rng
    for _ in range(rng.integers(0, 3)):
        x = float(lot.centers[rng.integers(len(lot.centers))]) + uniform(rng, -1.5, 1.5)
        y = uniform(rng, 10, lot.y_high - 10)
        if taken.claim_around(x, y, 1.2, 3.0):
            context.put(things, road_vehicle, Placement(x, y, 0.0, rng.choice([0.0, np.pi])))
    for _ in range(rng.integers(1, 10)):
        x = float(lot.centers[rng.integers(len(lot.centers))]) + uniform(rng, -lot.aisle / 2,
                                                                          lot.aisle / 2)
        y = uniform(rng, 4, 60)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
            if rng.random() < 0.3 and taken.claim_around(x, y + 0.9, 0.4, 0.6):
                context.put(things, trolley, Placement(x, y + 0.9, 0.0, uniform(rng, -0.3, 0.3)))


def _perimeter(context: LayoutContext, x_low: float, x_high: float, y_high: float, kerb: float
               ) -> list[Thing]:
    """A store across the end of the lot, trees along the sides."""
    rng = context.rng
    things: list[Thing] = []
    width = x_high - x_low + uniform(rng, 0, 40)
    depth = uniform(rng, 20, 40)
    center_x = (x_low + x_high) / 2 + uniform(rng, -10, 10)
    builder = shed if rng.random() < 0.6 else urban_block
    place = Placement(center_x, y_high + 6 + depth / 2, kerb, np.pi / 2)
    context.put(things, builder, place, width, depth,
                uniform(rng, 6, 11) if builder is shed else uniform(rng, 8, 20))
    for x in (x_low - 4, x_high + 4):
        y = uniform(rng, -10, 5)
        while y < y_high:
            context.put(things, tree, Placement(x + uniform(rng, -1, 1), y, kerb))
            y += uniform(rng, 8, 20)
    return things


def _umbrella(kit: Kit, place: Placement) -> Thing:
    """Cafe table with a square parasol (object)."""
    rng = kit.rng
    cloth = plain(kit.palette.pick([[0.9, 0.9, 0.88], [0.7, 0.1, 0.1], [0.1, 0.3, 0.6],
                                    [0.85, 0.7, 0.2], [0.2, 0.45, 0.25]], 0.05))
    half = uniform(rng, 1.0, 1.5)
    z0, z1 = 2.1, 2.1 + half * 0.45
    apex = place.point((0, 0, z1))
    corners = [place.point((sx * half, sy * half, z0)) for sx in (-1, 1) for sy in (-1, 1)]
    canopy = Convex.pyramid(apex, corners)
    metal = plain((0.3, 0.3, 0.3))
    parts = [Part(canopy, OBJECT, cloth),
             place.cylinder((0, 0, 0), (0, 0, z1), 0.03, OBJECT, metal),
             place.disc((0, 0, 0.74), (0, 0, 1), 0.4, 0.04, OBJECT,
                        plain(kit.palette.color((0.85, 0.85, 0.83))))]
    for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(1, 4))):
        chair = Placement(*place.point((0.75 * np.cos(angle), 0.75 * np.sin(angle), 0)),
                          yaw=float(angle) + np.pi / 2)
        parts.append(chair.box((0, 0, 0.45), (0.21, 0.21, 0.02), OBJECT, metal))
        parts.append(chair.box((0, 0.2, 0.68), (0.21, 0.02, 0.22), OBJECT, metal))
    return Thing(parts, parts[:2])


class PlazaSurface:
    """Paving of a square: stones of one size in running bond, with darker bands."""

    def __init__(self, kit: Kit):
        rng = kit.rng
        self.noise = kit.noise
        self.base = kit.palette.color(np.full(3, uniform(rng, 0.45, 0.72)) * [1.0, 0.97, 0.93],
                                      0.05)
        self.accent = kit.palette.color(self.base * uniform(rng, 0.6, 0.85), 0.05)
        self.size = uniform(rng, 0.3, 0.8)
        self.aspect = uniform(rng, 0.5, 1.0)
        self.band_pitch = uniform(rng, 6, 14)

    def __call__(self, px, py, kind, footprint):
        x, y = px.astype(np.float32), py.astype(np.float32)
        color = pavers(self.noise, self.base, x, y, footprint, self.size,
                       self.size * self.aspect, 0.01)
        stripe = band(np.mod(x, self.band_pitch), self.band_pitch / 2, 0.6, footprint)
        color = color * (1 - stripe[:, None]) + self.accent * stripe[:, None]
        return color, np.full(px.size, FLAT, np.uint8), np.float32(0.03)


@dataclass
class Square:
    """The open area of a plaza: centre (2,) and half sizes (metres)."""
    center: np.ndarray
    half_x: float
    half_y: float

    def spot(self, rng: np.random.Generator, margin: float) -> tuple[float, float]:
        """A random point at least `margin` metres inside the square."""
        return (float(self.center[0]) + uniform(rng, -self.half_x + margin, self.half_x - margin),
                float(self.center[1]) + uniform(rng, -self.half_y + margin, self.half_y - margin))


def plaza_scene(context: LayoutContext) -> Scene:
    """A delivery robot on a paved city square: buildings round it, planters with trees,
    benches, bollards, lamps, cafe tables, and many people, some close."""
    rng = context.rng
    ground = Ground(None, 0.0, PlazaSurface(context.kit))
    heading = uniform(rng, -np.pi, np.pi)
    camera = draw_pose(rng, ROBOT_RIG, 0.0, 0.0, 0.0, heading, context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    things: list[Thing] = []
    taken = Footprints()
    taken.claim_around(0.0, 0.0, 1.0, 1.0)
    half_x, half_y = uniform(rng, 15, 45), uniform(rng, 15, 45)
    square = Square(rng.uniform(-0.5, 0.5, 2) * [half_x, half_y], half_x, half_y)
    _surrounding_buildings(context, square, things)
    _plaza_furniture(context, square, things, taken)
    _plaza_people(context, square, heading, things, taken)
    return Scene('plaza', ground, things, camera, environment)


def _surrounding_buildings(context: LayoutContext, square: Square, things: list[Thing]) -> None:
    """Rows of buildings along the four sides, with gaps where streets leave the square."""
    rng = context.rng
    for side in range(4):
        along_x = side % 2 == 0
        extent = square.half_x if along_x else square.half_y
        position = -extent - 10
        while position < extent + 10:
            length, depth = uniform(rng, 10, 30), uniform(rng, 10, 20)
            if rng.random() < 0.12:
                position += uniform(rng, 6, 14)          # a street leaving the square
                continue
            offset = (square.half_y if along_x else square.half_x) + depth / 2
            sign = 1 if side < 2 else -1
            x, y = square.center
            if along_x:
                place = Placement(x + position + length / 2, y + sign * offset, 0.0, np.pi / 2)
            else:
                place = Placement(x + sign * offset, y + position + length / 2)
            context.put(things, urban_block, place, length, depth, uniform(rng, 8, 30))
            position += length


def _plaza_furniture(context: LayoutContext, square: Square, things: list[Thing],
                     taken: Footprints) -> None:
    """Benches, bollards, bins, signs, lamps, cafe tables, and planters with a tree or bush."""
    rng, kit = context.rng, context.kit
    builders = (bench, bollard, litter_bin, sign_post, street_light, _umbrella)
    weights = np.array([0.2, 0.25, 0.12, 0.08, 0.15, 0.2])
    for _ in range(rng.integers(6, 20)):
        x, y = square.spot(rng, 1.0)
        if not taken.claim_around(x, y, 1.2, 1.2):
            continue
        builder = builders[int(rng.choice(len(builders), p=weights))]
        place = Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi))
        if builder is street_light:
            context.put(things, street_light, place, 0.6)
        else:
            context.put(things, builder, place)
    for _ in range(rng.integers(1, 6)):
        x, y = square.spot(rng, 3.0)
        if taken.claim_around(x, y, 1.8, 1.8):
            box_parts = planter(kit, Placement(x, y, 0.0, uniform(rng, 0, np.pi)))
            plant = tree(kit, Placement(x, y, 0.5), 0.6) if rng.random() < 0.6 else bush(
                kit, Placement(x, y, 0.5))
            things.append(Thing(box_parts + plant.parts, box_parts + plant.proxy))


def _plaza_people(context: LayoutContext, square: Square, heading: float,
                  things: list[Thing], taken: Footprints) -> None:
    """People, mostly in front of the robot (the first three within 12 m), and cyclists."""
    rng = context.rng
    for index in range(rng.integers(3, 25)):
        reach = 12.0 if index < 3 else max(square.half_x, square.half_y)
        angle = heading + uniform(rng, -0.7, 0.7)
        distance = uniform(rng, 2.0, reach)
        x, y = -distance * np.sin(angle), distance * np.cos(angle)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
    for _ in range(rng.integers(0, 3) if rng.random() < 0.3 else 0):
        x, y = square.spot(rng, 2.0)
        if taken.claim_around(x, y, 1.0, 1.0):
            context.put(things, cyclist, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
