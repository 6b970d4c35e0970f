import numpy as np
import pytest

from baselines.depth_warp import DepthWarpMethod, PointCloud, splat, warp_reference
from gac_bench import cameras
from gac_bench.api import GenerationRequest, UnsupportedRequest
from tests.fixtures import plane_texture, render_plane_view

H, W = 36, 64
K = cameras.intrinsics_matrix(38.4, 38.4, 32.0, 18.0)


def view(tx: float, tz: float = 0.0):
    c2w = np.eye(4)
    c2w[:3, 3] = [tx, 0.0, tz]
    rgb, depth = render_plane_view(plane_texture(), K, c2w, H, W)
    return c2w, rgb, depth


def test_warp_to_the_same_view_is_the_identity():
    c2w, rgb, depth = view(0.0)
    warped, valid = warp_reference(rgb, depth, K, c2w, c2w)
    assert valid.all() and (warped == rgb).all()


def test_warp_to_a_shifted_view_matches_its_render_where_valid():
    c2w_a, rgb_a, depth_a = view(0.0)
    c2w_b, rgb_b, _ = view(0.3)
    warped, valid = warp_reference(rgb_a, depth_a, K, c2w_a, c2w_b)
    assert 0.5 < valid.mean() < 1.0  # the part of b that a never saw is a hole
    err = np.abs(warped[valid].astype(int) - rgb_b[valid].astype(int)).mean()
    wrong = np.abs(np.roll(warped, 2, axis=1)[valid].astype(int) - rgb_b[valid].astype(int)).mean()
    assert err < 0.5 * wrong  # aligned to sub-pixel accuracy, not just plausible colours


def test_zbuffer_keeps_the_nearest_point():
    xyz = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 0.0, 3.0]], np.float32)
    rgb = np.array([[10, 10, 10], [200, 0, 0], [0, 0, 90]], np.uint8)
    image, depth, valid = splat(PointCloud(xyz, rgb), K, np.eye(4), H, W)
    assert valid.sum() == 1 and (image[valid] == [200, 0, 0]).all() and depth[valid][0] == pytest.approx(1.0)


def test_method_fills_holes_and_needs_dataset_depth():
    poses = [view(0.05 * i) for i in range(6)]
    c2w = np.stack([p[0] for p in poses])
    req = GenerationRequest("c", poses[0][1], K, c2w, H, W, 0, "dataset", None, reference_depth=poses[0][2])
    frames = DepthWarpMethod().generate(req)
    assert frames.shape == (6, H, W, 3) and (frames[0] == poses[0][1]).all()
    _, valid = warp_reference(poses[0][1], poses[0][2], K, c2w[0], c2w[5])
    assert (~valid).sum() > 20 and frames[5][~valid].mean() > 20  # the holes were inpainted, not left black
    err_warp = np.abs(frames[5].astype(int) - poses[5][1].astype(int)).mean()
    err_identity = np.abs(poses[0][1].astype(int) - poses[5][1].astype(int)).mean()
    assert err_warp < 0.5 * err_identity
    with pytest.raises(UnsupportedRequest, match="needs the dataset's depth"):
        DepthWarpMethod().generate(GenerationRequest("c", poses[0][1], K, c2w, H, W, 0, "dataset", None))
