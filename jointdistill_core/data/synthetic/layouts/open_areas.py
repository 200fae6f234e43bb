"""Open paved areas: a parking lot driven through by a car, and a city plaza crossed by a
delivery robot."""
from __future__ import annotations

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

BAY_W, BAY_D = 2.5, 5.0


def parking_scene(context: LayoutContext) -> Scene:
    """A car driving along an aisle of a parking lot: rows of marked bays, parked cars,
    lamp posts on planted islands, people walking to their cars, a store at the end."""
    rng, kit = context.rng, context.kit
    aisle = uniform(rng, 6.0, 7.5)
    pitch = 2 * BAY_D + aisle                   # aisle centre to aisle centre
    aisles = int(rng.integers(2, 6))
    first = -pitch * int(rng.integers(0, aisles))
    centers = first + pitch * np.arange(aisles)
    x_low, x_high = centers[0] - pitch / 2, centers[-1] + pitch / 2
    y_low, y_high = -12.0, uniform(rng, 45, 110)
    lot = Strip((x_low + x_high) / 2, 0.0, 0.0, (x_high - x_low) / 2, (y_low, y_high))
    kerb = uniform(rng, 0.1, 0.16)
    lines_color = kit.palette.color((0.85, 0.85, 0.8), 0.03)
    tarmac = kit.palette.color(np.full(3, uniform(rng, 0.2, 0.35)), 0.02)
    lawn, dirt = kit.palette.color((0.28, 0.38, 0.15)), kit.palette.color((0.4, 0.34, 0.25))
    rows_start = y_low + 8.0
    noise = kit.noise

    def texture(px, py, kind, footprint):
        albedo = np.empty((px.size, 3), np.float32)
        labels = np.full(px.size, FLAT, np.uint8)
        x, y = px.astype(np.float32), py.astype(np.float32)
        low = kind == LOW
        fp = footprint[low]
        color = asphalt(noise, tarmac, x[low], y[low], fp)
        offset = np.mod(x[low] - np.float32(centers[0]) + pitch / 2, pitch)  # 0 .. pitch
        in_bays = (offset < BAY_D) | (offset > pitch - BAY_D)
        along = y[low] - np.float32(rows_start)
        paint = dashes(along, BAY_W, 0.12, fp) * in_bays * (along > 0) * (y[low] < y_high - 8)
        paint = np.maximum(paint, band(offset, BAY_D, 0.12, fp) * (along > 0))
        paint = np.maximum(paint, band(offset, pitch - BAY_D, 0.12, fp) * (along > 0))
        albedo[low] = color * (1 - paint[:, None]) + lines_color * paint[:, None]
        high = ~low
        green = grass(noise, lawn, dirt, x[high], y[high], footprint[high])
        edge = (np.abs(x[high] - np.float32((x_low + x_high) / 2)) < (x_high - x_low) / 2 + 2.0) & (
            y[high] < y_high + 2.0)
        albedo[high] = np.where(edge[:, None], concrete(noise, lines_color * 0.75, x[high],
                                                        y[high], footprint[high]), green)
        labels[high] = np.where(edge, FLAT, NATURE)
        return albedo, labels, np.float32(0.02)

    ground = Ground(lot, kerb, texture)
    lane = int(rng.integers(aisles))
    camera_x = float(centers[lane]) + uniform(rng, -1.0, 1.0)
    camera = draw_pose(rng, CAR_RIG, camera_x, 0.0, 0.0, 0.0, context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    things: list[Thing] = []
    taken = Footprints()
    taken.claim(camera_x - 1.2, camera_x + 1.2, -6.0, 3.0)
    occupancy = uniform(rng, 0.35, 0.95)
    for center in centers:
        for side in (-1, 1):
            bay_x = center + side * (aisle / 2 + BAY_D / 2)
            y = rows_start
            while y + BAY_W < y_high - 8:
                if rng.random() < occupancy:
                    heading = (np.pi / 2 if rng.random() < 0.5 else -np.pi / 2)
                    place = Placement(bay_x + uniform(rng, -0.3, 0.3), y + BAY_W / 2,
                                      0.0, heading + uniform(rng, -0.06, 0.06))
                    context.put(things, car if rng.random() < 0.85 else road_vehicle, place)
                    taken.claim(bay_x - 2.4, bay_x + 2.4, y, y + BAY_W)
                y += BAY_W
    # Islands with lamps and trees at the row ends, a moving car, people, trolleys.
    for center in centers[:-1]:
        island_x = center + pitch / 2
        half = (1.0, 3.0, kerb)
        things.append(Thing([Part(Box((island_x, rows_start - 4.0, kerb / 2), half), FLAT,
                                  box_texture(half, lambda u, v, fp, hit: concrete(
                                      noise, lines_color * 0.8, u, v, fp)))]))
        context.put(things, street_light, Placement(island_x, rows_start - 4.5, kerb), 1.2)
        context.put(things, tree, Placement(island_x, rows_start - 3.0, kerb), 0.7)
    for _ in range(rng.integers(0, 3)):
        x = float(centers[rng.integers(aisles)]) + uniform(rng, -1.5, 1.5)
        y = uniform(rng, 10, y_high - 10)
        if taken.claim_around(x, y, 1.2, 3.0):
            context.put(things, road_vehicle, Placement(x, y, 0.0, rng.choice([0.0, np.pi])))
    for _ in range(rng.integers(1, 10)):
        x = float(centers[rng.integers(aisles)]) + uniform(rng, -aisle / 2, aisle / 2)
        y = uniform(rng, 4, 60)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
            if rng.random() < 0.3 and taken.claim_around(x, y + 0.9, 0.4, 0.6):
                context.put(things, trolley, Placement(x, y + 0.9, 0.0, uniform(rng, -0.3, 0.3)))
    things += _perimeter(context, x_low, x_high, y_high, kerb)
    return Scene('parking', ground, things, camera, environment)


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
    context.put(things, builder, place, width, depth, uniform(rng, 6, 11) if builder is shed
                else uniform(rng, 8, 20))
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


def plaza_scene(context: LayoutContext) -> Scene:
    """A delivery robot on a paved city square: buildings round it, planters with trees,
    benches, bollards, lamps, cafe tables, and many people, some close."""
    rng, kit = context.rng, context.kit
    noise = kit.noise
    base = kit.palette.color(np.full(3, uniform(rng, 0.45, 0.72)) * [1.0, 0.97, 0.93], 0.05)
    accent = kit.palette.color(base * uniform(rng, 0.6, 0.85), 0.05)
    size = uniform(rng, 0.3, 0.8)
    aspect = uniform(rng, 0.5, 1.0)
    band_pitch = uniform(rng, 6, 14)

    def texture(px, py, kind, footprint):
        x, y = px.astype(np.float32), py.astype(np.float32)
        color = pavers(noise, base, x, y, footprint, size, size * aspect, 0.01)
        stripe = band(np.mod(x, band_pitch), band_pitch / 2, 0.6, footprint)
        color = color * (1 - stripe[:, None]) + accent * stripe[:, None]
        return color, np.full(px.size, FLAT, np.uint8), np.float32(0.03)

    ground = Ground(None, 0.0, texture)
    heading = uniform(rng, -np.pi, np.pi)
    camera = draw_pose(rng, ROBOT_RIG, 0.0, 0.0, 0.0, heading, context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    things: list[Thing] = []
    taken = Footprints()
    taken.claim_around(0.0, 0.0, 1.0, 1.0)
    half_x, half_y = uniform(rng, 15, 45), uniform(rng, 15, 45)
    center = rng.uniform(-0.5, 0.5, 2) * [half_x, half_y]
    for side in range(4):
        along_x = side % 2 == 0
        extent = half_x if along_x else half_y
        position = -extent - 10
        while position < extent + 10:
            length, depth = uniform(rng, 10, 30), uniform(rng, 10, 20)
            if rng.random() < 0.12:
                position += uniform(rng, 6, 14)          # a street leaving the square
                continue
            offset = (half_y if along_x else half_x) + depth / 2
            sign = 1 if side < 2 else -1
            if along_x:
                place = Placement(center[0] + position + length / 2, center[1] + sign * offset,
                                  0.0, np.pi / 2)
            else:
                place = Placement(center[0] + sign * offset, center[1] + position + length / 2)
            context.put(things, urban_block, place, length, depth, uniform(rng, 8, 30))
            position += length
    builders = (bench, bollard, litter_bin, sign_post, street_light, _umbrella)
    weights = np.array([0.2, 0.25, 0.12, 0.08, 0.15, 0.2])
    for _ in range(rng.integers(6, 20)):
        x = center[0] + uniform(rng, -half_x + 1, half_x - 1)
        y = center[1] + uniform(rng, -half_y + 1, half_y - 1)
        if not taken.claim_around(x, y, 1.2, 1.2):
            continue
        kind = int(rng.choice(len(builders), p=weights))
        place = Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi))
        if builders[kind] is street_light:
            context.put(things, street_light, place, 0.6)
        else:
            context.put(things, builders[kind], place)
    for _ in range(rng.integers(1, 6)):
        x = center[0] + uniform(rng, -half_x + 3, half_x - 3)
        y = center[1] + uniform(rng, -half_y + 3, half_y - 3)
        if taken.claim_around(x, y, 1.8, 1.8):
            place = Placement(x, y, 0.0, uniform(rng, 0, np.pi))
            box_parts = planter(kit, place)
            plant = tree(kit, Placement(x, y, 0.5), 0.6) if rng.random() < 0.6 else bush(
                kit, Placement(x, y, 0.5))
            things.append(Thing(box_parts + plant.parts, box_parts + plant.proxy))
    for index in range(rng.integers(3, 25)):
        reach = 12.0 if index < 3 else max(half_x, half_y)
        angle = heading + uniform(rng, -0.7, 0.7)      # mostly in front of the robot
        distance = uniform(rng, 2.0, reach)
        x, y = -distance * np.sin(angle), distance * np.cos(angle)
        if taken.claim_around(x, y, 0.4, 0.4):
            context.put(things, person, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
    for _ in range(rng.integers(0, 3) if rng.random() < 0.3 else 0):
        x = center[0] + uniform(rng, -half_x + 2, half_x - 2)
        y = center[1] + uniform(rng, -half_y + 2, half_y - 2)
        if taken.claim_around(x, y, 1.0, 1.0):
            context.put(things, cyclist, Placement(x, y, 0.0, uniform(rng, -np.pi, np.pi)))
    return Scene('plaza', ground, things, camera, environment)
