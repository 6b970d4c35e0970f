"""DL3DV nerfstudio scenes: OpenGL -> OpenCV poses, intrinsics rescaled from the json's size to the images read,
frames in running-number order, prepared depth read back, and bad files named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gac.testing import render_planes, write_fixture_dl3dv_scene
from gac_bench import cameras
from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.dl3dv import Dl3dvReader, find_scenes, frame_number

H, W = 32, 64


def test_poses_intrinsics_and_frames_match_the_scene(tmp_path):
    scene, c2w = write_fixture_dl3dv_scene(tmp_path / "1K", n=8, height=H, width=W, seed=3)
    clip = Dl3dvReader(tmp_path, W, H).load_clip(scene.name)
    np.testing.assert_allclose(clip.c2w, c2w, atol=1e-12)  # OpenCV, in running-number order
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    np.testing.assert_allclose(clip.K, K, atol=1e-9)  # from the json's 4x size back to the images' size
    for i in (0, 5):  # what the renderer shows from the true pose with the true K
        np.testing.assert_array_equal(clip.frame(i), render_planes(K, c2w[i], H, W, 3)[0])


def test_resize_and_crop_follow_the_benchmark_transform(tmp_path):
    scene, c2w = write_fixture_dl3dv_scene(tmp_path, n=4, height=H, width=W)
    clip = Dl3dvReader(tmp_path, 32, 32).load_clip(scene.name)  # square: resize to cover, centre crop
    K = cameras.K_after_resize_crop(cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2), (W, H), (32, 32))
    np.testing.assert_allclose(clip.K, K)
    assert clip.frame(0).shape == (32, 32, 3)


def test_nested_benchmark_layout_and_prepared_depth(tmp_path):
    scene, c2w = write_fixture_dl3dv_scene(tmp_path, scene_id="b" * 64, n=4, height=H, width=W, nested=True)
    assert find_scenes(tmp_path) == {"b" * 64: scene}
    depth_dir = tmp_path / "depth"
    (depth_dir / ("b" * 64)).mkdir(parents=True)
    for i in range(4):
        np.save(depth_dir / ("b" * 64) / f"frame_{i + 1:05d}.npy", np.full((H, W), float(i + 1), np.float32))
    reader = Dl3dvReader(tmp_path, W, H, depth_dir)
    clip = reader.load_clip("b" * 64)
    assert clip.frame_file_names()[:2] == ["frame_00001", "frame_00002"]
    assert clip.has_depth and clip.depth(2)[0, 0] == 3.0


def test_bad_scenes_name_the_file(tmp_path):
    scene, _ = write_fixture_dl3dv_scene(tmp_path, n=4, height=H, width=W)
    meta = json.loads((scene / "transforms.json").read_text())
    meta["frames"][1]["transform_matrix"][0][0] = 7.0  # not a rotation
    (scene / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ClipDataError, match="transforms.json.*rigid"):
        Dl3dvReader(tmp_path, W, H).load_clip(scene.name)
    (scene / "transforms.json").write_text('{"w": 4, "frames": []')  # truncated
    with pytest.raises(ClipDataError, match="transforms.json: not a readable"):
        Dl3dvReader(tmp_path, W, H).load_clip(scene.name)
    with pytest.raises(ClipDataError, match="no DL3DV scene"):
        Dl3dvReader(tmp_path, W, H).load_clip("missing")


def test_a_missing_frame_is_named(tmp_path):
    scene, _ = write_fixture_dl3dv_scene(tmp_path, n=4, height=H, width=W)
    (scene / "images_4" / "frame_00003.png").unlink()
    with pytest.raises(ClipDataError, match="1 of 4 frames missing.*frame_00003"):
        Dl3dvReader(tmp_path, W, H).load_clip(scene.name)


def test_frame_numbers():
    assert frame_number("images/frame_00012.png") == 12
    with pytest.raises(ValueError, match="running number"):
        frame_number("images/cover.png")
