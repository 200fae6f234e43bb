"""What every layout returns and the helpers they share."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from jointdistill_core.data.synthetic.camera import CameraPose
from jointdistill_core.data.synthetic.ground import Ground
from jointdistill_core.data.synthetic.lighting import Environment, draw_environment
from jointdistill_core.data.synthetic.objects import Kit, Placement
from jointdistill_core.data.synthetic.objects.buildings import house, shed, urban_block
from jointdistill_core.data.synthetic.objects.indoor import rack_block, rack_row
from jointdistill_core.data.synthetic.objects.plants import hedge, tree
from jointdistill_core.data.synthetic.objects.street import fence, guard_rail, wall
from jointdistill_core.data.synthetic.objects.vehicles import bus
from jointdistill_core.data.synthetic.primitives import Thing

OUTDOOR_LIGHT = (('clear', 0.55), ('overcast', 0.3), ('dusk', 0.15))


@dataclass
class Scene:
    """A built scene: ground, objects, camera and light. indoor scenes are closed rooms
    (no sky); ceiling_m is the ceiling height of indoor scenes (metres) or None."""
    layout: str
    ground: Ground
    things: list[Thing]
    camera: CameraPose
    environment: Environment
    indoor: bool = False
    ceiling_m: float | None = None


# Metres from its placement an object may reach, from its builder's size arguments.
_REACH: dict[Callable, Callable[..., float]] = {
    urban_block: lambda length, depth, height: 0.5 * math.hypot(length, depth, height),
    shed: lambda length, depth, height: 0.5 * math.hypot(length, depth, height),
    house: lambda length, depth: 0.5 * math.hypot(length, depth) + 5.0,
    fence: lambda length, height: length / 2 + 1.0,
    wall: lambda length, height, *rest: length / 2 + 1.0,
    hedge: lambda length, *rest: length / 2 + 1.0,
    guard_rail: lambda length: length / 2 + 1.0,
    tree: lambda scale=1.0: 9.0 * scale,
    bus: lambda: 7.0,
    rack_row: lambda length, *rest: length / 2 + 2.0,
    rack_block: lambda length, *rest: length / 2 + 2.0,
}
DEFAULT_REACH_M = 3.5
ALWAYS_BUILT_M = 10.0        # objects this close are built even outside the view (shadows)
VIEW_MARGIN = np.deg2rad(20.0)


@dataclass
class LayoutContext:
    """What a layout builder gets: the frame's random generator, the object kit (noise,
    palette, lamps) and the horizontal field of view (radians) already drawn. Once the
    layout has drawn its camera (`camera`), `put` builds only objects that can be seen."""
    rng: np.random.Generator
    kit: Kit
    fov: float
    camera: CameraPose | None = None

    def sees(self, x: float, y: float, reach: float) -> bool:
        """Whether anything within `reach` metres of (x, y) can be in view: inside the
        horizontal field of view widened by 20 degrees, or within 10 m of the camera. Uses
        only the pose and field of view, so a scene does not depend on the image size."""
        if self.camera is None:
            return True
        dx, dy = x - self.camera.position[0], y - self.camera.position[1]
        distance = math.hypot(dx, dy)
        if distance < reach + ALWAYS_BUILT_M:
            return True
        yaw = self.camera.yaw
        along = -dx * math.sin(yaw) + dy * math.cos(yaw)
        across = dx * math.cos(yaw) + dy * math.sin(yaw)
        angle = abs(math.atan2(across, along))
        return angle - math.asin(min(1.0, reach / distance)) < self.fov / 2 + VIEW_MARGIN

    def put(self, things: list[Thing], builder: Callable[..., Thing], place: Placement,
            *args, **kwargs) -> None:
        """Append builder(kit, place, *args, **kwargs) to things if it can be seen."""
        reach = _REACH.get(builder, lambda *a, **k: DEFAULT_REACH_M)(*args, **kwargs)
        if self.sees(float(place.origin[0]), float(place.origin[1]), reach):
            things.append(builder(self.kit, place, *args, **kwargs))


def outdoor_environment(context: LayoutContext) -> Environment:
    """Clear (55 %), overcast (30 %) or dusk (15 %); at dusk lamps and windows light up."""
    names, weights = zip(*OUTDOOR_LIGHT)
    kind = str(context.rng.choice(names, p=weights))
    context.kit.lights_on = kind == 'dusk'
    return draw_environment(context.rng, kind)


def indoor_environment(context: LayoutContext) -> Environment:
    """Lamp-lit interior light; lamps glow."""
    context.kit.lights_on = True
    return draw_environment(context.rng, 'indoor')


@dataclass
class Footprints:
    """Ground rectangles (a0, a1, b0, b1) already taken, in a layout's own 2-D coordinates
    (street coordinates along and across the road, or world X and Y)."""
    taken: list[tuple[float, float, float, float]] = field(default_factory=list)

    def claim(self, a0: float, a1: float, b0: float, b1: float) -> bool:
        """Take the rectangle if it overlaps nothing taken; returns whether it was free."""
        for t0, t1, u0, u1 in self.taken:
            if a0 < t1 and t0 < a1 and b0 < u1 and u0 < b1:
                return False
        self.taken.append((a0, a1, b0, b1))
        return True

    def claim_around(self, a: float, b: float, half_a: float, half_b: float) -> bool:
        return self.claim(a - half_a, a + half_a, b - half_b, b + half_b)
