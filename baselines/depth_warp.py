"""``depth-warp``: the paper's Algorithm 1 with classical parts instead of learned ones.

For each target view i = 1..N-1 (poses from the request, frame 0 = the reference):
  1. render the current point cloud into view i with a z-buffer (nearest point wins per pixel);
  2. fill the holes: colour by Telea inpainting (OpenCV), depth by growing the farthest neighbouring depth
     (disocclusions reveal background, so the far side is the better guess);
  3. update the 3D representation: unproject the filled pixels with their filled depth and add them to the cloud.
The cloud starts as the reference image unprojected with the dataset's depth of the reference view (the
geometry estimator of Algorithm 1 is replaced by that depth; the method therefore needs a dataset with depth
and says so where there is none). Each pixel is splatted as 2x2 sub-pixel points so that moderate forward
motion does not open cracks between neighbouring points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from gac_bench import cameras
from gac_bench.api import GenerationRequest, Method, UnsupportedRequest
from gac_bench.registry import register_method

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


def fill_depth_far(depth: np.ndarray, holes: np.ndarray, max_iters: int = 1000) -> np.ndarray:
    """Fill holes by repeatedly taking the largest depth of the 3x3 neighbourhood (background-biased)."""
    filled = np.where(holes, 0.0, depth).astype(np.float32)
    todo = holes.copy()
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(max_iters):
        if not todo.any():
            break
        grown = cv2.dilate(filled, kernel)
        newly = todo & (grown > 0)
        filled[newly] = grown[newly]
        todo &= ~newly
    if todo.any():  # an empty render: nothing to grow from
        filled[todo] = np.median(depth[~holes]) if (~holes).any() else 1.0
    return filled


def inpaint_rgb(image: np.ndarray, holes: np.ndarray, radius: int = 3) -> np.ndarray:
    if not holes.any():
        return image
    return cv2.inpaint(image, holes.astype(np.uint8), radius, cv2.INPAINT_TELEA)


def warp_reference(image: np.ndarray, depth_z: np.ndarray, K: np.ndarray, c2w_src: np.ndarray, c2w_dst: np.ndarray):
    """Forward-warp one view into another (no inpainting): (warped uint8 HxWx3, valid bool HxW)."""
    cloud = unproject_subpixel(image, depth_z, K, c2w_src, None)
    warped, _, valid = splat(cloud, K, c2w_dst, *depth_z.shape)
    return warped, valid


@register_method("depth-warp")
class DepthWarpMethod(Method):
    summary = "Algorithm 1 without learning: dataset depth -> point cloud -> z-buffer splat -> inpaint, iterated."
    version = "1"
    uses_dataset_depth = True

    def generate(self, request: GenerationRequest) -> np.ndarray:
        if request.reference_depth is None:
            raise UnsupportedRequest(
                f"depth-warp needs the dataset's depth of the reference view, and clip {request.clip_id} has none "
                "(the synthroom split provides exact depth; RealEstate10K and Tanks-and-Temples do not)"
            )
        h, w, K = request.height, request.width, request.K
        cloud = unproject_subpixel(request.reference_image, request.reference_depth, K, request.c2w[0], None)
        frames = np.empty((request.num_frames, h, w, 3), np.uint8)
        frames[0] = request.reference_image
        for i in range(1, request.num_frames):
            rendered, depth, valid = splat(cloud, K, request.c2w[i], h, w)
            holes = ~valid
            frames[i] = inpaint_rgb(rendered, holes)
            if holes.any():
                filled_depth = fill_depth_far(depth, holes)
                cloud = cloud.extend(unproject_subpixel(frames[i], filled_depth, K, request.c2w[i], holes))
        return frames

