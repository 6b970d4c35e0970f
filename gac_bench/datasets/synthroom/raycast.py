"""Vectorised numpy ray caster for synthroom scenes: RGB with adaptive supersampling and exact z-depth.

Conventions:

* Pinhole ``K`` in pixels (OpenCV), ``c2w`` OpenCV camera-to-world. Pixel (u, v) covers [u, u+1) x [v, v+1);
  the depth sample goes through the pixel centre (u + 0.5, v + 0.5), as ``cameras.unproject_depth`` assumes.
* Ray directions are **not** normalised: the camera-frame direction is ((x - cx)/fx, (y - cy)/fy, 1), so the
  ray parameter ``t`` at a hit *is* the z-depth along the optical axis (not the distance along the ray).
* float32 arithmetic with scalars passed as Python floats (numpy keeps float32 then); only elementwise
  operations (no BLAS reductions), so a given input renders to identical bytes whatever the thread count.

Two passes (see :func:`render_view`): pixel-centre rays on the dense grid give depth and a surface-id map;
then only pixels near a change of surface get ``supersample`` x ``supersample`` sub-pixel rays.
Speed: the room shell is one slab computation per cell; each solid is tested only on the rays inside the
screen rectangle its bounding box projects to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench.datasets.synthroom.compiled import CompiledScene
from gac_bench.datasets.synthroom.scene import Box, Cylinder, Scene, Sphere

T_MIN = 1e-5  # hits closer than this (in z-depth) are ignored
NEAR_Z = 1e-3  # near plane of the screen-rectangle culling
BOX_EDGES = ((0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7))
F32 = np.float32


# ---------------------------------------------------------------------------------------------- rays


@dataclass(frozen=True)
class Rays:
    """Rays from one camera centre ``o``, arrays shaped (S, A, B); ``t`` along d is the z-depth.

    Dense rays cover the pixel grid (A, B) = (H, W). Sparse rays cover M chosen pixels, (A, B) = (1, M),
    listed in row-major order with their image rows in ``rows`` (used to cull solids by row band).
    """

    o: tuple[float, float, float]
    d: tuple[np.ndarray, np.ndarray, np.ndarray]  # world direction components, float32
    K: np.ndarray
    c2w: np.ndarray
    height: int
    width: int
    rows: np.ndarray | None = None  # (M,) for sparse rays
    cols: np.ndarray | None = None

    def window(self, r0: int, r1: int, c0: int, c1: int) -> tuple | None:
        """Index of the rays that may fall inside pixel rectangle [r0, r1) x [c0, c1), or None.

        Dense rays: a slice of the grid. Sparse rays: the contiguous run of rows r0..r1 (they are in
        row-major order), narrowed to the columns c0..c1 with an index array when that drops most of it.
        """
        if r0 >= r1 or c0 >= c1:
            return None
        if self.rows is None:
            return (slice(None), slice(r0, r1), slice(c0, c1))
        j0, j1 = (int(j) for j in np.searchsorted(self.rows, [r0, r1]))
        if j1 <= j0:
            return None
        band = self.cols[j0:j1]
        keep = np.flatnonzero((band >= c0) & (band < c1))
        if keep.size == 0:
            return None
        if keep.size > 0.6 * (j1 - j0):
            return (slice(None), slice(None), slice(j0, j1))
        return (slice(None), slice(None), keep + j0)


def _directions(K: np.ndarray, c2w: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """World directions R @ ((u - cx)/fx, (v - cy)/fy, 1) for image points (u, v), broadcast, float32."""
    x_cam = ((u - K[0, 2]) / K[0, 0]).astype(F32)
    y_cam = ((v - K[1, 2]) / K[1, 1]).astype(F32)
    R = [[float(e) for e in row] for row in c2w[:3, :3]]
    # written out elementwise (no BLAS) for bitwise reproducibility
    return tuple(R[k][0] * x_cam + R[k][1] * y_cam + R[k][2] for k in range(3))


def camera_rays(K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> Rays:
    """Dense rays through every pixel centre, shaped (1, H, W)."""
    K = np.asarray(K, dtype=np.float64)
    c2w = np.asarray(c2w, dtype=np.float64)
    u = (np.arange(width) + 0.5)[None, None, :]
    v = (np.arange(height) + 0.5)[None, :, None]
    d = tuple(np.ascontiguousarray(np.broadcast_to(a, (1, height, width))) for a in _directions(K, c2w, u, v))
    return Rays(tuple(float(x) for x in c2w[:3, 3]), d, K, c2w, height, width)


def subpixel_offsets(supersample: int) -> np.ndarray:
    """(S, 2) offsets inside a pixel of a regular ``supersample`` x ``supersample`` grid."""
    grid = (np.arange(supersample) + 0.5) / supersample
    gu, gv = np.meshgrid(grid, grid)
    return np.stack([gu.ravel(), gv.ravel()], -1)


def subpixel_rays(K: np.ndarray, c2w: np.ndarray, rows: np.ndarray, cols: np.ndarray, supersample: int, shape) -> Rays:
    """Sparse grid-sample rays of pixels (rows, cols) (row-major order), shaped (supersample^2, 1, M)."""
    off = subpixel_offsets(supersample)
    u = (cols[None, None, :] + off[:, 0, None, None]).astype(np.float64)
    v = (rows[None, None, :] + off[:, 1, None, None]).astype(np.float64)
    d = _directions(K, c2w, u, v)
    return Rays(tuple(float(x) for x in c2w[:3, 3]), d, K, c2w, shape[0], shape[1], rows, cols)


# ---------------------------------------------------------------------------------------------- cells


def _exit_cell(lo, hi, o, d, inv_d) -> tuple[np.ndarray, np.ndarray]:
    """Where rays leave an axis-aligned box: (t, face = 2 * axis + side). Works from inside the box and
    for rays that entered it through a face (the far slab on each axis bounds the exit)."""
    dx, dy, dz = d
    far = [np.maximum((float(lo[k]) - o[k]) * inv_d[k], (float(hi[k]) - o[k]) * inv_d[k]) for k in range(3)]
    tx, ty, tz = far
    t = np.minimum(np.minimum(tx, ty), tz)
    face = np.where(tx == t, dx > 0, np.where(ty == t, 2 + (dy > 0), 4 + (dz > 0)))
    return t, face.astype(np.int32)


def _trace_cells(cs: CompiledScene, rays: Rays, inv_d, t_out: np.ndarray, sid_out: np.ndarray) -> None:
    """Fill t/sid with the room shell: walls of the camera's cell, continued through portals."""
    o = np.asarray(rays.o)
    inside = np.all((o > cs.cell_lo) & (o < cs.cell_hi), axis=1)
    if not inside.any():
        raise ValueError(f"camera centre {rays.o} is outside every room of the scene")
    flat = [a.reshape(-1) for a in rays.d]
    flat_inv = [a.reshape(-1) for a in inv_d]
    t_flat, sid_flat = t_out.reshape(-1), sid_out.reshape(-1)
    work: list[tuple[int, np.ndarray | None]] = [(int(np.argmax(inside)), None)]  # None = every ray
    while work:
        cell, idx = work.pop()
        d = flat if idx is None else [a[idx] for a in flat]
        inv = flat_inv if idx is None else [a[idx] for a in flat_inv]
        t, face = _exit_cell(cs.cell_lo[cell], cs.cell_hi[cell], rays.o, d, inv)
        target = slice(None) if idx is None else idx
        t_flat[target] = t
        sid_flat[target] = cs.cell_surface_base[cell] + face
        for pface, rect_lo, rect_hi, cell_to in cs.portals_from[cell]:
            on_face = np.flatnonzero(face == pface)
            if on_face.size == 0:
                continue
            a, b = [k for k in range(3) if k != pface // 2]
            t_on = t[on_face]
            pa = rays.o[a] + t_on * d[a][on_face]
            pb = rays.o[b] + t_on * d[b][on_face]
            through = (pa >= rect_lo[0]) & (pa <= rect_hi[0]) & (pb >= rect_lo[1]) & (pb <= rect_hi[1])
            sel = on_face[through]
            if sel.size:
                work.append((cell_to, sel if idx is None else idx[sel]))


# ---------------------------------------------------------------------------------------------- solids


def screen_rects(corners_world: np.ndarray, c2w: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel rectangles (n, 4) = (r0, r1, c0, c1), end-exclusive, covering each box's visible projection.

    ``corners_world`` is (n, 8, 3). Each box is clipped against the near plane -- its corners in front plus
    the points where its edges cross the plane -- so boxes that straddle or surround the camera are handled
    exactly. An empty rectangle means the box is behind the camera or off screen. A one-pixel margin keeps
    every sample whose ray can hit the box inside the rectangle.
    """
    R, C = c2w[:3, :3], c2w[:3, 3]
    q = corners_world - C
    p = np.stack([(q * R[:, k]).sum(-1) for k in range(3)], axis=-1)  # camera coords = R^T (x - C)
    i, j = np.array(BOX_EDGES).T
    zi, zj = p[:, i, 2], p[:, j, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (NEAR_Z - zi) / (zj - zi)
    crossing = (zi >= NEAR_Z) != (zj >= NEAR_Z)
    cut = p[:, i] + s[..., None] * (p[:, j] - p[:, i])
    pts = np.concatenate([p, cut], axis=1)  # (n, 20, 3)
    valid = np.concatenate([p[..., 2] >= NEAR_Z, crossing], axis=1)
    z = np.where(valid, pts[..., 2], 1.0)
    u = np.where(valid, K[0, 0] * pts[..., 0] / z + K[0, 2], np.nan)
    v = np.where(valid, K[1, 1] * pts[..., 1] / z + K[1, 2], np.nan)
    out = np.zeros((len(p), 4), dtype=np.int64)
    seen = valid.any(axis=1)
    if seen.any():
        out[seen, 0] = np.clip(np.floor(np.nanmin(v[seen], axis=1)) - 1, 0, height)
        out[seen, 1] = np.clip(np.floor(np.nanmax(v[seen], axis=1)) + 2, 0, height)
        out[seen, 2] = np.clip(np.floor(np.nanmin(u[seen], axis=1)) - 1, 0, width)
        out[seen, 3] = np.clip(np.floor(np.nanmax(u[seen], axis=1)) + 2, 0, width)
    return out


def _hit_box(box: Box, o, d, inv_d) -> tuple[np.ndarray, np.ndarray]:
    """Slab test in the box's local frame: (entry t or inf, local face 2 * axis + side).

    ``d`` and ``inv_d`` = 1 / d are world ray directions (3 arrays each); axis-aligned boxes reuse ``inv_d``.
    """
    c, s = float(np.cos(box.yaw_rad)), float(np.sin(box.yaw_rad))
    ox, oy, oz = (o[k] - float(box.center[k]) for k in range(3))
    local_o = (c * ox + s * oy, -s * ox + c * oy, oz)
    dx, dy, dz = d
    if box.yaw_rad == 0.0:
        local_d, local_inv = d, inv_d
    else:
        local_d = (c * dx + s * dy, -s * dx + c * dy, dz)
        local_inv = (F32(1.0) / local_d[0], F32(1.0) / local_d[1], inv_d[2])
    near, far = [], []
    for k in range(3):
        h = float(box.half[k])
        t1 = (-h - local_o[k]) * local_inv[k]
        t2 = (h - local_o[k]) * local_inv[k]
        near.append(np.minimum(t1, t2))
        far.append(np.maximum(t1, t2))
    t_near = np.maximum(np.maximum(near[0], near[1]), near[2])
    t_far = np.minimum(np.minimum(far[0], far[1]), far[2])
    hit = (t_near <= t_far) & (t_near > T_MIN)
    face_yz = np.where(near[1] == t_near, 2 + (local_d[1] < 0), 4 + (local_d[2] < 0))
    face = np.where(near[0] == t_near, local_d[0] < 0, face_yz)
    return np.where(hit, t_near, F32(np.inf)), face.astype(np.int32)


def _hit_cylinder(cyl: Cylinder, o, d, inv_d) -> tuple[np.ndarray, np.ndarray]:
    """Vertical cylinder: side (face 0) where the entry height is within [z0, z1], else a cap (1 top, 2 bottom)."""
    dx, dy, dz = d
    ox, oy = o[0] - float(cyl.center_xy[0]), o[1] - float(cyl.center_xy[1])
    r2, z0, z1 = float(cyl.radius) ** 2, float(cyl.z0), float(cyl.z1)
    c = ox * ox + oy * oy - r2  # > 0: the camera is outside the infinite cylinder
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy  # half of the usual b
    disc = b * b - a * c
    t_side = (-b - np.sqrt(np.maximum(disc, F32(0.0)))) / a
    z_side = o[2] + t_side * dz
    side_ok = (disc >= 0) & (t_side > T_MIN) & (z_side >= z0) & (z_side <= z1) & (c > 0)
    t = np.where(side_ok, t_side, F32(np.inf))
    face = np.zeros(dx.shape, dtype=np.int32)
    for cap_face, z_cap, outside in ((1, z1, o[2] > z1), (2, z0, o[2] < z0)):
        if not outside:
            continue
        t_cap = (z_cap - o[2]) * inv_d[2]
        rx, ry = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = (t_cap > T_MIN) & (rx * rx + ry * ry <= r2) & (t_cap < t)
        t = np.where(cap_ok, t_cap, t)
        face = np.where(cap_ok, cap_face, face)
    return t, face


def _hit_sphere(sph: Sphere, o, d, inv_d) -> tuple[np.ndarray, np.ndarray]:
    dx, dy, dz = d
    ox, oy, oz = (o[k] - float(sph.center[k]) for k in range(3))
    c = ox * ox + oy * oy + oz * oz - float(sph.radius) ** 2
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, F32(0.0)))) / a
    ok = (disc >= 0) & (t > T_MIN)
    return np.where(ok, t, F32(np.inf)), np.zeros(dx.shape, dtype=np.int32)


_HITTERS = {Box: _hit_box, Cylinder: _hit_cylinder, Sphere: _hit_sphere}


def intersect(cs: CompiledScene, rays: Rays) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit per ray: (t = z-depth float32, surface id int32), both shaped like the rays."""
    shape = rays.d[0].shape
    t = np.empty(shape, dtype=F32)
    sid = np.empty(shape, dtype=np.int32)
    # axis-parallel rays divide by zero and meet 0 * inf; the resulting inf/nan never win a comparison
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_d = tuple(F32(1.0) / a for a in rays.d)  # shared by the cell exits and every axis-aligned box
        _trace_cells(cs, rays, inv_d, t, sid)
        if cs.solids:
            rects = screen_rects(cs.solid_corners, rays.c2w, rays.K, rays.height, rays.width)
            for rec, rect in zip(cs.solids, rects.tolist()):
                win = rays.window(*rect)
                if win is not None:
                    _hit_into(rec, rays.o, tuple(a[win] for a in rays.d), tuple(a[win] for a in inv_d), t, sid, win)
    return t, sid


def _hit_into(rec, o, d, inv_d, t, sid, win) -> None:
    """Test one solid on the rays ``win`` and keep its hits where they are nearer than the current ones."""
    t_hit, face = _HITTERS[type(rec.solid)](rec.solid, o, d, inv_d)
    current = t[win]
    closer = t_hit < current
    if all(isinstance(w, slice) for w in win):  # views: update in place
        np.copyto(current, t_hit, where=closer)
        np.copyto(sid[win], rec.surface_base + face, where=closer)
    else:  # gathered copies: scatter back
        t[win] = np.where(closer, t_hit, current)
        sid[win] = np.where(closer, rec.surface_base + face, sid[win])


def edge_pixels(sid: np.ndarray) -> np.ndarray:
    """(H, W) True where a pixel's centre hit differs from one of its 8 neighbours' (a surface change nearby)."""
    edge = np.zeros(sid.shape, dtype=bool)
    for a, b in (
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
        ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))),
    ):
        differs = sid[a] != sid[b]
        edge[a] |= differs
        edge[b] |= differs
    return edge


# ---------------------------------------------------------------------------------------------- entry points


def render_view(scene: Scene, K: np.ndarray, c2w: np.ndarray, height: int, width: int, supersample: int = 2):
    """(rgb uint8 (H, W, 3), depth_z float32 (H, W)) of ``scene`` seen by an OpenCV camera.

    ``depth_z`` is the z-depth in world units of the surface through each pixel centre. RGB is adaptively
    supersampled: a pixel whose centre ray and its 8 neighbours' hit one surface is that centre sample's
    mip-mapped bilinear texture lookup, filtered over the pixel's footprint (texture aliasing is the mip
    map's job); a pixel near a silhouette, crease or occlusion edge is the mean of ``supersample`` x
    ``supersample`` grid samples, each filtered over its own footprint.
    """
    from gac_bench.datasets.synthroom.shading import shade

    cs = scene.compiled
    rays = camera_rays(K, c2w, height, width)
    t, sid = intersect(cs, rays)
    focal = float(rays.K[0, 0])
    edge = edge_pixels(sid[0]) if supersample > 1 else np.zeros((height, width), dtype=bool)
    colour = np.empty((3, height * width), dtype=F32)
    inner = np.flatnonzero(~edge)
    colour[:, inner] = shade(cs, rays.o, t.reshape(-1)[inner], sid.reshape(-1)[inner],
                             [a.reshape(-1)[inner] for a in rays.d], 1.0, focal)  # fmt: skip
    rows, cols = np.nonzero(edge)
    if rows.size:
        sub = subpixel_rays(rays.K, rays.c2w, rows, cols, supersample, (height, width))
        t_sub, sid_sub = intersect(cs, sub)
        col_sub = shade(cs, sub.o, t_sub.reshape(-1), sid_sub.reshape(-1), [a.reshape(-1) for a in sub.d],
                        float(supersample), focal).reshape(3, -1, rows.size)  # fmt: skip
        total = col_sub[:, 0]
        for k in range(1, col_sub.shape[1]):  # fixed summation order
            total = total + col_sub[:, k]
        colour[:, rows * width + cols] = total * F32(1.0 / col_sub.shape[1])
    rgb = np.floor(np.clip(colour * F32(255.0), 0.0, 255.0) + F32(0.5)).astype(np.uint8)
    return np.ascontiguousarray(rgb.reshape(3, height, width).transpose(1, 2, 0)), t[0].copy()


def render_depth(scene: Scene, K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> np.ndarray:
    """z-depth (H, W) float32 at pixel centres, without shading (cheap; used to vet camera paths)."""
    t, _ = intersect(scene.compiled, camera_rays(K, c2w, height, width))
    return t[0]
