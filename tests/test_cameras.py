import numpy as np
import pytest

from gac_bench import cameras


def random_c2w(rng, n=5):
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        out[i, :3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
        out[i, :3, 3] = rng.normal(size=3) * 3
    return out


def test_invert_round_trip_and_identity():
    c2w = random_c2w(np.random.default_rng(0))
    w2c = cameras.c2w_to_w2c(c2w)
    np.testing.assert_allclose(cameras.w2c_to_c2w(w2c), c2w, atol=1e-12)
    np.testing.assert_allclose(w2c @ c2w, np.tile(np.eye(4), (len(c2w), 1, 1)), atol=1e-12)
    np.testing.assert_allclose(w2c, np.linalg.inv(c2w), atol=1e-12)


def test_relative_to_first_starts_at_identity_and_preserves_relative_motion():
    c2w = random_c2w(np.random.default_rng(1))
    rel = cameras.relative_to_first(c2w)
    np.testing.assert_allclose(rel[0], np.eye(4), atol=1e-12)
    # the relative pose between any two frames is unchanged
    np.testing.assert_allclose(cameras.relative_pose(rel[2], rel[4]), cameras.relative_pose(c2w[2], c2w[4]), atol=1e-12)


def test_opengl_opencv_round_trip_flips_y_and_z():
    c2w = random_c2w(np.random.default_rng(2))
    gl = cameras.opencv_to_opengl(c2w)
    np.testing.assert_allclose(cameras.opengl_to_opencv(gl), c2w, atol=1e-12)
    np.testing.assert_allclose(gl[:, :3, 1], -c2w[:, :3, 1])  # camera up axis flips
    np.testing.assert_allclose(gl[:, :3, 2], -c2w[:, :3, 2])  # OpenGL looks down -z
    np.testing.assert_allclose(gl[:, :3, 3], c2w[:, :3, 3])  # camera centre unchanged


def test_intrinsics_normalised_pixels_round_trip():
    K_norm = cameras.intrinsics_matrix(0.50765, 0.90249, 0.5, 0.5)
    K = cameras.K_norm_to_pixels(K_norm, 640, 360)
    assert K[0, 0] == pytest.approx(324.896) and K[1, 1] == pytest.approx(324.8964)
    np.testing.assert_allclose(cameras.K_pixels_to_norm(K, 640, 360), K_norm)


def test_resize_crop_of_K_matches_reprojection_of_pixel_centres():
    """A world point projects to the same place in the transformed image as the transformed pixel position."""
    K = cameras.intrinsics_matrix(324.9, 324.9, 320.0, 180.0)
    src, dst = (640, 360), (640, 352)
    (rw, rh), (left, top) = cameras.resize_crop_plan(src, dst)
    assert (rw, rh, left, top) == (640, 360, 0, 4)
    K2 = cameras.K_after_resize_crop(K, src, dst)
    assert K2[1, 2] == pytest.approx(176.0) and K2[1, 1] == pytest.approx(324.9)
    # a 1280x720 image halved to 640x360 and cropped to 640x352: projections halve, then shift up by 4 rows
    K_big = cameras.K_after_resize(K, (640, 360), (1280, 720))
    K3 = cameras.K_after_resize_crop(K_big, (1280, 720), (640, 352))
    p = np.array([0.3, -0.2, 2.0])
    uv_big = (K_big @ p / p[2])[:2]
    np.testing.assert_allclose(uv_big * 0.5 - [0, 4], (K3 @ p / p[2])[:2])
    np.testing.assert_allclose((K @ p / p[2])[:2] - [0, 4], (K3 @ p / p[2])[:2])


def test_geodesic_angle_matches_arccos_formula_and_is_precise_near_zero():
    rng = np.random.default_rng(3)
    Ra = random_c2w(rng, 50)[:, :3, :3]
    Rb = random_c2w(rng, 50)[:, :3, :3]
    ref = np.arccos(np.clip((np.trace(np.swapaxes(Ra, -1, -2) @ Rb, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    np.testing.assert_allclose(cameras.geodesic_angle_rad(Ra, Rb), ref, atol=1e-7)
    R = cameras.rotation_about_axis([0.2, 1.0, -0.3], 1e-6)
    assert cameras.geodesic_angle_rad(np.eye(3), R) == pytest.approx(1e-6, rel=1e-6)


def test_plucker_matches_brute_force_loop():
    K = cameras.intrinsics_matrix(5.0, 6.0, 2.2, 1.9)
    c2w = random_c2w(np.random.default_rng(4), 2)
    out = cameras.plucker_rays(K, c2w, 4, 5)
    assert out.shape == (2, 4, 5, 6)
    for n in range(2):
        for v in range(4):
            for u in range(5):
                d_cam = np.array([(u + 0.5 - 2.2) / 5.0, (v + 0.5 - 1.9) / 6.0, 1.0])
                d = c2w[n, :3, :3] @ d_cam
                d /= np.linalg.norm(d)
                o = c2w[n, :3, 3]
                np.testing.assert_allclose(out[n, v, u], np.concatenate([np.cross(o, d), d]), atol=1e-5)


def test_unproject_then_project_returns_pixel_centres():
    K = cameras.intrinsics_matrix(30.0, 30.0, 16.0, 9.0)
    c2w = random_c2w(np.random.default_rng(5), 1)[0]
    depth = np.random.default_rng(6).uniform(1, 5, (18, 32))
    pts = cameras.unproject_depth(depth, K, c2w).reshape(-1, 3)
    uv, z = cameras.project_points(pts, K, c2w)
    u, v = np.meshgrid(np.arange(32) + 0.5, np.arange(18) + 0.5)
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], 1), atol=1e-9)
    np.testing.assert_allclose(z, depth.ravel(), atol=1e-9)


def test_look_at_points_the_optical_axis_at_the_target():
    c2w = cameras.look_at_c2w([1.0, -1.5, 0.0], [2.0, -1.5, 3.0])
    assert cameras.is_rigid(c2w)
    axis = np.array([1.0, 0.0, 3.0]) / np.linalg.norm([1.0, 0.0, 3.0])
    np.testing.assert_allclose(c2w[:3, 2], axis)
    assert c2w[1, 1] > 0.99  # camera y (down) points along world +y, the default down direction
