"""Data model of a synthroom scene: rooms made of inward-facing boxes joined by openings, plus solids.

World frame: right-handed, **z up**, floor at z = 0, lengths in metres. (Camera poses are ordinary OpenCV
c2w in this world; nothing downstream depends on which world axis is up.)

A scene is a set of *cells* -- axis-aligned boxes seen from the inside (a room, the short tunnel through a
doorway) -- connected by directed *portals* (a rectangle on one face of a cell through which rays continue
into the next cell), and a list of solids seen from the outside: yaw-rotated boxes, vertical cylinders and
spheres. Box and cell faces are numbered ``2 * axis + side`` (side 0 = the low face, 1 = the high face).

Materials tile a texture in world units: one repeat covers ``tile_u_m`` x ``tile_v_m`` metres whatever
the face size, so scale is consistent across faces. Pictures on walls are thin boxes whose front face is
exactly one tile of a photo. The procedural generator is :mod:`.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


Vec3 = tuple[float, float, float]

FACE_NAMES = ("-x", "+x", "-y", "+y", "-z", "+z")


@dataclass(frozen=True)
class Material:
    texture: str
    tile_u_m: float  # world width of one repeat of the texture
    tile_v_m: float  # world height of one repeat
    offset_u_m: float = 0.0
    offset_v_m: float = 0.0


@dataclass(frozen=True)
class Cell:
    """Inward-facing axis-aligned box; ``materials`` per face (-x, +x, -y, +y, -z floor, +z ceiling)."""

    lo: Vec3
    hi: Vec3
    materials: tuple[int, ...]
    walkable: bool  # camera paths may pass through it
    light: int  # index into Scene.lights lighting every surface inside


@dataclass(frozen=True)
class Portal:
    """Rays leaving ``cell_from`` through ``face`` inside the rectangle continue in ``cell_to``.

    ``rect_lo``/``rect_hi`` bound the hit point on the face's two other axes, in increasing axis order.
    """

    cell_from: int
    face: int
    rect_lo: tuple[float, float]
    rect_hi: tuple[float, float]
    cell_to: int


@dataclass(frozen=True)
class Box:
    """Box rotated by ``yaw_rad`` about the vertical axis; ``half`` is in its local frame.

    Local axes: ex = (cos yaw, sin yaw, 0), ey = (-sin yaw, cos yaw, 0), ez = (0, 0, 1). Furniture stands
    with local +x pointing into the room, so face 1 (+x) is the front.
    """

    center: Vec3
    half: Vec3
    yaw_rad: float
    materials: tuple[int, ...]  # per face, order of FACE_NAMES in the local frame
    blocks_camera: bool = True


@dataclass(frozen=True)
class Cylinder:
    """Vertical cylinder from ``z0`` to ``z1``; materials (side, top cap, bottom cap)."""

    center_xy: tuple[float, float]
    radius: float
    z0: float
    z1: float
    materials: tuple[int, int, int]
    blocks_camera: bool = True


@dataclass(frozen=True)
class Sphere:
    center: Vec3
    radius: float
    material: int
    blocks_camera: bool = True


Solid = Box | Cylinder | Sphere


@dataclass(frozen=True)
class Light:
    """Point light without shadows; lambert term scaled by 1 / (1 + (distance / falloff_m)^2)."""

    position: Vec3
    intensity: float
    falloff_m: float


@dataclass
class Scene:
    cells: list[Cell]
    portals: list[Portal]
    solids: list[Solid]
    materials: list[Material]
    lights: list[Light]
    name: str = ""

    @cached_property
    def compiled(self):
        """Flat tables for the ray caster (built once per scene)."""
        from gac_bench.datasets.synthroom.compiled import compile_scene

        return compile_scene(self)

    def cell_containing(self, point: np.ndarray) -> int | None:
        p = np.asarray(point, dtype=np.float64)
        for i, c in enumerate(self.cells):
            if np.all(p > np.asarray(c.lo)) and np.all(p < np.asarray(c.hi)):
                return i
        return None
