"""A scene flattened into the tables the ray caster and the shader index by *surface id*.

A surface is one planar face (of a cell, a box, a cylinder cap) or one curved surface (a cylinder side, a
sphere). Cell ``c``'s faces are surfaces ``cell_surface_base[c] + face``; solid ``i``'s are
``solids[i].surface_base + local face``. The shader gathers every per-surface column with one ``np.take``
from ``surface_rows`` (rows = quantities, columns = surfaces), which yields contiguous (N,) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench.datasets.synthroom.scene import Box, Cylinder, Scene, Sphere
from gac_bench.datasets.synthroom.textures import TEXTURE_SIZE, texture_atlas

PLANAR, CYLINDER_SIDE, SPHERE_SURFACE = 0, 1, 2

# rows of CompiledScene.surface_rows
ROW_U = slice(0, 3)  # texture u axis / tile width: u_tiles = p . U' - u0'
ROW_U0 = 3
ROW_V = slice(4, 7)
ROW_V0 = 7
ROW_NORMAL = slice(8, 11)  # unit; outward for solids, inward for cells
ROW_LIGHT = slice(11, 14)  # position of the light that shades this surface
ROW_LIGHT_INTENSITY = 14
ROW_LIGHT_INV_FALLOFF2 = 15
ROW_TEXTURE = 16  # atlas texture index (exact in float32)
ROW_LOG2_TEXELS_PER_M = 17
ROW_KIND = 18
NUM_ROWS = 19


@dataclass(frozen=True)
class SolidRecord:
    solid: Box | Cylinder | Sphere
    surface_base: int


@dataclass(frozen=True)
class CompiledScene:
    surface_rows: np.ndarray  # (NUM_ROWS, S) float32
    curved: np.ndarray  # (S, 8) float64: centre (3), radius, 1/tile_u, 1/tile_v, offset_u, offset_v (tiles)
    kind: np.ndarray  # (S,) int8
    cell_lo: np.ndarray  # (C, 3) float64
    cell_hi: np.ndarray  # (C, 3) float64
    cell_surface_base: np.ndarray  # (C,) int32
    portals_from: tuple[tuple[tuple[int, tuple, tuple, int], ...], ...]  # per cell: (face, lo, hi, cell_to)
    solids: tuple[SolidRecord, ...]
    solid_corners: np.ndarray  # (n_solids, 8, 3) corners of a box enclosing each solid, for culling


class _SurfaceTable:
    def __init__(self, scene: Scene):
        self.scene = scene
        self.atlas = texture_atlas()
        self.rows: list[np.ndarray] = []
        self.curved: list[list[float]] = []

    def _common(self, material_index: int, light_index: int, kind: int) -> tuple[np.ndarray, object]:
        m = self.scene.materials[material_index]
        li = self.scene.lights[light_index]
        row = np.zeros(NUM_ROWS)
        row[ROW_LIGHT] = li.position
        row[ROW_LIGHT_INTENSITY] = li.intensity
        row[ROW_LIGHT_INV_FALLOFF2] = 1.0 / li.falloff_m**2
        row[ROW_TEXTURE] = self.atlas.index(m.texture)
        row[ROW_LOG2_TEXELS_PER_M] = np.log2(TEXTURE_SIZE * max(1.0 / m.tile_u_m, 1.0 / m.tile_v_m))
        row[ROW_KIND] = kind
        return row, m

    def add_planar(self, material: int, light: int, normal, up_img, centre, half_u: float, half_v: float) -> None:
        """A face whose texture u axis is cross(up_img, normal) and v axis -up_img (image rows go down).

        The texture origin is the face's top-left corner seen from the front, so a picture whose tile is
        exactly the face size shows once, upright and not mirrored.
        """
        row, m = self._common(material, light, PLANAR)
        n = np.asarray(normal, dtype=np.float64)
        up = np.asarray(up_img, dtype=np.float64)
        U, V = np.cross(up, n), -up
        origin = np.asarray(centre, dtype=np.float64) - half_u * U - half_v * V
        row[ROW_U] = U / m.tile_u_m
        row[ROW_U0] = (origin @ U - m.offset_u_m) / m.tile_u_m
        row[ROW_V] = V / m.tile_v_m
        row[ROW_V0] = (origin @ V - m.offset_v_m) / m.tile_v_m
        row[ROW_NORMAL] = n
        self.rows.append(row)
        self.curved.append([0.0] * 8)

    def add_curved(self, kind: int, material: int, light: int, centre, radius: float) -> None:
        """Cylinder side (``centre`` = axis point at the top) or sphere; u/v and normal are computed per hit."""
        row, m = self._common(material, light, kind)
        self.rows.append(row)
        self.curved.append([*map(float, centre), float(radius), 1 / m.tile_u_m, 1 / m.tile_v_m,
                            m.offset_u_m / m.tile_u_m, m.offset_v_m / m.tile_v_m])  # fmt: skip


def box_axes(yaw_rad: float) -> np.ndarray:
    """Rows: the box's local ex, ey, ez in world coordinates (yaw about the vertical z axis)."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _add_box_faces(table: _SurfaceTable, centre, half, axes, materials, light: int, inward: bool) -> None:
    """Six faces of a box (of a cell if ``inward``), numbered 2 * axis + side."""
    centre = np.asarray(centre, dtype=np.float64)
    half = np.asarray(half, dtype=np.float64)
    for face in range(6):
        k, side = divmod(face, 2)
        sign = 1.0 if side else -1.0
        normal = -sign * axes[k] if inward else sign * axes[k]
        up_img = axes[2] if k < 2 else axes[1]  # walls: image up is world up; floors/tops: local +y
        U = np.cross(up_img, normal)
        half_u = float(sum(abs(U @ axes[j]) * half[j] for j in range(3)))
        half_v = float(half[2] if k < 2 else half[1])
        table.add_planar(materials[face], light, normal, up_img, centre + sign * half[k] * axes[k], half_u, half_v)


def _light_of(scene: Scene, point) -> int:
    cell = scene.cell_containing(point)
    return scene.cells[cell].light if cell is not None else 0


def corners(lo, hi) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box; corner i has bits (x, y, z) = (i & 1, i >> 1 & 1, i >> 2 & 1)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    bits = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=np.float64)
    return lo + bits * (hi - lo)


def _add_solid(table: _SurfaceTable, scene: Scene, solid) -> np.ndarray:
    """Append a solid's surfaces; returns the (8, 3) corners of a box enclosing it."""
    if isinstance(solid, Box):
        axes = box_axes(solid.yaw_rad)
        light = _light_of(scene, solid.center)
        _add_box_faces(table, solid.center, solid.half, axes, solid.materials, light, inward=False)
        return np.asarray(solid.center, dtype=np.float64) + corners(-np.asarray(solid.half), solid.half) @ axes
    if isinstance(solid, Cylinder):
        (x, y), r = solid.center_xy, solid.radius
        light = _light_of(scene, (x, y, (solid.z0 + solid.z1) / 2))
        side, top, bottom = solid.materials
        table.add_curved(CYLINDER_SIDE, side, light, (x, y, solid.z1), r)
        table.add_planar(top, light, (0, 0, 1), (0, 1, 0), (x, y, solid.z1), r, r)
        table.add_planar(bottom, light, (0, 0, -1), (0, 1, 0), (x, y, solid.z0), r, r)
        return corners((x - r, y - r, solid.z0), (x + r, y + r, solid.z1))
    c, r = np.asarray(solid.center, dtype=np.float64), solid.radius
    table.add_curved(SPHERE_SURFACE, solid.material, _light_of(scene, c), c, r)
    return corners(c - r, c + r)


def compile_scene(scene: Scene) -> CompiledScene:
    table = _SurfaceTable(scene)
    bases = []
    for cell in scene.cells:
        bases.append(len(table.rows))
        lo, hi = np.asarray(cell.lo), np.asarray(cell.hi)
        _add_box_faces(table, (lo + hi) / 2, (hi - lo) / 2, np.eye(3), cell.materials, cell.light, inward=True)
    records, solid_corners = [], []
    for solid in scene.solids:
        base = len(table.rows)
        solid_corners.append(_add_solid(table, scene, solid))
        records.append(SolidRecord(solid, base))
    rows = np.stack(table.rows, axis=1)
    portals_from = tuple(
        tuple((p.face, p.rect_lo, p.rect_hi, p.cell_to) for p in scene.portals if p.cell_from == c)
        for c in range(len(scene.cells))
    )
    return CompiledScene(
        surface_rows=np.ascontiguousarray(rows, dtype=np.float32),
        curved=np.array(table.curved, dtype=np.float64),
        kind=rows[ROW_KIND].astype(np.int8),
        cell_lo=np.array([c.lo for c in scene.cells], dtype=np.float64),
        cell_hi=np.array([c.hi for c in scene.cells], dtype=np.float64),
        cell_surface_base=np.array(bases, dtype=np.int32),
        portals_from=portals_from,
        solids=tuple(records),
        solid_corners=np.array(solid_corners, dtype=np.float64).reshape(-1, 8, 3),
    )
