"""Where a camera may stand: exact 2-D clearance to the walls and furniture of a scene.

The walkable area is the union of the walkable cells (the main room and its L extension). Its boundary is
every vertical cell face except the parts that open into another walkable cell; a doorway into a side room
counts as wall. Every solid that ``blocks_camera`` is an obstacle over its whole floor footprint (as if
it reached the ceiling), so the 2-D clearance never exceeds the true 3-D distance to any geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench.datasets.synthroom.scene import Box, Cylinder, Scene


@dataclass(frozen=True)
class FloorPlan:
    seg_a: np.ndarray  # (n, 2) wall segment starts
    seg_b: np.ndarray  # (n, 2) wall segment ends
    boxes: np.ndarray  # (m, 5): centre x, y, half x, half y, yaw
    circles: np.ndarray  # (k, 3): centre x, y, radius
    cells_lo: np.ndarray  # (c, 2) walkable cells
    cells_hi: np.ndarray  # (c, 2)

    def inside(self, xy: np.ndarray) -> np.ndarray:
        """(P,) True where points (P, 2) lie strictly inside a walkable cell."""
        xy = np.asarray(xy, dtype=np.float64)[:, None, :]
        return np.any(np.all((xy > self.cells_lo) & (xy < self.cells_hi), axis=-1), axis=-1)

    def clearance(self, xy: np.ndarray) -> np.ndarray:
        """(P,) distance in metres from points (P, 2) to the nearest wall or obstacle; negative outside."""
        xy = np.asarray(xy, dtype=np.float64)
        dist = _segment_distance(xy, self.seg_a, self.seg_b)
        if len(self.boxes):
            dist = np.minimum(dist, _box_distance(xy, self.boxes))
        if len(self.circles):
            d = np.linalg.norm(xy[:, None, :] - self.circles[None, :, :2], axis=-1) - self.circles[None, :, 2]
            dist = np.minimum(dist, d.min(axis=1))
        return np.where(self.inside(xy), dist, -1.0)


def _segment_distance(xy: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    ap = xy[:, None, :] - a[None]
    s = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    closest = a[None] + s[..., None] * ab[None]
    return np.linalg.norm(xy[:, None, :] - closest, axis=-1).min(axis=1)


def _box_distance(xy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Signed distance to yaw-rotated rectangles (negative inside), minimum over boxes."""
    c, s = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    px = xy[:, None, 0] - boxes[None, :, 0]
    py = xy[:, None, 1] - boxes[None, :, 1]
    qx = np.abs(c * px + s * py) - boxes[:, 2]
    qy = np.abs(-s * px + c * py) - boxes[:, 3]
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return (outside + np.minimum(np.maximum(qx, qy), 0.0)).min(axis=1)


def _open_intervals(scene: Scene, cell: int, face: int) -> list[tuple[float, float]]:
    """Along-wall intervals of ``face`` that open into another walkable cell."""
    out = []
    for p in scene.portals:
        if p.cell_from == cell and p.face == face and scene.cells[p.cell_to].walkable:
            out.append((p.rect_lo[0], p.rect_hi[0]))
    return out


def _subtract(span: tuple[float, float], holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    pieces = [span]
    for h0, h1 in holes:
        pieces = [q for a, b in pieces for q in ((a, min(b, h0)), (max(a, h1), b)) if q[1] - q[0] > 1e-9]
    return pieces


def floor_plan(scene: Scene) -> FloorPlan:
    seg_a, seg_b, lo, hi = [], [], [], []
    for index, cell in enumerate(scene.cells):
        if not cell.walkable:
            continue
        lo.append(cell.lo[:2])
        hi.append(cell.hi[:2])
        for face in range(4):
            axis, side = divmod(face, 2)
            along = 1 - axis
            plane = cell.hi[axis] if side else cell.lo[axis]
            for a, b in _subtract((cell.lo[along], cell.hi[along]), _open_intervals(scene, index, face)):
                p, q = [0.0, 0.0], [0.0, 0.0]
                p[axis] = q[axis] = plane
                p[along], q[along] = a, b
                seg_a.append(p)
                seg_b.append(q)
    boxes, circles = [], []
    for solid in scene.solids:
        if not solid.blocks_camera:
            continue
        if isinstance(solid, Box):
            boxes.append([solid.center[0], solid.center[1], solid.half[0], solid.half[1], solid.yaw_rad])
        elif isinstance(solid, Cylinder):
            circles.append([*solid.center_xy, solid.radius])
        else:
            circles.append([solid.center[0], solid.center[1], solid.radius])
    return FloorPlan(
        np.array(seg_a, dtype=np.float64).reshape(-1, 2),
        np.array(seg_b, dtype=np.float64).reshape(-1, 2),
        np.array(boxes, dtype=np.float64).reshape(-1, 5),
        np.array(circles, dtype=np.float64).reshape(-1, 3),
        np.array(lo, dtype=np.float64).reshape(-1, 2),
        np.array(hi, dtype=np.float64).reshape(-1, 2),
    )
