"""CameraCtrl (svd branch) camera conversion, pure functions.

Native convention (the RealEstate10K pose txt ``inference.py --trajectory_file`` reads):

=================  =====================================================================================
file               line 1 ignored; then per frame ``t fx fy cx cy 0 0 r11 r12 r13 t1 r21 ... r33 t3``
intrinsics         normalised: fx/W, fy/H, cx/W, cy/H of the generated 576x320 frame
extrinsics         world-to-camera 3x4, row-major, OpenCV axes (x right, y down, z forward)
relative           CameraCtrl re-expresses every frame relative to the file's first one (P_i = E_0 E_i^-1)
translation scale  none inside CameraCtrl: the model sees file units (it was trained on RealEstate10K units)
aspect fix         fx (or fy) rescaled by the ratio of --original_pose_width/height to the sample aspect;
                   we pass 576x320, the sample aspect itself, so the fix is the identity
=================  =====================================================================================

We write each chunk's poses as Q_i = E_i E_0^-1 (the clip's frame 0 is the world) with translations times
``translation_scale``; CameraCtrl's own re-relativisation then gives the chunk-relative poses it needs.
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

from baselines.upstream.conventions import scale_translations

NATIVE_WH = (576, 320)
FRAMES_PER_CALL = {"svdxt": 25, "svd": 14}


def pose_file_rows(
    c2w_opencv: np.ndarray, K_native: np.ndarray, native_wh: tuple[int, int], translation_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Harness poses (N, 4, 4) of the whole clip -> per-frame (K_norm (N,3,3), w2c (N,4,4)) for the pose txt."""
    c2w_rel = scale_translations(cameras.relative_to_first(c2w_opencv), translation_scale)
    w2c = cameras.c2w_to_w2c(c2w_rel)
    K_norm = cameras.K_pixels_to_norm(K_native, *native_wh)
    return np.broadcast_to(K_norm, (len(w2c), 3, 3)).copy(), w2c


def poses_from_pose_file(w2c: np.ndarray, c2w_first: np.ndarray, translation_scale: float) -> np.ndarray:
    """Inverse of :func:`pose_file_rows` for the poses: file w2c (N,4,4) -> harness c2w in the original world."""
    c2w_rel = scale_translations(cameras.w2c_to_c2w(w2c), 1.0 / translation_scale)
    return np.asarray(c2w_first, dtype=np.float64)[None] @ c2w_rel


def cameractrl_relative_c2w(w2c: np.ndarray) -> np.ndarray:
    """What CameraCtrl computes from a pose file (``get_relative_pose`` with zero_first_frame_scale): E_0 E_i^-1."""
    w2c = np.asarray(w2c, dtype=np.float64)
    return w2c[0][None] @ cameras.w2c_to_c2w(w2c)


def cameractrl_pixel_K(K_norm: np.ndarray, sample_wh: tuple[int, int], original_pose_wh: tuple[int, int]) -> np.ndarray:
    """The pixel K CameraCtrl builds from a file's K_norm, including its aspect correction of fx or fy."""
    W, H = sample_wh
    fx, fy, cx, cy = K_norm[0, 0], K_norm[1, 1], K_norm[0, 2], K_norm[1, 2]
    pose_ratio, sample_ratio = original_pose_wh[0] / original_pose_wh[1], W / H
    if pose_ratio > sample_ratio:
        fx = H * pose_ratio * fx / W
    else:
        fy = (W / pose_ratio) * fy / H
    return cameras.intrinsics_matrix(fx * W, fy * H, cx * W, cy * H)
