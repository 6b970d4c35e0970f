"""Colour of ray hits: mip-mapped bilinear texture lookup times a view-independent lambert term.

Everything a surface point's colour depends on (its texture coordinates, normal and light) is fixed in the
world, so a point has the same colour from every camera -- up to the texture filtering, which depends on
distance. That keeps the frames photo-consistent for depth warping and SfM. Channel-planar float32
arithmetic on contiguous (N,) arrays: in numpy that is several times faster than (N, 3) arrays.
"""

from __future__ import annotations

import numpy as np

from gac_bench.datasets.synthroom import compiled as C
from gac_bench.datasets.synthroom.textures import NUM_MIP_LEVELS, TEXTURE_SIZE, texture_atlas

F32 = np.float32
AMBIENT = 0.42  # light reaching every surface; the room light adds up to its intensity on top
MIN_COS_VIEW = 0.05  # caps the texture footprint widening at grazing angles


def bilinear(texels: np.ndarray, level_offset: np.ndarray, tex, level, u_tiles, v_tiles) -> np.ndarray:
    """Wrap-around bilinear lookup of mip ``level`` at tile coordinates: (3, N) float32 in [0, 255]."""
    size = np.int32(TEXTURE_SIZE) >> level  # per sample; powers of two, so wrapping is a bit mask
    mask = size - np.int32(1)
    size_f = size.astype(F32)
    x = (u_tiles - np.floor(u_tiles)) * size_f - F32(0.5)  # texel centres sit at half-integers
    y = (v_tiles - np.floor(v_tiles)) * size_f - F32(0.5)
    x0f, y0f = np.floor(x), np.floor(y)
    fx, fy = x - x0f, y - y0f
    x0 = x0f.astype(np.int32) & mask
    y0 = y0f.astype(np.int32) & mask
    x1 = (x0 + 1) & mask
    base = np.take(level_offset, level) + tex * size * size
    row0 = base + y0 * size
    row1 = base + ((y0 + 1) & mask) * size
    gx, gy = F32(1.0) - fx, F32(1.0) - fy
    out = np.zeros((3, len(x)), dtype=F32)
    for index, weight in ((row0 + x0, gx * gy), (row0 + x1, fx * gy), (row1 + x0, gx * fy), (row1 + x1, fx * fy)):
        rgba = np.take(texels, index).view(np.uint8).reshape(-1, 4)
        for c in range(3):
            out[c] += weight * rgba[:, c]
    return out


def _curved_uv_normal(cs: C.CompiledScene, sid, p, u, v, n) -> None:
    """Overwrite u/v (tiles) and the normal of samples on cylinder sides and spheres, in place.

    Cylinder: radial normal, u = arc length around the axis, v = distance below the top.
    Sphere: u = arc length of longitude, v = arc length from the north pole.
    """
    kind = np.take(cs.kind, sid)
    idx = np.flatnonzero(kind != C.PLANAR)
    if idx.size == 0:
        return
    params = np.take(cs.curved, sid[idx], axis=0)
    qx, qy, qz = (p[k][idx] - params[:, k] for k in range(3))
    sphere = kind[idx] == C.SPHERE_SURFACE
    qz_n = np.where(sphere, qz, 0.0)
    inv_len = 1.0 / np.sqrt(qx * qx + qy * qy + qz_n * qz_n)
    nrm = (qx * inv_len, qy * inv_len, qz_n * inv_len)
    radius = params[:, 3]
    u_m = np.arctan2(qy, qx) * radius
    v_m = np.where(sphere, np.arccos(np.clip(nrm[2], -1.0, 1.0)) * radius, -qz)
    u[idx] = u_m * params[:, 4] + params[:, 6]
    v[idx] = v_m * params[:, 5] + params[:, 7]
    for k in range(3):
        n[k][idx] = nrm[k]


def shade(cs: C.CompiledScene, o, t, sid, d, samples_per_pixel_axis: float, focal_px: float) -> np.ndarray:
    """Colour (3, N) float32 in [0, 1] of N hits: ray origin ``o``, z-depth ``t``, surface ``sid``,
    directions ``d`` (3 arrays); the texture footprint of a sample is the pixel's divided by
    ``samples_per_pixel_axis``."""
    atlas = texture_atlas()
    p = [o[k] + t * d[k] for k in range(3)]
    row = np.take(cs.surface_rows, sid, axis=1)  # (NUM_ROWS, N): every per-surface quantity at once
    U, V = row[C.ROW_U], row[C.ROW_V]
    u = p[0] * U[0] + p[1] * U[1] + p[2] * U[2] - row[C.ROW_U0]
    v = p[0] * V[0] + p[1] * V[1] + p[2] * V[2] - row[C.ROW_V0]
    n = [row[C.ROW_NORMAL][k].copy() for k in range(3)]
    _curved_uv_normal(cs, sid, p, u, v, n)
    # lambert from the surface's room light with a soft 1 / (1 + (r / falloff)^2) decay
    light = row[C.ROW_LIGHT]
    to_light = [light[k] - p[k] for k in range(3)]
    dist2 = to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2
    cos_light = (n[0] * to_light[0] + n[1] * to_light[1] + n[2] * to_light[2]) / np.sqrt(dist2)
    falloff = 1.0 + dist2 * row[C.ROW_LIGHT_INV_FALLOFF2]
    lit = AMBIENT + np.maximum(cos_light, F32(0.0)) * row[C.ROW_LIGHT_INTENSITY] / falloff
    # mip level: log2 of texels per sample spacing, widened on surfaces seen at a grazing angle
    cos_view = np.abs(n[0] * d[0] + n[1] * d[1] + n[2] * d[2]) / np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    lod = np.log2(t) + row[C.ROW_LOG2_TEXELS_PER_M] - float(np.log2(focal_px * samples_per_pixel_axis))
    lod -= F32(0.5) * np.log2(np.maximum(cos_view, F32(MIN_COS_VIEW)))
    level = np.clip(np.floor(lod + F32(0.5)), 0, NUM_MIP_LEVELS - 1).astype(np.int32)
    albedo = bilinear(atlas.texels, atlas.level_offset, row[C.ROW_TEXTURE].astype(np.int32), level, u, v)
    albedo *= lit * F32(1.0 / 255.0)
    return albedo
