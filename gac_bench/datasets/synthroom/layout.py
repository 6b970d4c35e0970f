"""Procedural generator of synthroom scenes: a furnished room, an optional L extension and side room.

Every random choice comes from one ``numpy.random.Generator`` in a fixed order, so a seed always gives the
same scene. Furniture stands against walls (axis-aligned boxes) or free in a band along them (tables,
yaw-rotated armchairs, columns, floor lamps), keeping the middle of the room open for the camera; pictures
hang on the walls; a rug and a ceiling pendant complete the main room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gac_bench.datasets.synthroom.scene import Box, Cell, Cylinder, Light, Material, Portal, Scene, Solid, Sphere
from gac_bench.datasets.synthroom.textures import texture_atlas

PENDANT_CLEARANCE_Z = 2.05  # metres; ceiling lamps hang no lower


# ---------------------------------------------------------------------------------------------- palettes

# (texture, tile width in metres); tile height follows from the texture's aspect ratio
WALL_MATERIALS = (
    ("stripes_green", 1.4), ("stripes_rose", 1.4), ("stripes_blue", 1.4), ("brick", 1.6),
    ("text_wallpaper", 1.5), ("page_wallpaper", 1.8), ("marble", 2.0), ("gravel_stone", 1.6),
    ("coins_panel", 1.3), ("tiles_blue", 1.3), ("moon_plaster", 1.6), ("plaster_cool", 1.2),
)  # fmt: skip
FLOOR_MATERIALS = (
    ("wood_oak", 1.6), ("wood_walnut", 1.6), ("wood_pale", 1.8), ("tiles_cream", 1.6),
    ("gravel_stone", 1.5), ("checker_bw", 2.0), ("marble", 2.0), ("grass_carpet", 1.2), ("brick", 1.5),
)  # fmt: skip
CEILING_MATERIALS = (("plaster_warm", 1.4), ("moon_plaster", 2.0), ("tiles_cream", 2.4), ("plaster_cool", 1.5))
FURNITURE_MATERIALS = (
    ("wood_oak", 1.0), ("wood_walnut", 1.0), ("wood_pale", 1.0), ("fabric_teal", 0.8),
    ("fabric_mustard", 0.8), ("fabric_grey", 0.8), ("checker_red", 0.6), ("marble", 0.8),
    ("immunohistochemistry", 0.8), ("coins_panel", 0.6),
)  # fmt: skip
PICTURES = ("astronaut", "coffee", "chelsea", "rocket", "colorwheel", "hubble", "retina", "motorcycle",
            "logo", "camera", "coins", "immunohistochemistry")  # fmt: skip
RUG_MATERIALS = (("checker_red", 1.2), ("fabric_teal", 0.9), ("tiles_blue", 1.0), ("immunohistochemistry", 1.4))


# ---------------------------------------------------------------------------------------------- builder


@dataclass
class _Builder:
    """Accumulates materials, cells and solids; keeps 2-D footprints so solids don't overlap."""

    rng: np.random.Generator
    materials: list[Material] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    portals: list[Portal] = field(default_factory=list)
    solids: list[Solid] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    occupied: list[tuple[float, float, float, float]] = field(default_factory=list)  # xmin, ymin, xmax, ymax
    _material_index: dict[Material, int] = field(default_factory=dict)

    def material(self, texture: str, tile_u_m: float, tile_v_m: float | None = None, random_offset=True) -> int:
        if tile_v_m is None:
            tile_v_m = tile_u_m * float(texture_atlas().aspects[texture_atlas().index(texture)])
        off = self.rng.uniform(0, 1, 2) * (tile_u_m, tile_v_m) if random_offset else (0.0, 0.0)
        m = Material(texture, round(tile_u_m, 4), round(tile_v_m, 4), round(off[0], 4), round(off[1], 4))
        if m not in self._material_index:
            self._material_index[m] = len(self.materials)
            self.materials.append(m)
        return self._material_index[m]

    def pick(self, palette) -> int:
        texture, tile = palette[int(self.rng.integers(len(palette)))]
        return self.material(texture, tile)

    def free(self, rect, margin=0.08) -> bool:
        """True when the 2-D rectangle keeps ``margin`` from every reserved footprint."""
        return all(_disjoint(rect, other, margin) for other in self.occupied)

    def add(self, solid: Solid, reserve=True) -> None:
        self.solids.append(solid)
        if reserve:
            self.occupied.append(footprint_aabb(solid))


def _disjoint(a, b, margin: float) -> bool:
    """Axis-aligned intervals or rectangles (lo..., hi...) at least ``margin`` apart on some axis."""
    n = len(a) // 2
    return any(a[n + k] + margin <= b[k] or b[n + k] + margin <= a[k] for k in range(n))


def footprint_aabb(solid: Solid) -> tuple[float, float, float, float]:
    """Axis-aligned 2-D bounds (xmin, ymin, xmax, ymax) of a solid's floor footprint."""
    if isinstance(solid, Box):
        c, s = abs(np.cos(solid.yaw_rad)), abs(np.sin(solid.yaw_rad))
        ex = c * solid.half[0] + s * solid.half[1]
        ey = s * solid.half[0] + c * solid.half[1]
        return (solid.center[0] - ex, solid.center[1] - ey, solid.center[0] + ex, solid.center[1] + ey)
    if isinstance(solid, Cylinder):
        (x, y), r = solid.center_xy, solid.radius
        return (x - r, y - r, x + r, y + r)
    x, y, _ = solid.center
    return (x - solid.radius, y - solid.radius, x + solid.radius, y + solid.radius)


# ---------------------------------------------------------------------------------------------- walls


@dataclass(frozen=True)
class _Wall:
    """A vertical face of a cell seen from inside, with its free spans (no opening) along the wall."""

    cell: int
    face: int  # 0..3
    plane: float  # coordinate of the wall plane on its normal axis
    inward: tuple[float, float]  # unit 2-D inward normal
    spans: tuple[tuple[float, float], ...]  # free intervals of the along-wall coordinate

    @property
    def along_axis(self) -> int:
        return 1 if self.face < 2 else 0

    def point(self, along: float, inset: float) -> tuple[float, float]:
        """2-D point ``inset`` metres in front of the wall at coordinate ``along``."""
        p = [0.0, 0.0]
        p[self.face // 2] = self.plane + inset * self.inward[self.face // 2]
        p[self.along_axis] = along
        return (p[0], p[1])

    @property
    def front_face(self) -> int:
        """Face index of an axis-aligned box against this wall whose outward normal points into the room."""
        return self.face ^ 1

    def box(self, along: float, inset: float, z_mid: float, half_depth, half_width, half_height, body: int,
            front: int | None = None, blocks_camera: bool = True) -> Box:
        """Axis-aligned box (yaw 0, so the ray caster's cheapest test) centred ``inset`` m from the wall."""
        half = [0.0, 0.0, float(half_height)]
        half[self.face // 2] = float(half_depth)
        half[self.along_axis] = float(half_width)
        materials = [body] * 6
        if front is not None:
            materials[self.front_face] = front
        x, y = self.point(along, inset)
        return Box((float(x), float(y), float(z_mid)), tuple(half), 0.0, tuple(materials), blocks_camera)


def _walls(b: _Builder, cell_index: int) -> list[_Wall]:
    cell = b.cells[cell_index]
    out = []
    for face in range(4):
        axis, side = divmod(face, 2)
        along = 1 - axis
        plane = cell.hi[axis] if side else cell.lo[axis]
        inward = [0.0, 0.0]
        inward[axis] = -1.0 if side else 1.0
        spans = [(cell.lo[along] + 0.05, cell.hi[along] - 0.05)]
        for p in b.portals:
            # openings leaving this cell through the face, or arriving through it (the same plane seen
            # from the other side: face ^ 1); rect axes are (along, z) for vertical faces
            if (p.cell_from == cell_index and p.face == face) or (p.cell_to == cell_index and p.face ^ 1 == face):
                cut0, cut1 = p.rect_lo[0] - 0.15, p.rect_hi[0] + 0.15
                spans = [s for a, z in spans for s in ((a, min(z, cut0)), (max(a, cut1), z)) if s[1] - s[0] > 0.3]
        out.append(_Wall(cell_index, face, plane, (inward[0], inward[1]), tuple(spans)))
    return out


def _slot(b: _Builder, wall: _Wall, width: float) -> float | None:
    """Random along-wall centre where an object ``width`` wide fits in a free span, or None."""
    spans = [s for s in wall.spans if s[1] - s[0] >= width]
    if not spans:
        return None
    lo, hi = spans[int(b.rng.integers(len(spans)))]
    return float(b.rng.uniform(lo + width / 2, hi - width / 2))


# ---------------------------------------------------------------------------------------------- rooms


def _room_materials(b: _Builder, floor=None, accent=True) -> tuple[int, ...]:
    wall = b.pick(WALL_MATERIALS)
    walls = [wall] * 4
    if accent and b.rng.uniform() < 0.6:
        walls[int(b.rng.integers(4))] = b.pick(WALL_MATERIALS)
    return (*walls, floor if floor is not None else b.pick(FLOOR_MATERIALS), b.pick(CEILING_MATERIALS))


def _add_cell(b: _Builder, lo, hi, materials, walkable: bool, light: int | None = None) -> int:
    """Add a cell lit by ``light``, or by a new light under the middle of its ceiling."""
    lo = tuple(round(float(v), 3) for v in lo)
    hi = tuple(round(float(v), 3) for v in hi)
    if light is None:
        centre = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2] - 0.25)
        b.lights.append(Light(centre, float(b.rng.uniform(0.75, 0.95)), float(b.rng.uniform(3.5, 5.0))))
        light = len(b.lights) - 1
    b.cells.append(Cell(lo, hi, tuple(materials), walkable, light))
    return len(b.cells) - 1


def _link(b: _Builder, cell_a: int, face_a: int, cell_b: int, rect_lo, rect_hi, both_ways: bool) -> None:
    """Portal from ``cell_a``'s face into ``cell_b`` (and back through the opposite face of ``cell_b``)."""
    b.portals.append(Portal(cell_a, face_a, tuple(rect_lo), tuple(rect_hi), cell_b))
    if both_ways:
        b.portals.append(Portal(cell_b, face_a ^ 1, tuple(rect_lo), tuple(rect_hi), cell_a))


def _add_extension(b: _Builder, main: int, face: int, materials) -> int:
    """A second walkable box sharing part of ``face`` of the main room (an L-shaped floor plan)."""
    m = b.cells[main]
    axis, side = divmod(face, 2)
    along = 1 - axis
    length = m.hi[along] - m.lo[along]
    width = float(b.rng.uniform(2.2, min(3.6, length - 1.2)))
    start = m.lo[along] if b.rng.uniform() < 0.5 else m.hi[along] - width
    depth = float(b.rng.uniform(2.0, 3.4))
    lo, hi = list(m.lo), list(m.hi)
    lo[along], hi[along] = start, start + width
    if side:
        lo[axis], hi[axis] = m.hi[axis], m.hi[axis] + depth
    else:
        lo[axis], hi[axis] = m.lo[axis] - depth, m.lo[axis]
    ext = _add_cell(b, lo, hi, materials, walkable=True)
    _link(b, main, face, ext, (start, 0.0), (start + width, m.hi[2]), both_ways=True)
    return ext


def _add_side_room(b: _Builder, main: int, face: int) -> tuple[int, int]:
    """A doorway (a short tunnel through the wall) on ``face`` leading to a closed side room."""
    m = b.cells[main]
    axis, side = divmod(face, 2)
    along = 1 - axis
    door_w = float(b.rng.uniform(0.9, 1.4))
    door_h = float(min(b.rng.uniform(2.0, 2.25), m.hi[2] - 0.3))
    a0 = float(b.rng.uniform(m.lo[along] + 0.5, m.hi[along] - 0.5 - door_w))
    thickness = 0.15
    sign = 1.0 if side else -1.0
    wall = m.hi[axis] if side else m.lo[axis]
    frame = b.pick(FURNITURE_MATERIALS[:3])
    lo, hi = [0.0, 0.0, 0.0], [0.0, 0.0, door_h]
    lo[along], hi[along] = a0, a0 + door_w
    lo[axis], hi[axis] = sorted((wall, wall + sign * thickness))
    floor = b.pick(FLOOR_MATERIALS)
    tunnel_mats = [frame] * 4 + [floor, frame]
    tunnel = _add_cell(b, lo, hi, tunnel_mats, walkable=False, light=m.light)  # lit by the room it opens from
    _link(b, main, face, tunnel, (a0, 0.0), (a0 + door_w, door_h), both_ways=False)
    room_w = float(b.rng.uniform(3.0, 4.5))
    r0 = float(np.clip(a0 + door_w / 2 - b.rng.uniform(0.3, 0.7) * room_w, a0 + door_w - room_w + 0.3, a0 - 0.3))
    depth = float(b.rng.uniform(2.6, 4.0))
    lo2, hi2 = [0.0, 0.0, 0.0], [0.0, 0.0, float(b.rng.uniform(2.5, 3.0))]
    lo2[along], hi2[along] = r0, r0 + room_w
    far = wall + sign * thickness
    lo2[axis], hi2[axis] = sorted((far, far + sign * depth))
    room = _add_cell(b, lo2, hi2, _room_materials(b, floor=floor, accent=False), walkable=False)
    _link(b, tunnel, face, room, (a0, 0.0), (a0 + door_w, door_h), both_ways=False)
    # keep the doorway clear on both sides so furniture does not block the view through it
    for c, w, d in ((main, wall, -sign), (room, far, sign)):
        zone = [0.0, 0.0, 0.0, 0.0]
        zone[along], zone[along + 2] = a0 - 0.2, a0 + door_w + 0.2
        zone[axis], zone[axis + 2] = sorted((w, w + d * 1.0))
        b.occupied.append(tuple(zone))
    return tunnel, room


# ---------------------------------------------------------------------------------------------- furniture


def _wall_box(b: _Builder, wall: _Wall, width, depth, height, body: int, front: int | None = None, z0=0.0,
              reserve=True) -> Box | None:
    """A box standing against a free span of ``wall`` (front face toward the room), or None if none fits."""
    along = _slot(b, wall, width)
    if along is None:
        return None
    box = wall.box(along, depth / 2 + 0.005, z0 + height / 2, depth / 2, width / 2, height / 2, body, front, reserve)
    if reserve and not b.free(footprint_aabb(box)):
        return None
    return box


def _cabinet(b: _Builder, wall: _Wall) -> bool:
    body = b.pick(FURNITURE_MATERIALS)
    w, d, h = b.rng.uniform(0.8, 1.8), b.rng.uniform(0.4, 0.6), b.rng.uniform(0.7, 1.1)
    box = _wall_box(b, wall, w, d, h, body)
    if box is None:
        return False
    b.add(box)
    if b.rng.uniform() < 0.7:  # something on top: a vase (cylinder) or a ball (sphere)
        cx, cy = box.center[0], box.center[1]
        if b.rng.uniform() < 0.5:
            r = float(b.rng.uniform(0.07, 0.14))
            mats = (b.pick(FURNITURE_MATERIALS),) * 3
            b.add(Cylinder((cx, cy), r, h, h + float(b.rng.uniform(0.2, 0.45)), mats), reserve=False)
        else:
            r = float(b.rng.uniform(0.1, 0.2))
            b.add(Sphere((cx, cy, h + r), r, b.pick(FURNITURE_MATERIALS)), reserve=False)
    return True


def _bookcase(b: _Builder, wall: _Wall) -> bool:
    frame = b.pick(FURNITURE_MATERIALS[:3])
    w, h = b.rng.uniform(0.8, 1.6), b.rng.uniform(1.6, 2.2)
    box = _wall_box(b, wall, w, 0.35, h, frame, front=b.material("books", 1.0))
    if box is None:
        return False
    b.add(box)
    return True


def _sofa(b: _Builder, wall: _Wall) -> bool:
    fabric = b.pick(FURNITURE_MATERIALS[3:7])
    w, d = b.rng.uniform(1.6, 2.3), b.rng.uniform(0.8, 0.95)
    base = _wall_box(b, wall, w, d, 0.45, fabric)
    if base is None:
        return False
    b.add(base)
    along = base.center[wall.along_axis]
    b.add(wall.box(along, 0.12, 0.45, 0.11, w / 2, 0.4, fabric), reserve=False)  # backrest
    for side in (-1, 1):  # armrests
        b.add(wall.box(along + side * (w / 2 - 0.1), d / 2, 0.3, d / 2, 0.1, 0.3, fabric), reserve=False)
    return True


def _plant(b: _Builder, x: float, y: float) -> None:
    pot_r = float(b.rng.uniform(0.15, 0.25))
    pot_h = float(b.rng.uniform(0.3, 0.55))
    pot = b.pick(FURNITURE_MATERIALS[7:])
    b.add(Cylinder((x, y), pot_r, 0.0, pot_h, (pot, pot, pot)))
    leaf_r = pot_r * float(b.rng.uniform(1.3, 1.8))
    b.add(Sphere((x, y, pot_h + leaf_r * 0.9), leaf_r, b.material("grass_carpet", 0.6)), reserve=False)


def _corner_plant(b: _Builder, cell: int) -> bool:
    c = b.cells[cell]
    x = c.lo[0] + 0.45 if b.rng.uniform() < 0.5 else c.hi[0] - 0.45
    y = c.lo[1] + 0.45 if b.rng.uniform() < 0.5 else c.hi[1] - 0.45
    if not b.free((x - 0.45, y - 0.45, x + 0.45, y + 0.45)):
        return False
    _plant(b, x, y)
    return True


def _table(b: _Builder, x: float, y: float) -> bool:
    w, d = float(b.rng.uniform(0.8, 1.5)), float(b.rng.uniform(0.6, 0.9))
    yaw = float(b.rng.choice([0.0, np.pi / 2, b.rng.uniform(-0.6, 0.6)]))
    top = b.pick(FURNITURE_MATERIALS[:3] + FURNITURE_MATERIALS[7:8])
    height = float(b.rng.uniform(0.72, 0.78))
    slab = Box((x, y, height - 0.02), (w / 2, d / 2, 0.02), yaw, (top,) * 6)
    if not b.free(footprint_aabb(slab), margin=0.2):
        return False
    b.add(slab)
    leg = b.pick(FURNITURE_MATERIALS[:3])
    cy, sy = np.cos(yaw), np.sin(yaw)
    for lx, ly in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        ox, oy = lx * (w / 2 - 0.07), ly * (d / 2 - 0.07)
        leg_xy = (x + cy * ox - sy * oy, y + sy * ox + cy * oy)
        b.add(Cylinder(leg_xy, 0.03, 0.0, height - 0.04, (leg,) * 3), reserve=False)
    if b.rng.uniform() < 0.8:
        b.add(Sphere((x, y, height + 0.12), 0.12, b.pick(FURNITURE_MATERIALS)), reserve=False)
    return True


def _armchair(b: _Builder, x: float, y: float) -> bool:
    yaw = float(b.rng.uniform(-np.pi, np.pi))
    fabric = b.pick(FURNITURE_MATERIALS[3:7])
    seat = Box((x, y, 0.22), (0.4, 0.4, 0.22), yaw, (fabric,) * 6)
    if not b.free(footprint_aabb(seat), margin=0.2):
        return False
    b.add(seat)
    back = (x - 0.3 * np.cos(yaw), y - 0.3 * np.sin(yaw), 0.6)
    b.add(Box(back, (0.1, 0.4, 0.38), yaw, (fabric,) * 6), reserve=False)
    return True


def _column(b: _Builder, x: float, y: float, ceiling: float) -> bool:
    r = float(b.rng.uniform(0.12, 0.25))
    if not b.free((x - r, y - r, x + r, y + r), margin=0.3):
        return False
    mat = b.pick((("marble", 0.8), ("brick", 1.0), ("wood_pale", 1.0)))
    b.add(Cylinder((x, y), r, 0.0, ceiling, (mat, mat, mat)))
    return True


def _floor_lamp(b: _Builder, x: float, y: float) -> bool:
    if not b.free((x - 0.25, y - 0.25, x + 0.25, y + 0.25), margin=0.2):
        return False
    pole = b.pick(FURNITURE_MATERIALS[:3])
    b.add(Cylinder((x, y), 0.18, 0.0, 0.04, (pole,) * 3))
    b.add(Cylinder((x, y), 0.025, 0.04, 1.45, (pole,) * 3), reserve=False)
    b.add(Cylinder((x, y), 0.2, 1.45, 1.75, (b.pick(FURNITURE_MATERIALS[3:7]),) * 3), reserve=False)
    return True


def _pictures(b: _Builder, walls: list[_Wall], count: int, ceiling: float) -> None:
    """Thin boxes on walls whose front face is exactly one copy of a photo (no stretching)."""
    names = list(PICTURES)
    b.rng.shuffle(names)
    atlas = texture_atlas()
    for name in names[:count]:
        aspect = float(atlas.aspects[atlas.index(name)])
        width = float(b.rng.uniform(0.6, 1.3))
        height = width * aspect
        if height > 1.2:
            width, height = 1.2 / aspect, 1.2
        z_mid = float(np.clip(b.rng.uniform(1.35, 1.8), height / 2 + 0.9, ceiling - height / 2 - 0.15))
        frame = b.pick(FURNITURE_MATERIALS[:3])
        photo = b.material(name, width, height, random_offset=False)
        for _ in range(6):
            wall = walls[int(b.rng.integers(len(walls)))]
            box = _wall_box(b, wall, width, 0.03, height, frame, front=photo, z0=z_mid - height / 2, reserve=False)
            if box is not None and _picture_fits(b, box, wall):
                b.add(box, reserve=False)
                break


def _vertical_range(solid: Solid) -> tuple[float, float]:
    if isinstance(solid, Box):
        return solid.center[2] - solid.half[2], solid.center[2] + solid.half[2]
    if isinstance(solid, Cylinder):
        return solid.z0, solid.z1
    return solid.center[2] - solid.radius, solid.center[2] + solid.radius


def _picture_fits(b: _Builder, pic: Box, wall: _Wall) -> bool:
    """True when no solid (furniture, other pictures) overlaps the picture in plan and in height."""
    x0, y0, x1, y1 = footprint_aabb(pic)
    z0, z1 = _vertical_range(pic)
    for s in b.solids:
        a0, c0, a1, c1 = footprint_aabb(s)
        h0, h1 = _vertical_range(s)
        if not (_disjoint((x0, y0, x1, y1), (a0, c0, a1, c1), 0.1) or _disjoint((z0, z1), (h0, h1), 0.05)):
            return False
    return True


def _pendant(b: _Builder, cell: int) -> None:
    """A lamp hanging from the middle of the ceiling, above head height (so it never blocks the camera)."""
    c = b.cells[cell]
    x, y, top = (c.lo[0] + c.hi[0]) / 2, (c.lo[1] + c.hi[1]) / 2, c.hi[2]
    sphere = b.rng.uniform() < 0.5
    shade_r = float(b.rng.uniform(0.15, 0.2) if sphere else b.rng.uniform(0.18, 0.3))
    drop = 2 * shade_r if sphere else 0.22
    # lowest point >= PENDANT_CLEARANCE_Z: 0.35 m above the highest eye (1.65 m + bob), so never an obstacle
    cord_end = max(top - float(b.rng.uniform(0.3, 0.6)), PENDANT_CLEARANCE_Z + drop)
    cord = b.pick(FURNITURE_MATERIALS[:3])
    b.add(Cylinder((x, y), 0.01, cord_end, top, (cord,) * 3, blocks_camera=False), reserve=False)
    if sphere:
        globe = b.pick(FURNITURE_MATERIALS[3:])
        b.add(Sphere((x, y, cord_end - shade_r), shade_r, globe, blocks_camera=False), reserve=False)
    else:
        mats = (b.pick(FURNITURE_MATERIALS[3:7]),) * 3
        b.add(Cylinder((x, y), shade_r, cord_end - drop, cord_end, mats, blocks_camera=False), reserve=False)


def _rug(b: _Builder, cell: int) -> None:
    c = b.cells[cell]
    cx, cy = (c.lo[0] + c.hi[0]) / 2, (c.lo[1] + c.hi[1]) / 2
    hx = float(b.rng.uniform(0.6, 1.2))
    hy = float(b.rng.uniform(0.5, 1.0))
    texture, tile = RUG_MATERIALS[int(b.rng.integers(len(RUG_MATERIALS)))]
    mats = (b.material(texture, tile),) * 6
    offset = b.rng.uniform(-0.5, 0.5, 2)
    yaw = float(b.rng.uniform(-0.3, 0.3))
    rug = Box((cx + offset[0], cy + offset[1], 0.006), (hx, hy, 0.006), yaw, mats, blocks_camera=False)
    b.add(rug, reserve=False)


def _furnish(b: _Builder, cell: int, main: bool) -> None:
    """Wall furniture, then a few free-standing solids, then pictures."""
    walls = _walls(b, cell)
    c = b.cells[cell]
    makers = [_cabinet, _bookcase, _sofa, _cabinet]
    n_wall = int(b.rng.integers(3, 5)) if main else int(b.rng.integers(2, 4))
    for _ in range(n_wall):
        maker = makers[int(b.rng.integers(len(makers)))]
        for _try in range(4):
            if maker(b, walls[int(b.rng.integers(len(walls)))]):
                break
    for _try in range(3):
        if _corner_plant(b, cell):
            break
    free_standing = [_table, _armchair, _column, _floor_lamp]
    n_free = int(b.rng.integers(1, 3)) if main else 1
    for _ in range(n_free):
        kind = free_standing[int(b.rng.integers(len(free_standing)))]
        for _try in range(6):
            # in a band along the walls, leaving the middle of the room open for the camera
            x = float(b.rng.uniform(c.lo[0] + 0.7, c.hi[0] - 0.7))
            y = float(b.rng.uniform(c.lo[1] + 0.7, c.hi[1] - 0.7))
            if main and min(x - c.lo[0], c.hi[0] - x, y - c.lo[1], c.hi[1] - y) > 1.5:
                continue
            ok = kind(b, x, y, c.hi[2]) if kind is _column else kind(b, x, y)
            if ok:
                break
    if main:
        _rug(b, cell)
        _pendant(b, cell)
    _pictures(b, walls, int(b.rng.integers(4, 8)) if main else 3, c.hi[2])


# ---------------------------------------------------------------------------------------------- scene


def make_scene(rng_or_seed: int | np.random.Generator, name: str = "") -> Scene:
    """A furnished main room, often with an L-shaped extension and/or a doorway into a side room.

    The camera may move anywhere in the walkable cells (the main room and its extension); the side room
    is only seen through the doorway.
    """
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    b = _Builder(rng)
    size = (rng.uniform(5.0, 7.5), rng.uniform(4.2, 6.0), rng.uniform(2.6, 3.1))
    main = _add_cell(b, (0.0, 0.0, 0.0), size, _room_materials(b), walkable=True)
    faces = [int(f) for f in rng.permutation(4)]
    extension = None
    if rng.uniform() < 0.5:
        extension = _add_extension(b, main, faces.pop(), b.cells[main].materials)
    if rng.uniform() < 0.75:
        _add_side_room(b, main, faces.pop())
        _furnish(b, len(b.cells) - 1, main=False)
    _furnish(b, main, main=True)
    if extension is not None:
        _furnish(b, extension, main=False)
    return Scene(b.cells, b.portals, b.solids, b.materials, b.lights, name=name)
