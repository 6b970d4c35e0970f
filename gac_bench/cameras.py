"""Camera conventions and pure conversion functions.

One convention inside the harness (see DESIGN.md, "Conventions"):

=============  =====================================================================
axes           OpenCV: x right, y down, z forward (RealEstate10K, COLMAP, VGGT)
extrinsics     camera-to-world 4x4 float64, named ``c2w``; its inverse is ``w2c``
intrinsics     ``K``: 3x3 in pixels of the image it belongs to; ``K_norm``: fx/W, fy/H, cx/W, cy/H
pixels         pixel (u, v) with integer indices covers [u, u+1) x [v, v+1); its centre is (u+0.5, v+0.5)
=============  =====================================================================

Adapters convert at their boundary with these functions and nowhere else. Every function accepts
leading batch dimensions (``(..., 4, 4)``) unless its docstring says otherwise.
"""

from __future__ import annotations

import numpy as np

# Flipping the camera's y and z axes maps OpenGL (x right, y up, z backward) to OpenCV and back.
_GL_CV_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


# ---------------------------------------------------------------------------------------------- poses


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4x4 transforms (..., 4, 4), exact for rotations: [R t]^-1 = [R^T, -R^T t]."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def w2c_to_c2w(w2c: np.ndarray) -> np.ndarray:
    """World-to-camera (..., 4, 4) to camera-to-world."""
    return invert_rigid(w2c)


def c2w_to_w2c(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world (..., 4, 4) to world-to-camera."""
    return invert_rigid(c2w)


def to_homogeneous(Rt: np.ndarray) -> np.ndarray:
    """(..., 3, 4) [R|t] to (..., 4, 4) with last row 0 0 0 1."""
    Rt = np.asarray(Rt, dtype=np.float64)
    out = np.zeros(Rt.shape[:-2] + (4, 4))
    out[..., :3, :] = Rt
    out[..., 3, 3] = 1.0
    return out


def relative_to_first(c2w: np.ndarray) -> np.ndarray:
    """Express poses (N, 4, 4) in the camera frame of pose 0: c2w_rel[i] = c2w[0]^-1 c2w[i]; c2w_rel[0] = I."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return invert_rigid(c2w[0])[None] @ c2w


def relative_pose(c2w_from: np.ndarray, c2w_to: np.ndarray) -> np.ndarray:
    """Transform taking points in camera ``to``'s frame into camera ``from``'s frame: w2c_from @ c2w_to."""
    return invert_rigid(c2w_from) @ np.asarray(c2w_to, dtype=np.float64)


def opengl_to_opencv(c2w_gl: np.ndarray) -> np.ndarray:
    """OpenGL camera axes (y up, z backward) to OpenCV (y down, z forward), for c2w (..., 4, 4). Self-inverse."""
    return np.asarray(c2w_gl, dtype=np.float64) @ _GL_CV_FLIP


def opencv_to_opengl(c2w_cv: np.ndarray) -> np.ndarray:
    """OpenCV camera axes to OpenGL, for c2w (..., 4, 4)."""
    return np.asarray(c2w_cv, dtype=np.float64) @ _GL_CV_FLIP


def look_at_c2w(position: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, -1.0, 0.0)) -> np.ndarray:
    """OpenCV c2w of a camera at ``position`` looking at ``target``; ``up`` is the world up direction.

    The default world frame is y-down (as RealEstate10K's first cameras are), so world up is -y.
    """
    position = np.asarray(position, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - position
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))  # x = y cross z with camera y along -up
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, position
    return c2w


def is_rigid(T: np.ndarray, atol: float = 1e-5) -> bool:
    """True when every (..., 4, 4) has an orthonormal rotation with det +1 and last row 0 0 0 1."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    eye = np.broadcast_to(np.eye(3), R.shape)
    ortho = np.allclose(np.swapaxes(R, -1, -2) @ R, eye, atol=atol)
    det = np.allclose(np.linalg.det(R), 1.0, atol=atol)
    last = np.allclose(T[..., 3, :], [0.0, 0.0, 0.0, 1.0], atol=atol)
    return bool(ortho and det and last)


def geodesic_angle_rad(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Rotation angle of R_a^T R_b in radians, (..., 3, 3) -> (...).

    Equal to arccos((tr(R_a^T R_b) - 1) / 2), computed as 2 arcsin(||R_a - R_b||_F / sqrt(8)), which keeps
    full precision near 0 where arccos does not (arccos(1 - e) loses half the digits of e).
    """
    diff = np.asarray(R_a, dtype=np.float64) - np.asarray(R_b, dtype=np.float64)
    chord = np.linalg.norm(diff, axis=(-2, -1)) / np.sqrt(8.0)
    return 2.0 * np.arcsin(np.clip(chord, 0.0, 1.0))


def rotation_about_axis(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """3x3 rotation by ``angle_rad`` about ``axis`` (Rodrigues)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * Kx + (1 - np.cos(angle_rad)) * (Kx @ Kx)


# ---------------------------------------------------------------------------------------------- intrinsics


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 pinhole matrix."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def K_norm_to_pixels(K_norm: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised intrinsics (fx/W, fy/H, cx/W, cy/H) to pixels of a ``width`` x ``height`` image."""
    return np.diag([float(width), float(height), 1.0]) @ np.asarray(K_norm, dtype=np.float64)


def K_pixels_to_norm(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel intrinsics of a ``width`` x ``height`` image to normalised intrinsics."""
    return np.diag([1.0 / width, 1.0 / height, 1.0]) @ np.asarray(K, dtype=np.float64)


def K_after_resize(K: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Pixel K after resizing an image from ``src_wh`` to ``dst_wh`` (pixel-edge rule: cx scales with W)."""
    sx = dst_wh[0] / src_wh[0]
    sy = dst_wh[1] / src_wh[1]
    return np.diag([sx, sy, 1.0]) @ np.asarray(K, dtype=np.float64)


def K_after_crop(K: np.ndarray, left: float, top: float) -> np.ndarray:
    """Pixel K (3, 3) or stacked (..., 3, 3) after cropping ``left`` columns and ``top`` rows off the image (the
    principal point moves)."""
    K = np.array(K, dtype=np.float64)
    K[..., 0, 2] -= left
    K[..., 1, 2] -= top
    return K


def resize_crop_plan(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resize so the image covers ``dst_wh`` (scale by the larger ratio), then centre-crop to ``dst_wh``.

    Returns ``(resized_wh, (left, top))``. When the aspect ratio already matches, no crop happens.
    """
    src_w, src_h = src_wh
    dst_w, dst_h = dst_wh
    scale = max(dst_w / src_w, dst_h / src_h)
    resized = (max(dst_w, round(src_w * scale)), max(dst_h, round(src_h * scale)))
    left = (resized[0] - dst_w) // 2
    top = (resized[1] - dst_h) // 2
    return resized, (left, top)


def K_after_resize_crop(K: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Pixel K of the image produced by :func:`resize_crop_plan` from an image with pixel intrinsics ``K``."""
    resized, (left, top) = resize_crop_plan(src_wh, dst_wh)
    return K_after_crop(K_after_resize(K, src_wh, resized), left, top)


def fov_x_rad(K: np.ndarray, width: int) -> float:
    """Horizontal field of view of pixel intrinsics ``K`` for an image ``width`` pixels wide."""
    return float(2.0 * np.arctan(width / (2.0 * K[0, 0])))


# ---------------------------------------------------------------------------------------------- rays


def pixel_rays_camera(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit ray directions in the camera frame through pixel centres, (height, width, 3)."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def plucker_rays(K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> np.ndarray:
    """Plücker embedding (o x d, d) per pixel, CameraCtrl's construction.

    Args:
        K: (3, 3) or (N, 3, 3) pixel intrinsics.
        c2w: (N, 4, 4) OpenCV camera-to-world.
    Returns:
        (N, height, width, 6) float32: moment o x d first, then the unit world direction d.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    Ks = np.broadcast_to(np.asarray(K, dtype=np.float64), (len(c2w), 3, 3))
    out = np.empty((len(c2w), height, width, 6), dtype=np.float32)
    for i, (Ki, T) in enumerate(zip(Ks, c2w)):
        d = pixel_rays_camera(Ki, height, width) @ T[:3, :3].T
        o = np.broadcast_to(T[:3, 3], d.shape)
        out[i, ..., :3] = np.cross(o, d)
        out[i, ..., 3:] = d
    return out


def project_points(points_world: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (P, 3) world points into a camera; returns pixel coordinates (P, 2) and camera z (P,)."""
    w2c = invert_rigid(c2w)
    p_cam = points_world @ w2c[:3, :3].T + w2c[:3, 3]
    z = p_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (p_cam[:, :2] / z[:, None]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return uv, z


def unproject_depth(depth_z: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """World points (H, W, 3) of pixel centres with z-depth ``depth_z`` (H, W) along the optical axis."""
    h, w = depth_z.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (u - K[0, 2]) / K[0, 0] * depth_z
    y = (v - K[1, 2]) / K[1, 1] * depth_z
    p_cam = np.stack([x, y, depth_z], axis=-1)
    return p_cam @ np.asarray(c2w)[:3, :3].T + np.asarray(c2w)[:3, 3]
