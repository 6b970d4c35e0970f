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

import cv2
import numpy as np

from gac_bench.api import GenerationRequest, Method, UnsupportedRequest
from gac_bench.pointcloud import PointCloud, splat, unproject_subpixel, warp_reference
from gac_bench.registry import register_method

__all__ = ["DepthWarpMethod", "PointCloud", "fill_depth_far", "inpaint_rgb", "splat", "unproject_subpixel",
           "warp_reference"]  # fmt: skip


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

