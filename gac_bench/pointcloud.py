"""Point clouds from depth and their z-buffered rendering: the unproject/render steps of the paper's Algorithm 1
(eqs. 2-3), shared by the ``depth-warp`` baseline and GaC's warped-image targets (variant #2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gac_bench import cameras

NEAR_Z = 1e-3


@dataclass
class PointCloud:
    xyz: np.ndarray  # (P, 3) float32 world
    rgb: np.ndarray  # (P, 3) uint8

    def extend(self, other: "PointCloud") -> "PointCloud":
        return PointCloud(np.concatenate([self.xyz, other.xyz]), np.concatenate([self.rgb, other.rgb]))


def unproject_subpixel(image: np.ndarray, depth_z: np.ndarray, K: np.ndarray, c2w: np.ndarray, mask: np.ndarray | None,
                       supersample: int = 2) -> PointCloud:
    """Points of the (masked) pixels of a view, ``supersample``^2 per pixel at sub-pixel positions."""
    h, w = depth_z.shape
    offsets = (np.arange(supersample) + 0.5) / supersample
    vs, us = np.nonzero(np.ones((h, w), bool) if mask is None else mask)
    pts, cols = [], []
    for dv in offsets:
        for du in offsets:
            z = depth_z[vs, us].astype(np.float64)
            x = (us + du - K[0, 2]) / K[0, 0] * z
            y = (vs + dv - K[1, 2]) / K[1, 1] * z
            pts.append(np.stack([x, y, z], axis=1) @ c2w[:3, :3].T + c2w[:3, 3])
            cols.append(image[vs, us])
    # float32 world points: enough for splatting at pixel precision, and half the memory traffic
    return PointCloud(np.concatenate(pts).astype(np.float32), np.concatenate(cols))


def splat(cloud: PointCloud, K: np.ndarray, c2w: np.ndarray, height: int, width: int):
    """Z-buffered render of ``cloud``: (image uint8, depth float32 (0 where empty), valid bool).

    The nearest point wins each pixel; ties go to the later point (the one added last), deterministically.
    Scatter-min in torch keeps this O(points) instead of sorting every point each frame.
    """
    w2c = torch.from_numpy(cameras.invert_rigid(c2w)).float()
    xyz = torch.from_numpy(cloud.xyz)
    p_cam = xyz @ w2c[:3, :3].T + w2c[:3, 3]
    z = p_cam[:, 2]
    zs = z.clamp_min(NEAR_Z)
    u = torch.floor(p_cam[:, 0] / zs * float(K[0, 0]) + float(K[0, 2]))
    v = torch.floor(p_cam[:, 1] / zs * float(K[1, 1]) + float(K[1, 2]))
    keep = (z > NEAR_Z) & torch.isfinite(z) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    point_id = torch.nonzero(keep).squeeze(1)
    idx = (v[keep] * width + u[keep]).long()
    z_keep = z[keep]
    zbuf = torch.full((height * width,), float("inf")).scatter_reduce(0, idx, z_keep, "amin")
    nearest = z_keep == zbuf[idx]
    winner = torch.full((height * width,), -1, dtype=torch.long)
    winner = winner.scatter_reduce(0, idx[nearest], point_id[nearest], "amax").numpy()
    valid = winner >= 0
    image = np.zeros((height * width, 3), np.uint8)
    depth = np.zeros(height * width, np.float32)
    image[valid] = cloud.rgb[winner[valid]]
    depth[valid] = zbuf.numpy()[valid]
    return image.reshape(height, width, 3), depth.reshape(height, width), valid.reshape(height, width)


def warp_reference(image: np.ndarray, depth_z: np.ndarray, K: np.ndarray, c2w_src: np.ndarray, c2w_dst: np.ndarray):
    """Forward-warp one view into another (no inpainting): (warped uint8 HxWx3, valid bool HxW)."""
    cloud = unproject_subpixel(image, depth_z, K, c2w_src, None)
    warped, _, valid = splat(cloud, K, c2w_dst, *depth_z.shape)
    return warped, valid
