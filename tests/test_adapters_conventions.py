"""Camera conversions of the five upstream adapters, with real maths: to the upstream form and back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gac_bench import cameras
from gac_bench.datasets.re10k import parse_camera_file, write_camera_file

from baselines.cameractrl import convert as cc
from baselines.gen3c import convert as g3
from baselines.seva import convert as sv
from baselines.upstream import conventions
from baselines.viewcrafter import convert as vc
from baselines.voyager import convert as vy
from baselines.voyager import render
from tests.fake_upstream.layout import known_trajectory

C2W = known_trajectory(64)
K_NATIVE = cameras.intrinsics_matrix(530.0, 528.0, 290.0, 158.0)


def test_scaling_a_c2w_or_its_w2c_is_the_same_similarity():
    s = 3.7
    a = cameras.invert_rigid(conventions.scale_translations(C2W, s))
    b = conventions.scale_translations(cameras.invert_rigid(C2W), s)
    np.testing.assert_allclose(a, b, atol=1e-12)


# ------------------------------------------------------------------------------------------------ CameraCtrl


def test_cameractrl_pose_file_round_trip(tmp_path):
    K_norm, w2c = cc.pose_file_rows(C2W, K_NATIVE, cc.NATIVE_WH, translation_scale=2.5)
    path = tmp_path / "pose.txt"
    write_camera_file(path, "ignored first line", np.arange(64), K_norm, w2c)
    parsed = parse_camera_file(path)  # RealEstate10K rules: 19 numbers a line, rigid 3x4 w2c
    assert len(path.read_text().splitlines()) == 65
    back = cc.poses_from_pose_file(parsed.w2c, C2W[0], translation_scale=2.5)
    np.testing.assert_allclose(back, C2W, atol=1e-6)
    np.testing.assert_allclose(cameras.K_norm_to_pixels(parsed.K_norm[0], *cc.NATIVE_WH), K_NATIVE, atol=1e-5)


def test_cameractrl_sees_chunk_relative_poses_in_file_units():
    K_norm, w2c = cc.pose_file_rows(C2W, K_NATIVE, cc.NATIVE_WH, translation_scale=2.5)
    chunk = slice(24, 49)
    seen = cc.cameractrl_relative_c2w(w2c[chunk])  # what get_relative_pose computes from the chunk's file
    expected = conventions.scale_translations(cameras.relative_to_first(C2W[chunk]), 2.5)
    np.testing.assert_allclose(seen, expected, atol=1e-10)
    np.testing.assert_allclose(seen[0], np.eye(4), atol=1e-12)


def test_cameractrl_aspect_fix_is_identity_only_with_matching_original_pose_size():
    K_norm = cameras.K_pixels_to_norm(K_NATIVE, *cc.NATIVE_WH)
    same = cc.cameractrl_pixel_K(K_norm, cc.NATIVE_WH, original_pose_wh=cc.NATIVE_WH)
    np.testing.assert_allclose(same, K_NATIVE, atol=1e-9)
    default = cc.cameractrl_pixel_K(K_norm, cc.NATIVE_WH, original_pose_wh=(1280, 720))  # the CLI default
    assert not np.allclose(default, K_NATIVE, atol=1e-3)  # why the adapter passes 576x320


# ------------------------------------------------------------------------------------------------ ViewCrafter


def _viewcrafter_reference_construction(c2w_opencv):
    """ViewCrafter's generate_traj_* steps, re-derived: negate camera x, y; invert; transpose R (row vectors)."""
    c2w = np.array(c2w_opencv)
    c2w[:, :3, 0] *= -1
    c2w[:, :3, 1] *= -1
    w2c = np.linalg.inv(c2w)
    return np.swapaxes(w2c[:, :3, :3], 1, 2), w2c[:, :3, 3]


def test_viewcrafter_pytorch3d_cameras_round_trip_and_match_its_construction():
    c2w_rel, R, T = vc.render_cameras(C2W)
    R_ref, T_ref = _viewcrafter_reference_construction(c2w_rel)
    np.testing.assert_allclose(R, R_ref, atol=1e-10)
    np.testing.assert_allclose(T, T_ref, atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-10)
    back = vc.harness_c2w_from_render_cameras(R, 0.8 * T, C2W[0], factor=0.8)
    np.testing.assert_allclose(back, C2W, atol=1e-10)


def test_viewcrafter_pytorch3d_camera_frame_is_opencv_with_x_and_y_negated():
    c2w_rel, R, T = vc.render_cameras(C2W)
    points = np.random.default_rng(0).normal(size=(20, 3)) + [0, 0, 4]
    for i in (0, 17, 40):
        p_cv = points @ cameras.invert_rigid(c2w_rel[i])[:3, :3].T + cameras.invert_rigid(c2w_rel[i])[:3, 3]
        p_p3d = conventions.pytorch3d_camera_points(points, R[i], T[i])
        np.testing.assert_allclose(p_p3d, p_cv * [-1, -1, 1], atol=1e-10)


def test_viewcrafter_dust3r_intrinsics_are_a_2x_downscale():
    K = vc.dust3r_intrinsics(K_NATIVE)
    np.testing.assert_allclose(K[:2], K_NATIVE[:2] / 2)


# ------------------------------------------------------------------------------------------------ GEN3C


def test_gen3c_w2c_relative_to_first_round_trip():
    w2c, Ks = g3.gen3c_cameras(C2W, K_NATIVE)
    np.testing.assert_allclose(w2c[0], np.eye(4), atol=1e-12)
    assert Ks.shape == (64, 3, 3)
    scaled = conventions.scale_translations(w2c, 0.37)  # what the worker does with the scale factor
    np.testing.assert_allclose(g3.harness_c2w_from_gen3c(scaled, C2W[0], factor=0.37), C2W, atol=1e-10)


@pytest.mark.parametrize("n, count", [(1, 121), (64, 121), (121, 121), (122, 241), (241, 241), (242, 361)])
def test_gen3c_frame_count_rule(n, count):
    assert g3.frame_count(n) == count and (count - 1) % 120 == 0


# ------------------------------------------------------------------------------------------------ SEVA


def test_seva_transforms_json_parses_back_with_reconfusion_rules(tmp_path):
    c2w_rel = sv.seva_cameras(C2W)
    meta = sv.transforms_json(c2w_rel, K_NATIVE, sv.NATIVE_WH, "images/frame_0000.png")
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps(meta))
    c2w_cv, Ks = sv.parse_transforms(json.loads(path.read_text()))
    np.testing.assert_allclose(C2W[0][None] @ c2w_cv, C2W, atol=1e-10)
    np.testing.assert_allclose(Ks[5], K_NATIVE)
    assert meta["frames"][0]["file_path"] == "images/frame_0000.png" and meta["frames"][1]["file_path"] is None
    assert sv.split_json(64) == {"train_ids": [0], "test_ids": list(range(1, 64))}


def test_seva_normalisation_discards_the_harness_translation_scale():
    c2w_rel = sv.seva_cameras(C2W)
    a = sv.seva_normalised_translations(c2w_rel, camera_scale=2.0)
    b = sv.seva_normalised_translations(conventions.scale_translations(c2w_rel, 9.1), camera_scale=2.0)
    np.testing.assert_allclose(a, b, atol=1e-10)
    assert np.isclose(np.linalg.norm(a[0]), 2.0)


# ------------------------------------------------------------------------------------------------ Voyager


def test_voyager_cameras_round_trip():
    w2c = vy.voyager_cameras(C2W, factor=1.9)
    np.testing.assert_allclose(w2c[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(vy.harness_c2w_from_voyager(w2c, C2W[0], factor=1.9), C2W, atol=1e-10)


def test_voyager_render_of_the_reference_pose_reproduces_image_and_depth():
    h, w = 48, 64
    K = cameras.intrinsics_matrix(50.0, 50.0, 32.0, 24.0)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 5.0, (h, w))
    points, colors = render.unproject(depth, K, np.eye(4), image)
    rgb, z, mask = render.splat(points, colors, np.eye(4), K, h, w)
    assert mask.all()
    np.testing.assert_array_equal(rgb, image)
    np.testing.assert_allclose(z, depth, rtol=1e-6)


def test_voyager_render_follows_the_camera():
    """A camera moved +x sees the scene shifted left by f * dx / z pixels."""
    h, w = 40, 80
    K = cameras.intrinsics_matrix(40.0, 40.0, 40.0, 20.0)
    image = np.zeros((h, w, 3), np.uint8)
    image[:, 40] = 255  # a vertical line in column 40 on a plane at z = 2
    points, colors = render.unproject(np.full((h, w), 2.0), K, np.eye(4), image)
    c2w = np.eye(4)
    c2w[0, 3] = 0.5  # 40 * 0.5 / 2 = 10 px
    rgb, _, _ = render.splat(points, colors, cameras.invert_rigid(c2w), K, h, w)
    assert (rgb[h // 2, :, 0] == 255).nonzero()[0].tolist() == [30]


def test_voyager_depth_encoding_round_trip():
    rng = np.random.default_rng(2)
    depth = rng.uniform(1.0, 9.0, (30, 40))
    mask = rng.random((30, 40)) > 0.3
    d_norm, depth_range = render.normalise_inverse_depth(depth, mask)
    assert np.all(d_norm[~mask] == d_norm[mask].min())
    back = render.denormalise_depth(d_norm, depth_range)
    np.testing.assert_allclose(back[mask], depth[mask], rtol=1e-5)


# ------------------------------------------------------------------------------------------------ resolution


@pytest.mark.parametrize("native_wh", [(576, 320), (1024, 576), (1280, 704), (768, 512)])
def test_frames_back_keep_the_harness_pixel_grid(native_wh):
    """protocol -> native -> back ('inverse') leaves every covered pixel where it was: K is unchanged."""
    from baselines.upstream.transforms import NativeResolution

    native = NativeResolution((640, 352), native_wh)
    yy, xx = np.mgrid[0:352, 0:640]
    image = np.stack([xx * 255 // 640, yy * 255 // 352, np.full_like(xx, 50)], axis=-1).astype(np.uint8)
    image[100:104, 300:304] = [255, 0, 255]  # a sharp marker
    back = native.frames_to_protocol(native.to_native.image(image)[None])[0]
    x0, y0, x1, y1 = native.to_protocol.covered_box()
    inner = (slice(int(np.ceil(y0)) + 2, int(y1) - 2), slice(int(np.ceil(x0)) + 2, int(x1) - 2))
    smooth = image.copy()
    smooth[96:108, 296:308] = back[96:108, 296:308]  # compare the marker separately
    assert np.abs(back[inner].astype(int) - smooth[inner].astype(int)).max() <= 2
    peak = np.unravel_index(np.argmax(back[..., 2].astype(int) - back[..., 1]), back.shape[:2])
    assert 100 <= peak[0] <= 103 and 300 <= peak[1] <= 303


def test_frames_back_cover_mode_is_the_resize_crop_rule():
    from baselines.upstream.transforms import NativeResolution

    native = NativeResolution((640, 352), (768, 512), frames_back="cover")
    assert native.to_protocol.record()["crop_left_top"] == [0, 37]


def test_gen3c_intrinsics_put_pixel_centres_where_gen3c_does():
    """GEN3C unprojects pixel (i, j) at coordinates (i, j); the harness's centre is (i + 0.5, j + 0.5). Forward
    warping ground-truth depth through GEN3C's convention must land where the true reprojection does (shifted by
    the same half pixel); with the harness K passed unchanged it is off by up to a pixel."""
    from gac_bench import cameras

    W, H = 1280, 704
    K = cameras.intrinsics_matrix(600.0, 600.0, W / 2, H / 2)
    c2w_b = np.eye(4)
    c2w_b[:3, :3] = cameras.rotation_about_axis([0, 1, 0], 0.2)
    c2w_b[:3, 3] = [0.4, -0.1, 0.3]
    w2c_b = cameras.invert_rigid(c2w_b)
    jj, ii = np.meshgrid(np.arange(0, H, 37), np.arange(0, W, 41), indexing="ij")
    depth = 2.0 + (ii + jj) / 1000.0

    def warp(K_used, centre):  # unproject pixel grid coordinates + centre, project into view b
        x = np.stack([(ii + centre - K_used[0, 2]) / K_used[0, 0] * depth,
                      (jj + centre - K_used[1, 2]) / K_used[1, 1] * depth, depth], -1)  # fmt: skip
        xb = x @ w2c_b[:3, :3].T + w2c_b[:3, 3]
        return np.stack([xb[..., 0] / xb[..., 2] * K_used[0, 0] + K_used[0, 2],
                         xb[..., 1] / xb[..., 2] * K_used[1, 1] + K_used[1, 2]], -1)  # fmt: skip

    truth = warp(K, 0.5) - 0.5  # harness reprojection of pixel centres, in GEN3C's integer-centre coordinates
    _, Ks = g3.gen3c_cameras(C2W, K)
    assert np.abs(warp(Ks[0], 0.0) - truth).max() < 1e-6
    assert np.abs(warp(K, 0.0) - truth).max() > 0.5  # what passing the harness K unchanged would do


def _upstream_render_one_frame(points, colors, w2c, K, height, width):
    """Voyager's render_from_cameras_videos for one frame, re-stated from upstream's data_engine/create_input.py
    (commit of the reference notes): sort near to far, fancy-index assignment of the depth buffer, colours of
    the first occurrence. Pixel coordinates use the harness's centres at +0.5 (floor) like render.splat."""
    p_cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = p_cam[:, 2]
    u = np.floor(p_cam[:, 0] / z * K[0, 0] + K[0, 2]).astype(int)
    v = np.floor(p_cam[:, 1] / z * K[1, 1] + K[1, 2]).astype(int)
    ok = (u >= 0) & (u < width) & (v >= 0) & (v < height) & (z > 0)
    rows, cols, depths, cols_rgb = v[ok], u[ok], z[ok], colors[ok]
    order = np.argsort(depths)
    rows, cols, depths, cols_rgb = rows[order], cols[order], depths[order], cols_rgb[order]
    depth_buffer = np.full((height, width), np.inf)
    depth_buffer[rows, cols] = np.minimum(depth_buffer[rows, cols], depths)
    image = np.zeros((height, width, 3), np.uint8)
    flat = rows * width + cols
    unique, first = np.unique(flat, return_index=True)
    image[unique // width, unique % width] = cols_rgb[first]
    return image, depth_buffer


def test_voyager_render_matches_upstream_where_points_share_pixels():
    """Several points per pixel (a near and a far layer seen by a camera that moved): colour of the nearest, depth
    of the farthest, exactly as upstream renders; a nearest-depth z-buffer would differ wherever layers overlap."""
    h, w = 30, 40
    K = cameras.intrinsics_matrix(30.0, 30.0, 20.0, 15.0)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    depth = np.where(np.arange(w)[None, :] < 20, 1.0, 4.0) * np.ones((h, w))
    points, colors = render.unproject(depth, K, np.eye(4), image)
    points = np.concatenate([points, points * 0.5])  # a second, nearer copy of the scene: every pixel is shared
    colors = np.concatenate([colors, 255 - colors])
    c2w = np.eye(4)
    c2w[0, 3] = 0.3
    w2c = cameras.invert_rigid(c2w)
    rgb, z, mask = render.splat(points.astype(np.float64), colors, w2c, K, h, w)
    ref_rgb, ref_z = _upstream_render_one_frame(points.astype(np.float64), colors, w2c, K, h, w)
    np.testing.assert_array_equal(mask, np.isfinite(ref_z))
    np.testing.assert_allclose(z[mask], ref_z[mask], rtol=1e-9)
    np.testing.assert_array_equal(rgb, ref_rgb)
    # the case matters: on many pixels the depth written is not the nearest point's (a z-buffer would differ)
    p_cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    u = np.floor(p_cam[:, 0] / p_cam[:, 2] * 30 + 20).astype(int)
    v = np.floor(p_cam[:, 1] / p_cam[:, 2] * 30 + 15).astype(int)
    ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    nearest = np.full(h * w, np.inf)
    np.minimum.at(nearest, v[ok] * w + u[ok], p_cam[ok, 2])
    assert (z.reshape(-1)[mask.reshape(-1)] > nearest[mask.reshape(-1)] + 0.1).sum() > 100
