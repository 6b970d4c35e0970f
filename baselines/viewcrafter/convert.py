"""ViewCrafter camera conversion, pure functions.

ViewCrafter's public interfaces take no matrices (only spherical deltas around a DUSt3R point cloud); the
adapter drives its internals instead (``run_dust3r``, ``run_render``, ``run_diffusion``). Native convention
of those internals:

=================  =====================================================================================
world              DUSt3R's reconstruction of the reference, re-expressed in the reference camera's frame
                   (ViewCrafter's ``world_point_to_kth``): camera 0 is the identity
render cameras     PyTorch3D ``PerspectiveCameras``: axes LUF, row vectors X_cam = X_world @ R + T;
                   built from OpenCV c2w by negating the camera x and y axes (``generate_traj_*``)
intrinsics         pixel focal and principal point at DUSt3R's 512x288, ``in_ndc=False``
frames             25 per call at 576x1024; render 0 is replaced by the conditioning image
translation scale  DUSt3R's arbitrary units (the worker applies the factor of the scale policy)
=================  =====================================================================================
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

from baselines.upstream.conventions import opencv_c2w_to_pytorch3d, pytorch3d_to_opencv_c2w

NATIVE_WH = (1024, 576)
DUST3R_WH = (512, 288)
FRAMES_PER_CALL = 25
PROMPT = "Rotating view of a scene"  # ViewCrafter's fixed prompt


def render_cameras(c2w_opencv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Harness c2w (N,4,4) -> (c2w relative to frame 0, PyTorch3D R (N,3,3), PyTorch3D T (N,3)), harness units."""
    c2w_rel = cameras.relative_to_first(c2w_opencv)
    R_p3d, T_p3d = opencv_c2w_to_pytorch3d(c2w_rel)
    return c2w_rel, R_p3d, T_p3d


def harness_c2w_from_render_cameras(R_p3d: np.ndarray, T_p3d: np.ndarray, c2w_first: np.ndarray, factor: float = 1.0):
    """Inverse of :func:`render_cameras` (after the worker scaled T by ``factor``): back to harness c2w."""
    c2w_rel = pytorch3d_to_opencv_c2w(R_p3d, np.asarray(T_p3d) / factor)
    return np.asarray(c2w_first, dtype=np.float64)[None] @ c2w_rel


def dust3r_intrinsics(K_native: np.ndarray) -> np.ndarray:
    """Pixel K at DUSt3R's 512x288 working size (an exact 2x downscale of 1024x576)."""
    return cameras.K_after_resize(K_native, NATIVE_WH, DUST3R_WH)
