"""Camera conversions the adapters need beyond :mod:`gac_bench.cameras` (pure functions, numpy).

===============  ======================================================================================
PyTorch3D        camera axes x left, y up, z forward (LUF); row vectors: X_cam = X_world @ R + T
OpenCV           camera axes x right, y down, z forward (RDF); column vectors: X_cam = R_w X_world + t_w
change of axes   F = diag(-1, -1, 1):  R_p3d = R_w^T F,  T_p3d = F t_w   (R_w, t_w: OpenCV world-to-camera)
===============  ======================================================================================

Translation scale: every adapter multiplies translations by one factor ``s`` (harness units -> the
method's units). Scaling the translation column of a c2w (camera centres) or of a w2c by ``s`` is the
same similarity (rotations kept, the world scaled about its origin), so one function serves both.
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

# RDF (OpenCV) <-> LUF (PyTorch3D): negate the camera x and y axes.
F_RDF_LUF = np.diag([-1.0, -1.0, 1.0])


def scale_translations(T: np.ndarray, s: float) -> np.ndarray:
    """Rigid transforms (..., 4, 4) with their translation column multiplied by ``s``."""
    out = np.array(T, dtype=np.float64)
    out[..., :3, 3] *= float(s)
    return out


def w2c_relative_to_first(c2w: np.ndarray) -> np.ndarray:
    """World-to-camera of every pose in the frame of camera 0: Q_i = E_i E_0^-1, so Q_0 = I (GEN3C, Voyager)."""
    return cameras.invert_rigid(cameras.relative_to_first(c2w))


def opencv_c2w_to_pytorch3d(c2w_opencv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV c2w (N, 4, 4) -> PyTorch3D ``R`` (N, 3, 3) and ``T`` (N, 3), ViewCrafter's construction."""
    w2c = cameras.invert_rigid(c2w_opencv)
    R_w, t_w = w2c[..., :3, :3], w2c[..., :3, 3]
    R_p3d = np.swapaxes(R_w, -1, -2) @ F_RDF_LUF
    T_p3d = t_w @ F_RDF_LUF  # F is diagonal, so t @ F == F t
    return R_p3d, T_p3d


def pytorch3d_to_opencv_c2w(R_p3d: np.ndarray, T_p3d: np.ndarray) -> np.ndarray:
    """Inverse of :func:`opencv_c2w_to_pytorch3d`."""
    R_p3d = np.asarray(R_p3d, dtype=np.float64)
    w2c = np.zeros(R_p3d.shape[:-2] + (4, 4))
    w2c[..., :3, :3] = np.swapaxes(R_p3d @ F_RDF_LUF, -1, -2)
    w2c[..., :3, 3] = np.asarray(T_p3d, dtype=np.float64) @ F_RDF_LUF
    w2c[..., 3, 3] = 1.0
    return cameras.invert_rigid(w2c)


def pytorch3d_camera_points(points_world: np.ndarray, R_p3d: np.ndarray, T_p3d: np.ndarray) -> np.ndarray:
    """Points (P, 3) in a PyTorch3D camera frame, with PyTorch3D's row-vector rule X @ R + T."""
    return np.asarray(points_world) @ R_p3d + T_p3d


def median_positive(depth: np.ndarray) -> float:
    """Median of the finite, positive values of a depth map (the scale reference of the depth policy)."""
    d = np.asarray(depth, dtype=np.float64)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ValueError("depth map has no finite positive value")
    return float(np.median(d))
