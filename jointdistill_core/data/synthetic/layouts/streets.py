"""Streets: straight or curved roads with kerbs, sidewalks and what lines them, seen from a
car in a lane or from a delivery robot on the sidewalk; and intersections.

Each side of a street has a frontage: a row of urban buildings, detached houses behind
front gardens, a park, a wall or an industrial fence. Along the kerbs stand street lights,
trees, signs, bollards, bins and benches; parking lanes hold parked cars; the driving lanes
carry traffic in both directions and cyclists; people walk on the sidewalks and cross at
zebras.
"""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import FLAT, NATURE
from jointdistill_core.data.synthetic.camera import CAR_RIG, ROBOT_RIG, draw_pose
from jointdistill_core.data.synthetic.ground import KERB, LOW, Ground, Strip, Union
from jointdistill_core.data.synthetic.layouts.base import (
    Footprints,
    LayoutContext,
    Scene,
    outdoor_environment,
)
from jointdistill_core.data.synthetic.layouts.roads import Centerline, CrossSection, Markings
from jointdistill_core.data.synthetic.materials import asphalt, grass
from jointdistill_core.data.synthetic.objects import Placement, uniform
from jointdistill_core.data.synthetic.objects.buildings import (
    house,
    paved_texture,
    shed,
    urban_block,
)
from jointdistill_core.data.synthetic.objects.people import bicycle, cyclist, person
from jointdistill_core.data.synthetic.objects.plants import bush, hedge, tree
from jointdistill_core.data.synthetic.objects.street import (
    bench,
    bollard,
    fence,
    guard_rail,
    hydrant,
    litter_bin,
    sign_post,
    street_light,
    traffic_light,
    wall,
)
from jointdistill_core.data.synthetic.objects.vehicles import road_vehicle
from jointdistill_core.data.synthetic.primitives import Thing

FRONTAGES = (('buildings', 0.45), ('houses', 0.2), ('park', 0.15), ('wall', 0.1),
             ('industrial', 0.1))
MARKING_COLORS = np.array([[0.88, 0.88, 0.85], [0.9, 0.75, 0.2]])
STREET_REACH_M = 160.0     # objects are placed up to this far along the street


class StreetBuilder:
    """Builds one street: its cross-section, ground texture and objects, in street
    coordinates (s along, lateral across) mapped to the world by the centre line."""

    def __init__(self, context: LayoutContext, line: Centerline, section: CrossSection,
                 frontage: tuple[str, str]):
        self.context, self.rng, self.kit = context, context.rng, context.kit
        self.line, self.section, self.frontage = line, section, frontage
        self.things: list[Thing] = []
        self.footprints = Footprints()
        self.far_end = uniform(self.rng, 60, 140) if self.rng.random() < 0.5 else STREET_REACH_M
        self.crossing_s = uniform(self.rng, 15, 45) if self.rng.random() < 0.35 else None

    # ------------------------------------------------------------------ placement

    def place(self, s: float, lateral: float, turn: float = 0.0, raised: bool | None = None
              ) -> Placement:
        """Placement at street point (s, lateral) heading along the street plus `turn`."""
        x, y, heading = self.line.to_world(s, lateral)
        if raised is None:
            raised = abs(lateral) >= self.section.half_width
        return Placement(float(x), float(y), self.section.kerb_m if raised else 0.0,
                         float(heading) + turn)

    def put(self, builder, place: Placement, *args) -> None:
        """Build builder(kit, place, *args) if it can be seen from the camera."""
        self.context.put(self.things, builder, place, *args)

    def kerb_lateral(self, side: int, inset: float) -> float:
        """Lateral of a point `inset` metres from the kerb onto the sidewalk of side (-1, 1)."""
        return side * (self.section.half_width + inset)

    def back_of_sidewalk(self, side: int) -> float:
        return self.section.half_width + self.section.sidewalk[side > 0]

    # ------------------------------------------------------------------ ground

    def ground(self, region) -> Ground:
        """The street's two-level ground over `region` (the carriageway)."""
        return Ground(region, self.section.kerb_m, StreetSurface(self))

    # ------------------------------------------------------------------ frontage

    def frontage_objects(self, side: int) -> None:
        kind = self.frontage[side > 0]
        getattr(self, f'_frontage_{kind}')(side)

    def _frontage_buildings(self, side: int) -> None:
        rng = self.rng
        s = uniform(rng, -20, -5)
        back = self.back_of_sidewalk(side)
        while s < self.far_end:
            length = uniform(rng, 8, 30)
            if rng.random() < 0.15:
                s += uniform(rng, 3, 10)          # an alley or a gap
                continue
            depth, height = uniform(rng, 10, 20), uniform(rng, 7, 34)
            setback = uniform(rng, 0, 1.5) if rng.random() < 0.3 else 0.0
            lateral = side * (back + setback + depth / 2)
            self.put(urban_block, self.place(s + length / 2, lateral), length, depth, height)
            s += length

    def _frontage_houses(self, side: int) -> None:
        rng = self.rng
        back = self.back_of_sidewalk(side)
        s = uniform(rng, -15, 0)
        boundary = rng.integers(3)
        while s < min(self.far_end, 120):
            lot = uniform(rng, 14, 24)
            garden = uniform(rng, 3, 9)
            depth, length = uniform(rng, 8, 12), min(lot - 4, uniform(rng, 8, 14))
            self.put(house, self.place(s + lot / 2, side * (back + garden + depth / 2)), length,
                     depth)
            edge = side * (back + 0.3)
            if boundary == 0:
                self.put(hedge, self.place(s + lot / 2, edge), lot - 1.5, uniform(rng, 0.8, 1.8),
                         0.6)
            elif boundary == 1:
                self.put(fence, self.place(s + lot / 2, edge), lot - 1.0, uniform(rng, 0.8, 1.5))
            if rng.random() < 0.6:
                self.put(tree,
                         self.place(s + uniform(rng, 2, lot - 2), side * (back + garden * 0.5)),
                         0.8)
            if rng.random() < 0.5:
                self.put(bush, self.place(s + uniform(rng, 1, lot - 1), side * (back + 1.2)))
            s += lot

    def _frontage_park(self, side: int) -> None:
        rng = self.rng
        back = self.back_of_sidewalk(side)
        for _ in range(rng.integers(6, 18)):
            s, depth = uniform(rng, -10, min(self.far_end, 120)), uniform(rng, 2, 45)
            if self.footprints.claim_around(s, side * (back + depth), 1.0, 1.0):
                self.put(tree, self.place(s, side * (back + depth)))
        for _ in range(rng.integers(2, 8)):
            self.put(bush, self.place(uniform(rng, -5, 80), side * (back + uniform(rng, 0.8, 10))))
        if rng.random() < 0.4:
            self.put(bench, self.place(uniform(rng, 5, 40), side * (back + 0.8), np.pi / 2 * side))

    def _frontage_wall(self, side: int) -> None:
        rng = self.rng
        back = self.back_of_sidewalk(side)
        length = min(self.far_end, 120) + 20
        self.put(wall, self.place(length / 2 - 20, side * (back + 0.2)), length,
                 uniform(rng, 1.2, 3.2))
        for _ in range(rng.integers(3, 10)):
            self.put(tree, self.place(uniform(rng, -5, 100), side * (back + uniform(rng, 3, 12))))

    def _frontage_industrial(self, side: int) -> None:
        rng = self.rng
        back = self.back_of_sidewalk(side)
        length = min(self.far_end, 120) + 20
        self.put(fence, self.place(length / 2 - 20, side * (back + 0.2)), length,
                 uniform(rng, 1.6, 2.6))
        s = uniform(rng, -10, 10)
        while s < min(self.far_end, 130):
            hall = uniform(rng, 20, 50)
            depth = uniform(rng, 15, 30)
            self.put(shed,
                     self.place(s + hall / 2, side * (back + uniform(rng, 6, 15) + depth / 2)),
                     hall, depth, uniform(rng, 6, 12))
            s += hall + uniform(rng, 5, 25)

    def far_row(self) -> None:
        """Buildings across the end of the street (a T-junction far ahead) or a far skyline."""
        rng = self.rng
        if self.far_end < STREET_REACH_M:
            lateral = -60.0
            while lateral < 60:
                width = uniform(rng, 10, 30)
                depth = uniform(rng, 10, 20)
                place = self.place(self.far_end + depth / 2 + 8, lateral + width / 2, np.pi / 2,
                                   True)
                self.put(urban_block, place, width, depth, uniform(rng, 8, 35))
                lateral += width
        else:
            for _ in range(rng.integers(5, 14)):
                s, lateral = uniform(rng, 170, 260), uniform(rng, -120, 120)
                width = uniform(rng, 15, 40)
                self.put(urban_block, self.place(s, lateral, 0.0, True), width,
                         uniform(rng, 10, 25), uniform(rng, 10, 60))

    # ------------------------------------------------------------------ street furniture

    def kerbside(self, side: int) -> None:
        rng = self.rng
        end = min(self.far_end, 130)
        if rng.random() < 0.85:
            spacing, s = uniform(rng, 18, 35), uniform(rng, -5, 15)
            arm = uniform(rng, 1.0, 2.5)
            while s < end:
                if self.footprints.claim_around(s, self.kerb_lateral(side, 0.5), 0.4, 0.4):
                    self.put(street_light, self.place(s, self.kerb_lateral(side, 0.5)), -side * arm)
                s += spacing
        if rng.random() < 0.45:
            spacing, s = uniform(rng, 7, 15), uniform(rng, 0, 8)
            while s < end:
                lateral = self.kerb_lateral(side, min(1.0, self.section.sidewalk[side > 0] / 2))
                if self.footprints.claim_around(s, lateral, 0.6, 0.6):
                    self.put(tree, self.place(s, lateral), uniform(rng, 0.7, 1.1))
                s += spacing * uniform(rng, 0.8, 1.2)
        for _ in range(rng.integers(0, 4)):
            s = uniform(rng, 4, 80)
            if self.footprints.claim_around(s, self.kerb_lateral(side, 0.35), 0.4, 0.4):
                self.put(sign_post, self.place(s, self.kerb_lateral(side, 0.35), np.pi))
        if rng.random() < 0.15:
            s = uniform(rng, 3, 40)
            for index in range(rng.integers(4, 12)):
                self.put(bollard, self.place(s + 1.6 * index, self.kerb_lateral(side, 0.3)))
        if rng.random() < 0.15:
            s = uniform(rng, 3, 40)
            lateral = self.kerb_lateral(side, 1.0)
            for index in range(rng.integers(1, 5)):
                if self.footprints.claim_around(s + 0.7 * index, lateral, 0.3, 1.0):
                    self.put(bicycle, self.place(s + 0.7 * index, lateral, np.pi / 2))
        small = (litter_bin, bench, hydrant)
        for _ in range(rng.integers(0, 4)):
            s = uniform(rng, 2, 60)
            lateral = self.kerb_lateral(side, uniform(rng, 0.4, 0.8))
            if self.footprints.claim_around(s, lateral, 0.6, 0.6):
                builder = small[rng.integers(len(small))]
                self.put(builder, self.place(s, lateral, side * np.pi / 2))
        if self.crossing_s is not None:
            lateral = self.kerb_lateral(side, 0.4)
            arm = self.section.half_width * 0.8 if side > 0 and rng.random() < 0.4 else 0.0
            self.put(traffic_light, self.place(self.crossing_s - 2.0, lateral, np.pi), arm)

    def parked_cars(self, side: int) -> None:
        rng = self.rng
        if not self.section.parking[side > 0] or rng.random() < 0.15:
            return
        lateral = side * (self.section.half_width - 1.1)
        occupancy = uniform(rng, 0.5, 0.95)
        s = uniform(rng, -8, 4)
        while s < min(self.far_end, 110):
            gap = uniform(rng, 0.6, 2.5)
            if rng.random() < occupancy:
                place = self.place(s + 2.6, lateral + uniform(rng, -0.15, 0.15),
                                   (0.0 if side > 0 or not self.section.two_way else np.pi)
                                   + uniform(rng, -0.03, 0.03), False)
                if self.footprints.claim(s, s + 5.2, lateral - 1.0, lateral + 1.0):
                    self.put(road_vehicle, place)
            s += 5.2 + gap

    def traffic(self, camera_lateral: float | None) -> None:
        rng = self.rng
        lanes = self.section.lane_centers()
        for index in range(rng.integers(1, 9)):
            lateral = float(lanes[rng.integers(len(lanes))]) + uniform(rng, -0.3, 0.3)
            ahead = index == 0 and camera_lateral is not None
            if ahead:
                lateral = camera_lateral + uniform(rng, -0.2, 0.2)
            s = uniform(rng, 7, 25) if ahead else uniform(rng, 5, max(min(self.far_end, 140), 30))
            direction = self.section.lane_direction(lateral)
            if self.footprints.claim(s - 3.5, s + 3.5, lateral - 1.2, lateral + 1.2):
                turn = (0.0 if direction > 0 else np.pi) + uniform(rng, -0.05, 0.05)
                self.put(road_vehicle, self.place(s, lateral, turn, False))
        left, right = self.section.driving_edges()
        for _ in range(rng.integers(0, 3) if rng.random() < 0.35 else 0):
            edge = right if rng.random() < 0.5 else left
            lateral = edge - np.sign(edge) * uniform(rng, 0.5, 0.9)
            s = uniform(rng, 4, 50)
            if self.footprints.claim(s - 1.0, s + 1.0, lateral - 0.5, lateral + 0.5):
                direction = self.section.lane_direction(lateral)
                turn = (0.0 if direction > 0 else np.pi) + uniform(rng, -0.08, 0.08)
                self.put(cyclist, self.place(s, lateral, turn, False))

    def pedestrians(self, near_s: float = 3.0, count: tuple[int, int] = (1, 12)) -> None:
        rng = self.rng
        for index in range(rng.integers(*count)):
            side = 1 if rng.random() < 0.5 else -1
            width = self.section.sidewalk[side > 0]
            crossing = rng.random() < 0.12
            if crossing:
                s = self.crossing_s + 2.0 if self.crossing_s is not None else uniform(rng, 8, 50)
                lateral = uniform(rng, -self.section.half_width + 0.5,
                                  self.section.half_width - 0.5)
                turn = side * np.pi / 2
            else:
                s = uniform(rng, near_s, near_s + (15 if index < 2 else 70))
                lateral = self.kerb_lateral(side, uniform(rng, 0.4, max(width - 0.4, 0.5)))
                turn = (0.0 if rng.random() < 0.5 else np.pi) + uniform(rng, -0.3, 0.3)
            if self.footprints.claim_around(s, lateral, 0.4, 0.4):
                self.put(person, self.place(s, lateral, turn))


class StreetSurface:
    """Colours and labels of a street's ground: asphalt with markings on the road, kerb
    stones, paved sidewalks, and lawns beyond them in front of houses and parks (nature)."""

    def __init__(self, builder: StreetBuilder):
        rng, kit = builder.rng, builder.kit
        self.line, self.section, self.noise = builder.line, builder.section, kit.noise
        self.road_color = kit.palette.color(np.full(3, uniform(rng, 0.16, 0.34)) * [1, 1, 1.03],
                                            0.02)
        self.road_gloss = np.float32(0.25 if rng.random() < 0.12 else 0.02)   # wet or dry
        self.paving = [paved_texture(kit), paved_texture(kit)]
        self.kerb_color = kit.palette.color((0.62, 0.62, 0.6), 0.05)
        self.lawn = kit.palette.color((0.26, 0.38, 0.14), 0.05)
        self.dirt = kit.palette.color((0.42, 0.35, 0.25), 0.05)
        self.markings = Markings(kit.palette.pick(MARKING_COLORS[:1] if rng.random() < 0.75
                                                  else MARKING_COLORS[1:], 0.02),
                                 uniform(rng, 8, 13), uniform(rng, 2.5, 4.5), uniform(rng, 0, 9),
                                 str(rng.choice(['dashed', 'solid', 'double'])),
                                 builder.crossing_s)
        self.green_side = np.array([kind in ('houses', 'park') for kind in builder.frontage])

    def __call__(self, px, py, kind, footprint):
        s, lateral = self.line.to_local(px, py)
        s, lateral = s.astype(np.float32), lateral.astype(np.float32)
        albedo = np.empty((px.size, 3), np.float32)
        labels = np.full(px.size, FLAT, np.uint8)
        road, kerb = kind == LOW, kind == KERB
        raised = ~road & ~kerb
        albedo[road] = self._road(s[road], lateral[road], footprint[road])
        albedo[kerb] = self.kerb_color
        albedo[raised], labels[raised] = self._raised(s[raised], lateral[raised],
                                                      footprint[raised])
        return albedo, labels, np.where(road, self.road_gloss, np.float32(0.02))

    def _road(self, s, lateral, footprint) -> np.ndarray:
        color = asphalt(self.noise, self.road_color, s, lateral, footprint)
        paint = self.markings.coverage(self.section, s, lateral, footprint)[:, None]
        return color * (1 - paint) + self.markings.color * paint

    def _raised(self, s, lateral, footprint) -> tuple[np.ndarray, np.ndarray]:
        side = (lateral > 0).astype(np.int64)
        beyond = np.abs(lateral) - np.float32(self.section.half_width)
        color = np.empty((s.size, 3), np.float32)
        for index in (0, 1):
            mine = side == index
            color[mine] = self.paving[index](s[mine], beyond[mine], footprint[mine])
        width = np.asarray(self.section.sidewalk, np.float32)[side]
        green = (beyond > width + 0.3) & self.green_side[side]
        color[green] = grass(self.noise, self.lawn, self.dirt, s[green], beyond[green],
                             footprint[green])
        return color, np.where(green, NATURE, FLAT).astype(np.uint8)


def _cross_section(rng: np.random.Generator, robot: bool) -> CrossSection:
    two_way = rng.random() < 0.75
    lanes = int(rng.choice([1, 2, 2, 3, 4])) if two_way else int(rng.integers(1, 3))
    lanes = max(lanes, 2) if two_way else lanes
    lane_width = uniform(rng, 2.8, 3.6)
    parking = (bool(rng.random() < 0.45), bool(rng.random() < 0.55))
    half = (lanes * lane_width + sum(parking) * CrossSection.PARKING_M) / 2
    low = 2.0 if robot else 1.4
    sidewalk = (uniform(rng, low, 5.0), uniform(rng, low, 5.0))
    return CrossSection(half, lanes, parking, sidewalk, uniform(rng, 0.08, 0.18), two_way,
                        bool(rng.random() < 0.8))


def _frontages(rng: np.random.Generator) -> tuple[str, str]:
    names, weights = zip(*FRONTAGES)
    first = str(rng.choice(names, p=weights))
    second = first if rng.random() < 0.5 else str(rng.choice(names, p=weights))
    return first, second


def street_scene(context: LayoutContext, curved: bool, robot: bool) -> Scene:
    """A straight or curved street seen from a car in a lane (robot=False, camera 1.2-1.8 m)
    or from a robot on a sidewalk (robot=True, camera 0.3-0.8 m)."""
    rng = context.rng
    section = _cross_section(rng, robot)
    if curved:
        radius = float(np.exp(rng.uniform(np.log(25), np.log(200))))
        turn = uniform(rng, 0.5, 1.6) * (1 if rng.random() < 0.5 else -1)
        line = Centerline(0.0, uniform(rng, -5, 25), turn / abs(turn) / radius, abs(turn))
    else:
        line = Centerline(0.0)
    builder = StreetBuilder(context, line, section, _frontages(rng))
    ground = builder.ground(line.region(section.half_width))
    if robot:
        side = 1 if rng.random() < 0.5 else -1
        width = section.sidewalk[side > 0]
        lateral = builder.kerb_lateral(side, uniform(rng, 0.5, width - 0.5))
        camera_lateral = None
        builder.footprints.claim_around(0.0, lateral, 1.0, 0.6)
    else:
        lanes = section.lane_centers()
        ahead = [x for x in lanes if section.lane_direction(x) > 0]
        lateral = float(ahead[rng.integers(len(ahead))]) + uniform(rng, -0.3, 0.3)
        camera_lateral = lateral
        builder.footprints.claim(-6.0, 3.0, lateral - 1.2, lateral + 1.2)
    x, y, heading = line.to_world(0.0, lateral)
    rig = ROBOT_RIG if robot else CAR_RIG
    camera = draw_pose(rng, rig, float(x), float(y), section.kerb_m if robot else 0.0,
                       float(heading), context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    for side in (-1, 1):
        builder.kerbside(side)
        builder.parked_cars(side)
    builder.pedestrians(near_s=2.0 if robot else 4.0)
    builder.traffic(camera_lateral)
    for side in (-1, 1):
        builder.frontage_objects(side)
    builder.far_row()
    if curved and rng.random() < 0.3:
        outer = 1 if line.k < 0 else -1
        builder.put(guard_rail, builder.place(60, builder.kerb_lateral(outer, 0.3)), 10.0)
    name = ('sidewalk_street' if robot else 'curved' if curved else 'street')
    return Scene(name, ground, builder.things, camera, environment)


def intersection_scene(context: LayoutContext) -> Scene:
    """A crossroads or T-junction ahead of a car: two carriageways, zebra crossings, corner
    buildings, traffic lights, crossing traffic and people waiting at the corners."""
    rng = context.rng
    section = _cross_section(rng, robot=False)
    cross_at = uniform(rng, 14, 45)
    cross_half = uniform(rng, 3.5, 8.0)
    t_junction = rng.random() < 0.3
    line = Centerline(0.0)
    builder = StreetBuilder(context, line, section, ('buildings', 'buildings'))
    builder.far_end = cross_at - cross_half - section.sidewalk[1] - 1.0
    builder.crossing_s = cross_at - cross_half - 5.0
    main_end = cross_at if t_junction else np.inf
    region = Union(Strip(0.0, 0.0, 0.0, section.half_width, (-np.inf, main_end)),
                   Strip(0.0, cross_at, np.pi / 2, cross_half))
    ground = builder.ground(region)
    lanes = section.lane_centers()
    ahead = [x for x in lanes if section.lane_direction(x) > 0]
    lateral = float(ahead[rng.integers(len(ahead))]) + uniform(rng, -0.3, 0.3)
    builder.footprints.claim(-6.0, 3.0, lateral - 1.2, lateral + 1.2)
    camera = draw_pose(rng, CAR_RIG, lateral, 0.0, 0.0, 0.0, context.fov)
    context.camera = camera
    environment = outdoor_environment(context)
    for side in (-1, 1):
        builder.kerbside(side)
        builder.parked_cars(side)
        builder.frontage_objects(side)
    builder.pedestrians(near_s=4.0)
    builder.traffic(lateral)
    _corner_blocks(builder, cross_at, cross_half, t_junction)
    _crossing_traffic(builder, cross_at, cross_half)
    return Scene('intersection', ground, builder.things, camera, environment)


def _corner_blocks(builder: StreetBuilder, cross_at: float, cross_half: float,
                   t_junction: bool) -> None:
    """Buildings on the far corners and, for a T-junction, across the end."""
    rng, section = builder.rng, builder.section
    far_start = cross_at + cross_half + 3.0
    for side in (-1, 1):
        s = far_start
        while s < far_start + 80:
            length = uniform(rng, 10, 30)
            depth = uniform(rng, 10, 18)
            lateral = side * (section.half_width + section.sidewalk[side > 0] + depth / 2)
            builder.put(urban_block, builder.place(s + length / 2, lateral), length, depth,
                        uniform(rng, 8, 30))
            s += length
        corner = builder.place(cross_at - cross_half - 1.5, builder.kerb_lateral(side, 0.4), np.pi)
        builder.put(traffic_light, corner, section.half_width * 0.8 if side > 0 else 0.0)
        for _ in range(rng.integers(0, 3)):
            s = cross_at - cross_half - uniform(rng, 0.5, 3.0)
            lateral = builder.kerb_lateral(side, uniform(rng, 0.4, 1.8))
            if builder.footprints.claim_around(s, lateral, 0.4, 0.4):
                builder.put(person, builder.place(s, lateral, rng.uniform(-np.pi, np.pi)))
    if t_junction:
        lateral = -80.0
        while lateral < 80:
            width = uniform(rng, 12, 30)
            builder.put(urban_block,
                        builder.place(far_start + 8, lateral + width / 2, np.pi / 2, True), width,
                        14, uniform(rng, 8, 30))
            lateral += width


def _crossing_traffic(builder: StreetBuilder, cross_at: float, cross_half: float) -> None:
    rng = builder.rng
    for _ in range(rng.integers(0, 4)):
        direction = 1 if rng.random() < 0.5 else -1
        lane = direction * uniform(rng, 0.5, cross_half - 1.0)
        along = uniform(rng, -40, 40)
        if builder.footprints.claim_around(cross_at + lane, along, 1.2, 3.0):
            place = Placement(along, cross_at + lane, 0.0, -np.pi / 2 * direction)
            builder.put(road_vehicle, place)

