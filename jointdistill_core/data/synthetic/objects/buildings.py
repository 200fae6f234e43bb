"""Buildings (label construction): terraced urban blocks with window grids, shop fronts,
doors, balconies and awnings; glass office fronts; detached houses with gabled roofs;
industrial sheds with corrugated cladding and roller doors.

A building is placed with its footprint centred on the placement, its length along local y
and its depth along local x; every wall carries the facade.
"""
from __future__ import annotations

import numpy as np

from jointdistill_core.classes import CONSTRUCTION
from jointdistill_core.data.synthetic.materials import brick, concrete, face_uv, pavers, plaster
from jointdistill_core.data.synthetic.objects import Kit, Placement, uniform
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


def facade(kit: Kit, half, style: str, floors: bool = True, shop: bool = False,
           door_u: float | None = None) -> Material:
    """Walls with windows on every vertical face of a box of half extents `half` (metres).

    style: 'plaster', 'brick', 'concrete', 'cladding' (corrugated, few windows) or 'glass'
    (curtain wall). shop: a glazed ground floor with a sign band. door_u: metres along the
    longest face where a door is.
    """
    rng, noise = kit.rng, kit.noise
    wall = _wall_texture(kit, 'concrete' if style == 'glass' else style)
    glass = kit.palette.pick(GLASS, 0.04)
    frame = kit.palette.pick([[0.9, 0.9, 0.88], [0.15, 0.15, 0.15], [0.45, 0.35, 0.25],
                              [0.5, 0.5, 0.52]], 0.03)
    roof = kit.palette.color((0.3, 0.29, 0.28), 0.05)
    floor_h = uniform(rng, 2.8, 3.6)
    ground_h = floor_h * uniform(rng, 1.0, 1.35)
    if style == 'glass':
        spacing, win_w, win_h, sill = uniform(rng, 1.2, 1.8), 0.0, 0.0, 0.0
        win_w = spacing - 0.1
        win_h, sill = floor_h - 0.35, 0.15
    elif style == 'cladding':
        spacing, win_w, win_h, sill = uniform(rng, 4.0, 8.0), uniform(rng, 1.5, 3.0), 0.8, 2.2
    else:
        spacing = uniform(rng, 1.8, 3.4)
        win_w = min(spacing - 0.5, uniform(rng, 0.7, 1.5))
        win_h, sill = uniform(rng, 1.1, 1.7), uniform(rng, 0.7, 1.0)
    offset = uniform(rng, 0, spacing)
    sign_color = kit.palette.pick(SHOP_SIGNS, 0.05)
    lit_fraction = uniform(rng, 0.2, 0.6) if kit.lights_on else 0.0
    lit_color = np.array([2.2, 1.7, 1.0], np.float32)
    height = 2 * half[2]

    def layout(hit: Hit):
        u, v = face_uv(hit, half)
        side = hit.face // 2 != 2
        column = np.floor((u + offset) / spacing)
        fs = (u + offset) - column * spacing - spacing / 2
        above = v - ground_h
        level = np.floor(above / floor_h)
        fz = above - level * floor_h
        upper = side & (above > 0) & (v < height - 0.6)
        window = upper & (np.abs(fs) < win_w / 2) & (fz > sill) & (fz < sill + win_h)
        framed = upper & (np.abs(fs) < win_w / 2 + 0.07) & (fz > sill - 0.08) & (
            fz < sill + win_h + 0.07)
        if floors and not shop:
            lower = side & (v < ground_h) & (np.abs(fs) < win_w / 2) & (v > sill) & (
                v < sill + win_h)
            window |= lower
            framed |= side & (v < ground_h) & (np.abs(fs) < win_w / 2 + 0.07) & (
                v > sill - 0.08) & (v < sill + win_h + 0.07)
        shop_glass = side & shop & (v > 0.35) & (v < ground_h - 0.7) & (np.abs(fs) < spacing * 0.45)
        sign = side & shop & (v > ground_h - 0.6) & (v < ground_h - 0.1)
        door = np.zeros(u.shape, bool)
        if door_u is not None:
            door = side & (np.abs(u - door_u) < 0.6) & (v < 2.3)
        tone = noise.cell(column * 7.1 + 0.5, (level + 2) * 3.3 + 0.5)
        return u, v, side, window | shop_glass, framed, sign, door, tone

    def albedo(hit: Hit) -> np.ndarray:
        u, v, side, window, framed, sign, door, tone = hit.memo(layout, layout)
        out = wall(u, v, hit.footprint)
        out[framed] = frame
        pane = glass[None, :] * (0.6 + 0.9 * tone[window, None])
        out[window] = pane
        out[sign] = sign_color
        out[door] = frame * 0.4
        out[~side] = roof
        return out

    def gloss(hit: Hit) -> np.ndarray:
        _, _, _, window, *_ = hit.memo(layout, layout)
        return np.where(window, np.float32(0.45), np.float32(0.03))

    def emission(hit: Hit) -> np.ndarray:
        _, _, _, window, _, sign, _, tone = hit.memo(layout, layout)
        out = np.zeros((hit.px.size, 3), np.float32)
        lit = window & (tone < lit_fraction)
        out[lit] = lit_color * (0.6 + tone[lit, None])
        out[sign] = sign_color * 1.5
        return out
    return Material(albedo, gloss, emission if kit.lights_on else None)


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
    return Thing([part], [part])


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
