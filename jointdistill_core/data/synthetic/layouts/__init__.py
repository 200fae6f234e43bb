"""Scene layouts by name, their groups, and the configurable scene mix.

Groups (what a `SceneMix` weighs): 'road' (a car-height camera on streets, curves,
intersections and parking lots), 'sidewalk' (a delivery-robot camera 0.3-0.8 m high on
sidewalks and plazas) and 'indoor' (warehouse aisles, corridors, loading areas, offices).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from jointdistill_core.data.synthetic.layouts.base import LayoutContext, Scene
from jointdistill_core.data.synthetic.layouts.indoor import (
    corridor_scene,
    loading_scene,
    office_scene,
    warehouse_scene,
)
from jointdistill_core.data.synthetic.layouts.open_areas import parking_scene, plaza_scene
from jointdistill_core.data.synthetic.layouts.streets import intersection_scene, street_scene

LAYOUTS: dict[str, Callable[[LayoutContext], Scene]] = {
    'street': partial(street_scene, curved=False, robot=False),
    'curved': partial(street_scene, curved=True, robot=False),
    'intersection': intersection_scene,
    'parking': parking_scene,
    'sidewalk_street': lambda context: street_scene(context, bool(context.rng.random() < 0.35),
                                                    True),
    'plaza': plaza_scene,
    'warehouse': warehouse_scene,
    'corridor': corridor_scene,
    'loading': loading_scene,
    'office': office_scene,
}

# Each group's share among its layouts.
GROUPS: dict[str, dict[str, float]] = {
    'road': {'street': 0.35, 'curved': 0.25, 'intersection': 0.25, 'parking': 0.15},
    'sidewalk': {'sidewalk_street': 0.65, 'plaza': 0.35},
    'indoor': {'warehouse': 0.3, 'corridor': 0.2, 'loading': 0.2, 'office': 0.3},
}
INDOOR_LAYOUTS = tuple(GROUPS['indoor'])


@dataclass(frozen=True)
class SceneMix:
    """How often each layout is drawn: weights by group or layout name, normalised.

    `SceneMix.parse('road=0.45,sidewalk=0.25,indoor=0.3')` (the default) weighs the groups;
    a group's weight is shared among its layouts as in GROUPS. Layout names may be weighed
    directly too: 'street=1,warehouse=1'.
    """
    weights: tuple[tuple[str, float], ...]

    def __post_init__(self):
        if not self.weights:
            raise ValueError('a scene mix needs at least one layout or group with a weight')
        for name, weight in self.weights:
            if name not in GROUPS and name not in LAYOUTS:
                raise ValueError(f'unknown layout or group {name!r} in the scene mix; known: '
                                 f'{", ".join(list(GROUPS) + list(LAYOUTS))}')
            if not np.isfinite(weight) or weight < 0:
                raise ValueError(f'scene mix weight of {name!r} must be >= 0, got {weight}')
        if sum(weight for _, weight in self.weights) <= 0:
            raise ValueError('scene mix weights must not all be zero')

    @classmethod
    def parse(cls, text: str) -> 'SceneMix':
        """'name=weight,name=weight' (names: groups or layouts) -> SceneMix."""
        items = []
        for item in filter(None, (part.strip() for part in text.split(','))):
            match = re.fullmatch(r'([a-z_]+)\s*=\s*([0-9.eE+-]+)', item)
            if not match:
                raise ValueError(f'scene mix item {item!r} is not name=weight')
            try:
                items.append((match.group(1), float(match.group(2))))
            except ValueError:
                raise ValueError(f'scene mix item {item!r}: weight is not a number') from None
        return cls(tuple(items))

    def fractions(self) -> dict[str, float]:
        """Probability of each layout (names in LAYOUTS order, zeros left out)."""
        total = sum(weight for _, weight in self.weights)
        out = dict.fromkeys(LAYOUTS, 0.0)
        for name, weight in self.weights:
            share = GROUPS[name] if name in GROUPS else {name: 1.0}
            for layout, fraction in share.items():
                out[layout] += weight / total * fraction
        return {name: value for name, value in out.items() if value > 0}

    def draw(self, rng: np.random.Generator) -> str:
        fractions = self.fractions()
        names = list(fractions)
        cumulative = np.cumsum(list(fractions.values()))
        index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side='right'))
        return names[min(index, len(names) - 1)]

    def __str__(self) -> str:
        return ','.join(f'{name}={weight:g}' for name, weight in self.weights)


DEFAULT_MIX = SceneMix((('road', 0.45), ('sidewalk', 0.25), ('indoor', 0.3)))
