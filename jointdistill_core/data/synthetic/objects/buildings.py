"""Buildings (label construction): terraced urban blocks with window grids, shop fronts,
doors, balconies and awnings; glass office fronts; detached houses with gabled roofs;
industrial sheds with corrugated cladding and roller doors.

A building is placed with its footprint centred on the placement, its length along local y
and its depth along local x; every wall carries the facade.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jointdistill_core.classes import CONSTRUCTION
from jointdistill_core.data.synthetic.materials import brick, concrete, face_uv, pavers, plaster
from jointdistill_core.data.synthetic.objects import Kit, Placement, single, uniform
from jointdistill_core.data.synthetic.primitives import Hit, Material, Thing

WALLS = np.array([[0.78, 0.72, 0.6], [0.62, 0.6, 0.57], [0.85, 0.83, 0.78], [0.7, 0.55, 0.42],
                  [0.55, 0.5, 0.45], [0.8, 0.72, 0.5], [0.6, 0.66, 0.7], [0.7, 0.45, 0.35]])
BRICKS = np.array([[0.55, 0.27, 0.18], [0.62, 0.42, 0.3], [0.48, 0.25, 0.17],
                   [0.7, 0.6, 0.45]])
GLASS = np.array([[0.12, 0.15, 0.2], [0.2, 0.24, 0.28], [0.1, 0.14, 0.14], [0.25, 0.28, 0.35]])
ROOF_TILES = np.array([[0.45, 0.18, 0.12], [0.25, 0.25, 0.27], [0.35, 0.25, 0.2]])
SHOP_SIGNS = np.array([[0.7, 0.1, 0.1], [0.1, 0.2, 0.5], [0.9, 0.9, 0.9], [0.1, 0.4, 0.2],
                       [0.9, 0.6, 0.1], [0.1, 0.1, 0.1]])


def _wall_texture(kit: Kit, style: str):
    """texture(u, v, footprint) for the wall between the windows."""
    noise, rng = kit.noise, kit.rng
    if style == 'brick':
        color = kit.palette.pick(BRICKS, 0.04)
        mortar = kit.palette.color((0.72, 0.7, 0.64), 0.04)
        return lambda u, v, fp: brick(noise, color, mortar, u, v, fp)
    if style == 'concrete':
        color = kit.palette.color(np.full(3, uniform(rng, 0.5, 0.72)), 0.03)
        slab = uniform(rng, 1.2, 3.0)
        return lambda u, v, fp: concrete(noise, color, u, v, fp, slab)
    if style == 'cladding':
        color = kit.palette.pick([[0.7, 0.72, 0.74], [0.3, 0.4, 0.5], [0.6, 0.25, 0.15],
                                  [0.85, 0.85, 0.82], [0.3, 0.45, 0.35]], 0.04)

        def corrugated(u, v, fp):
            ribs = np.sin((u * np.float32(2 * np.pi / 0.2)).astype(np.float32))
            weight = np.clip(1.5 - 2 * fp / 0.2, 0, 1) if fp is not None else 1.0
            return color[None, :] * (0.9 + 0.12 * ribs * weight)[:, None]
        return corrugated
    color = kit.palette.pick(WALLS, 0.05)
    return lambda u, v, fp: plaster(noise, color, u, v, fp)


@dataclass
class WindowGrid:
    """Windows in storeys: floor height, height of the ground floor, window pitch along the
    wall, window width and height, sill height above each storey's floor (metres)."""
    floor_h: float
    ground_h: float
    spacing: float
    width: float
    height: float
    sill: float
    offset: float

    @classmethod
    def draw(cls, rng: np.random.Generator, style: str) -> 'WindowGrid':
        floor_h = uniform(rng, 2.8, 3.6)
        ground_h = floor_h * uniform(rng, 1.0, 1.35)
        if style == 'glass':           # curtain wall: glass from floor to ceiling
            spacing = uniform(rng, 1.2, 1.8)
            width, height, sill = spacing - 0.1, floor_h - 0.35, 0.15
        elif style == 'cladding':      # industrial: few high windows
            spacing, width, height, sill = uniform(rng, 4.0, 8.0), uniform(rng, 1.5, 3.0), 0.8, 2.2
        else:
            spacing = uniform(rng, 1.8, 3.4)
            width = min(spacing - 0.5, uniform(rng, 0.7, 1.5))
            height, sill = uniform(rng, 1.1, 1.7), uniform(rng, 0.7, 1.0)
        return cls(floor_h, ground_h, spacing, width, height, sill, uniform(rng, 0, spacing))


@dataclass
class _FacadeRegions:
    """Per-pixel data (M,) of a facade: face coordinates u, v (metres), masks and a tone per
    window in [0, 1)."""
    u: np.ndarray
    v: np.ndarray
    side: np.ndarray
    window: np.ndarray
    frame: np.ndarray
    sign: np.ndarray
    door: np.ndarray
    tone: np.ndarray


class FacadeSurface:
    """Walls with windows on every vertical face of a box of half extents `half` (metres).

    style: 'plaster', 'brick', 'concrete', 'cladding' (corrugated, few windows) or 'glass'
    (curtain wall). floors: windows on the ground floor too. shop: a glazed ground floor
    with a sign band. door_u: metres along the faces where a door is. At dusk a share of
    the windows and the shop signs glow.
    """

    LIT_WINDOW = np.array([2.2, 1.7, 1.0], np.float32)

    def __init__(self, kit: Kit, half, style: str, floors: bool = True, shop: bool = False,
                 door_u: float | None = None):
        rng = kit.rng
        self.half, self.floors, self.shop, self.door_u = half, floors, shop, door_u
        self.noise, self.lights_on = kit.noise, kit.lights_on
        self.wall = _wall_texture(kit, 'concrete' if style == 'glass' else style)
        self.glass = kit.palette.pick(GLASS, 0.04)
        self.frame = kit.palette.pick([[0.9, 0.9, 0.88], [0.15, 0.15, 0.15],
                                       [0.45, 0.35, 0.25], [0.5, 0.5, 0.52]], 0.03)
        self.roof = kit.palette.color((0.3, 0.29, 0.28), 0.05)
        self.grid = WindowGrid.draw(rng, style)
        self.sign_color = kit.palette.pick(SHOP_SIGNS, 0.05)
        self.lit_fraction = uniform(rng, 0.2, 0.6) if kit.lights_on else 0.0

    def material(self) -> Material:
        return Material(self.albedo, self.gloss, self.emission if self.lights_on else None)

    def regions(self, hit: Hit) -> _FacadeRegions:
        grid, height = self.grid, 2 * self.half[2]
        u, v = face_uv(hit, self.half)
        side = hit.face // 2 != 2
        column = np.floor((u + grid.offset) / grid.spacing)
        across = (u + grid.offset) - column * grid.spacing - grid.spacing / 2
        above = v - grid.ground_h
        level = np.floor(above / grid.floor_h)
        in_storey = above - level * grid.floor_h
        if self.floors and not self.shop:        # the ground floor has windows too
            in_storey = np.where(above > 0, in_storey, v)
            storey = side & (v < height - 0.6)
        else:
            storey = side & (above > 0) & (v < height - 0.6)
        window = storey & _inside(across, in_storey, grid, 0.0)
        frame = storey & _inside(across, in_storey, grid, 0.075)
        window |= side & self.shop & (v > 0.35) & (v < grid.ground_h - 0.7) & (
            np.abs(across) < grid.spacing * 0.45)
        sign = side & self.shop & (v > grid.ground_h - 0.6) & (v < grid.ground_h - 0.1)
        door = np.zeros(u.shape, bool)
        if self.door_u is not None:
            door = side & (np.abs(u - self.door_u) < 0.6) & (v < 2.3)
        tone = self.noise.cell(column * 7.1 + 0.5, (level + 2) * 3.3 + 0.5)
        return _FacadeRegions(u, v, side, window, frame, sign, door, tone)

    def albedo(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        out = self.wall(r.u, r.v, hit.footprint)
        out[r.frame] = self.frame
        out[r.window] = self.glass[None, :] * (0.6 + 0.9 * r.tone[r.window, None])
        out[r.sign] = self.sign_color
        out[r.door] = self.frame * 0.4
        out[~r.side] = self.roof
        return out

    def gloss(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        return np.where(r.window, np.float32(0.45), np.float32(0.03))

    def emission(self, hit: Hit) -> np.ndarray:
        r = hit.memo(self.regions, self.regions)
        out = np.zeros((hit.px.size, 3), np.float32)
        lit = r.window & (r.tone < self.lit_fraction)
        out[lit] = self.LIT_WINDOW * (0.6 + r.tone[lit, None])
        out[r.sign] = self.sign_color * 1.5
        return out


def _inside(across: np.ndarray, in_storey: np.ndarray, grid: WindowGrid, margin: float
            ) -> np.ndarray:
    """Whether points lie within a window grown by `margin` metres (its frame)."""
    return ((np.abs(across) < grid.width / 2 + margin) & (in_storey > grid.sill - margin)
            & (in_storey < grid.sill + grid.height + margin))


def facade(kit: Kit, half, style: str, floors: bool = True, shop: bool = False,
           door_u: float | None = None) -> Material:
    """The material of a FacadeSurface (see there)."""
    return FacadeSurface(kit, half, style, floors, shop, door_u).material()


def urban_block(kit: Kit, place: Placement, length: float, depth: float, height: float
                ) -> Thing:
    """Terraced city building with windows, often shops, balconies or an awning."""
    rng = kit.rng
    style = str(rng.choice(['plaster', 'brick', 'concrete', 'glass'], p=[0.4, 0.3, 0.18, 0.12]))
    shop = rng.random() < 0.5 and style != 'glass'
    half = (depth / 2, length / 2, height / 2)
    material = facade(kit, half, style, shop=shop, door_u=uniform(rng, 1, max(1.5, length - 1)))
    parts = [place.box((0, 0, height / 2), half, CONSTRUCTION, material)]
    if rng.random() < 0.5:   # cornice / parapet
        parts.append(place.box((0, 0, height + 0.15), (depth / 2 + 0.15, length / 2 + 0.05, 0.15),
                               CONSTRUCTION, Material(kit.palette.color((0.6, 0.58, 0.55)))))
    if shop and rng.random() < 0.4:
        awning = kit.palette.pick(SHOP_SIGNS, 0.05)
        for sign in (-1, 1):
            parts.append(place.box((sign * (depth / 2 + 0.6), 0, 2.9),
                                   (0.7, length / 2 - 0.3, 0.04), CONSTRUCTION,
                                   Material(awning), roll=sign * 0.25))
    return Thing(parts, parts[:1])


def house(kit: Kit, place: Placement, length: float, depth: float) -> Thing:
    """Detached house, one or two floors, gabled tiled roof."""
    rng = kit.rng
    floors = int(rng.integers(1, 3))
    wall_h = floors * uniform(rng, 2.6, 3.0) + 0.4
    style = str(rng.choice(['plaster', 'brick'], p=[0.6, 0.4]))
    half = (depth / 2, length / 2, wall_h / 2)
    body = place.box((0, 0, wall_h / 2), half, CONSTRUCTION,
                     facade(kit, half, style, door_u=length / 2 + uniform(rng, -1.5, 1.5)))
    ridge = depth / 2 * uniform(rng, 0.5, 1.0)
    eave = 0.4
    roof_place = Placement(*place.point((0, 0, wall_h)), yaw=place.yaw + np.pi / 2)
    tiles = kit.palette.pick(ROOF_TILES, 0.04)
    noise = kit.noise

    def roof_albedo(hit: Hit) -> np.ndarray:
        rows = np.mod(hit.pz * 5.0, 1.0) < 0.15
        tone = noise.solid(hit.px, hit.py, hit.pz, 1.5)
        return tiles[None, :] * (0.85 + 0.3 * tone[:, None]) * np.where(rows, 0.8, 1.0)[:, None]
    roof = roof_place.prism((0, 0, 0), [(-depth / 2 - eave, -0.15), (depth / 2 + eave, -0.15),
                                        (0, ridge)], length / 2 + eave, CONSTRUCTION,
                            Material(roof_albedo))
    return Thing([body, roof], [body, roof])


def shed(kit: Kit, place: Placement, length: float, depth: float, height: float) -> Thing:
    """Industrial hall with corrugated cladding and high windows."""
    half = (depth / 2, length / 2, height / 2)
    part = place.box((0, 0, height / 2), half, CONSTRUCTION,
                     facade(kit, half, 'cladding', floors=False,
                            door_u=uniform(kit.rng, 2, max(2.5, length - 2))))
    return single(part)


def paved_texture(kit: Kit):
    """Ground texture for sidewalks: small pavers, large slabs or plain concrete; returns
    texture(u, v, footprint) -> (M, 3)."""
    rng, noise = kit.rng, kit.noise
    color = kit.palette.color(np.full(3, uniform(rng, 0.45, 0.7)) * [1.0, 0.98, 0.95], 0.04)
    kind = rng.integers(3)
    if kind == 0:
        size = uniform(rng, 0.2, 0.35)
        return lambda u, v, fp: pavers(noise, color, u, v, fp, size, size * 0.5, 0.008)
    if kind == 1:
        size = uniform(rng, 0.5, 1.0)
        return lambda u, v, fp: pavers(noise, color, u, v, fp, size, size, 0.012, 0.1)
    slab = uniform(rng, 1.2, 2.0)
    return lambda u, v, fp: concrete(noise, color, u, v, fp, slab)
