"""Voyager's condition frames, re-implemented with harness geometry (numpy only).

Voyager's model never sees camera matrices: camera control is the sequence of partial RGB-D renders of the
reference's point cloud (``data_engine/create_input.py``). We build them as that script does, but with the
harness K and trajectory instead of its hard-coded f=256 and preset paths:

* points: the reference depth unprojected at pixel centres with the harness K (camera 0 = world);
* each frame: a splat at half the working resolution (as create_input renders 640x360 from a 1280x720 cloud),
  then upsampled to 768x512 (bilinear RGB and depth, nearest mask). Where several points land on one pixel the
  colour is the nearest point's but the depth is the **farthest** point's: upstream's
  ``render_from_cameras_videos`` sorts points near to far and writes ``depth_buffer[rows, cols] =
  np.minimum(depth_buffer[rows, cols], depths_sorted)``, a fancy-index assignment in which the last write of a
  pixel wins, and takes colours from the first occurrence (``np.unique(..., return_index=True)``). The adapter
  feeds Voyager what Voyager's own pipeline would, so it reproduces that;
* depth files: inverse depth of covered pixels normalised per frame by its 2nd-98th percentiles, uncovered
  pixels set to the minimum; the percentile pair of every frame goes to ``depth_range.json``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gac_bench import cameras

EPS = 1e-6  # create_input.py's guard in 1 / (depth + 1e-6)


def unproject(depth_z: np.ndarray, K: np.ndarray, c2w: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coloured points (P,3) float32 and (P,3) uint8 of every pixel with a finite positive depth.

    float32 halves the memory traffic of rendering ~0.4M points per frame; its 1e-7 relative precision is far
    below a pixel at any depth the renders use.
    """
    keep = np.isfinite(depth_z) & (depth_z > 0)
    pts = cameras.unproject_depth(np.where(keep, depth_z, 1.0), K, c2w)
    return pts[keep].astype(np.float32), image[keep]


def _rigid(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """points @ R^T + t, written column by column: numpy's (P,3)@(3,3) matmul is ~5x slower for large P."""
    R, t = T[:3, :3].astype(points.dtype), T[:3, 3].astype(points.dtype)
    return points[:, 0:1] * R[:, 0] + points[:, 1:2] * R[:, 1] + points[:, 2:3] * R[:, 2] + t


def splat(points: np.ndarray, colors: np.ndarray, w2c: np.ndarray, K: np.ndarray, height: int, width: int):
    """Upstream's render: (rgb uint8 (H,W,3) of the nearest point per pixel, z-depth (H,W) of the farthest point
    per pixel with inf where empty (see the module docstring), mask bool)."""
    p_cam = _rigid(points, w2c)
    z = p_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.floor(p_cam[:, 0] / z * K[0, 0] + K[0, 2])  # pixel (u, v) covers [u, u+1)
        v = np.floor(p_cam[:, 1] / z * K[1, 1] + K[1, 2])
    ok = (z > 1e-6) & (u >= 0) & (u < width) & (v >= 0) & (v < height)  # one mask, one gather: P is large
    flat = v[ok].astype(np.int64) * width + u[ok].astype(np.int64)
    z, col = z[ok], colors[ok]
    order = np.argsort(z)  # near to far, numpy's default sort as upstream (its tie order included)
    flat, z, col = flat[order], z[order], col[order]
    depth = np.full(height * width, np.inf, dtype=z.dtype)
    depth[flat] = z  # fancy-index assignment: the last write of a pixel, its farthest point, wins
    rgb = np.zeros((height * width, 3), np.uint8)
    pixels, first = np.unique(flat, return_index=True)
    rgb[pixels] = col[first]  # colour of the first occurrence: the nearest point
    return rgb.reshape(height, width, 3), depth.reshape(height, width), np.isfinite(depth).reshape(height, width)


def render_half(points, colors, w2c, K_native, native_wh):
    """Splat one frame at half the working size (create_input renders 640x360 from a 1280x720 cloud)."""
    half = (native_wh[0] // 2, native_wh[1] // 2)
    return splat(points, colors, w2c, cameras.K_after_resize(K_native, native_wh, half), half[1], half[0])


def encode_frame(rgb_half, depth_half, mask_half, native_wh):
    """create_video_input for one frame: normalise at half size, then upsample (linear RGB and depth, nearest mask).

    Returns (rgb uint8 (H,W,3), mask uint8 (H,W) in {0,255}, normalised depth float32 (H,W), (p2, p98)).
    """
    d_norm, depth_range = normalise_inverse_depth(depth_half, mask_half)
    rgb = np.asarray(Image.fromarray(rgb_half).resize(native_wh, Image.BILINEAR))
    mask = np.asarray(Image.fromarray(mask_half.astype(np.uint8) * 255).resize(native_wh, Image.NEAREST))
    depth = np.asarray(Image.fromarray(d_norm, "F").resize(native_wh, Image.BILINEAR), dtype=np.float32)
    return rgb, mask, depth, depth_range


def normalise_inverse_depth(depth_z: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """create_input.py's depth encoding: per-frame percentile-normalised inverse depth, and (p2, p98)."""
    out = np.zeros(depth_z.shape, np.float32)
    if not mask.any():
        return out, (0.0, 1.0)  # nothing visible: a flat map and an identity range
    inv = 1.0 / (depth_z[mask] + EPS)
    p2, p98 = float(np.percentile(inv, 2)), float(np.percentile(inv, 98))
    span = p98 - p2 if p98 > p2 else 1.0
    out[mask] = (inv - p2) / span
    out[~mask] = out[mask].min()
    return out, (p2, p98)


def denormalise_depth(d_norm: np.ndarray, depth_range: tuple[float, float]) -> np.ndarray:
    """Inverse of :func:`normalise_inverse_depth` on covered pixels: z-depth from 1/D = d (p98 - p2) + p2."""
    p2, p98 = depth_range
    span = p98 - p2 if p98 > p2 else 1.0
    inv = np.asarray(d_norm, dtype=np.float64) * span + p2
    with np.errstate(divide="ignore"):
        depth = 1.0 / inv - EPS
    depth[~np.isfinite(depth) | (inv <= 0)] = np.inf
    return depth
