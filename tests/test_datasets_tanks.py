"""COLMAP models (text and binary, checked against pycolmap) and the Tanks-and-Temples reader."""

from __future__ import annotations

import numpy as np
import pytest

from gac_bench import cameras
from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.colmap_model import (
    ColmapCamera,
    ColmapModelError,
    quaternion_to_rotation,
    read_model,
    rotation_to_quaternion,
)
from gac_bench.datasets.tanks import list_images, natural_key
from gac_bench.real_splits import describe_splits
from gac_bench.splits import get_split
from tests.test_datasets_fixtures import HEIGHT, WIDTH, make_clip, write_tanks_scene

NUM_IMAGES = 80  # Barn-0000 and Barn-0014 need images 0..77


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        axis, angle = rng.normal(size=3), rng.uniform(-np.pi, np.pi)
        R = cameras.rotation_about_axis(axis, angle)
        np.testing.assert_allclose(quaternion_to_rotation(np.array(rotation_to_quaternion(R))), R, atol=1e-12)


@pytest.mark.parametrize("form", ["text", "binary"])
def test_model_matches_pycolmap(tmp_path, form):
    import pycolmap

    scene = write_tanks_scene(tmp_path, "Truck", 12, model=form, drop=("000005.jpg",))
    model = read_model(scene / "sparse" / "0")
    assert model.format == form and len(model.images) == 11
    ref = pycolmap.Reconstruction(str(scene / "sparse" / "0"))
    for image_id, im in ref.images.items():
        mine = model.images[image_id]
        assert mine.name == im.name and mine.camera_id == im.camera_id
        np.testing.assert_allclose(mine.w2c[:3, :4], im.cam_from_world().matrix(), atol=1e-12)
    cam = model.cameras[1]
    assert (cam.model, cam.width, cam.height) == ("PINHOLE", 2 * WIDTH, 2 * HEIGHT)
    np.testing.assert_allclose(cam.K(), ref.cameras[1].calibration_matrix())


def test_poses_come_back_as_c2w(tmp_path):
    scene = write_tanks_scene(tmp_path, "Truck", 6)
    clip = make_clip("Truck", 6)
    by_name = read_model(scene / "sparse" / "0").images_by_name()
    for i in range(6):
        np.testing.assert_allclose(by_name[f"{i + 1:06d}.jpg"].c2w, cameras.w2c_to_c2w(clip.w2c[i]), atol=1e-12)


def test_distorted_cameras_are_refused_unless_zero():
    assert ColmapCamera(1, "SIMPLE_RADIAL", 100, 50, (80.0, 50.0, 25.0, 0.0)).K()[0, 0] == 80.0
    with pytest.raises(ColmapModelError, match="image_undistorter"):
        ColmapCamera(1, "OPENCV", 100, 50, (80.0, 80.0, 50.0, 25.0, 0.1, 0.0, 0.0, 0.0)).K()


def test_truncated_binary_model_is_an_error(tmp_path):
    scene = write_tanks_scene(tmp_path, "Truck", 4, model="binary")
    path = scene / "sparse" / "0" / "images.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ColmapModelError, match="images.bin"):
        read_model(scene / "sparse" / "0")


def test_natural_order():
    names = ["img10.jpg", "img9.jpg", "img100.jpg", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "img9.jpg", "img10.jpg", "img100.jpg"]


@pytest.mark.parametrize("form", ["text", "binary"])
def test_tanks_split_reads_segments(tmp_path, form):
    write_tanks_scene(tmp_path / "tandt", "barn", NUM_IMAGES, model=form)  # 3DGS-style lowercase folder
    split = get_split("tanks-150", tmp_path)
    spec = next(c for c in split.clips if c.clip_id == "Barn-0014")
    clip = split.load_clip(spec)
    assert clip.num_frames == NUM_IMAGES and "tanks-colmap" in clip.layout and form in clip.layout
    fixture = make_clip("Barn", NUM_IMAGES)
    np.testing.assert_allclose(clip.c2w, cameras.w2c_to_c2w(fixture.w2c), atol=1e-9)
    # camera is twice the image size: K scales to the image, then to 640x352
    K_img = cameras.intrinsics_matrix(0.5 * WIDTH, 0.5 * WIDTH, 0.5 * WIDTH, 0.5 * HEIGHT)
    np.testing.assert_allclose(clip.K, cameras.K_after_resize_crop(K_img, (WIDTH, HEIGHT), (640, 352)))
    assert clip.frame(14).shape == (352, 640, 3)
    assert list_images(tmp_path / "tandt" / "barn" / "images")[14].name == "000015.jpg"


def test_tanks_bad_data(tmp_path):
    write_tanks_scene(tmp_path, "Barn", NUM_IMAGES, drop=("000030.jpg",))
    split = get_split("tanks-150", tmp_path)
    specs = {c.clip_id: c for c in split.clips}
    # image 29 (000030.jpg) lies in Barn-0000 and Barn-0014, not in Barn-0029+... which need more images anyway
    with pytest.raises(ClipDataError) as err:
        split.load_clip(specs["Barn-0000"])
    assert "Barn-0000" in str(err.value) and "000030.jpg" in str(err.value) and "COLMAP" in str(err.value)
    with pytest.raises(ClipDataError) as err:
        split.load_clip(specs["Barn-0029"])  # needs images 29..92
    assert "Barn-0029" in str(err.value) and "80 images" in str(err.value)
    with pytest.raises(ClipDataError) as err:
        split.load_clip(specs["Truck-0000"])
    assert "Truck-0000" in str(err.value) and "scene Truck not found" in str(err.value)
    (tmp_path / "Barn" / "images" / "000002.jpg").write_bytes(b"broken")
    write_tanks_scene(tmp_path / "other", "Barn", NUM_IMAGES)
    (tmp_path / "other" / "Barn" / "images" / "000002.jpg").write_bytes(b"broken")
    clip = get_split("tanks-150", tmp_path / "other").load_clip(specs["Barn-0000"])
    with pytest.raises(ClipDataError) as err:
        clip.frame(1)
    assert "Barn-0000" in str(err.value) and "000002.jpg" in str(err.value)


def test_describe_splits_reports_what_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("GAC_BENCH_RE10K", raising=False)
    monkeypatch.delenv("GAC_BENCH_TANKS", raising=False)
    write_tanks_scene(tmp_path, "Barn", 4)
    rows = {r.name: r for r in describe_splits(tmp_path)}
    assert rows["tanks-150"].found and rows["tanks-150"].size == 150
    assert "1/21 scenes" in rows["tanks-150"].detail and "7/150 clips" in rows["tanks-150"].detail
    assert not rows["re10k-test-150"].found and "no RealEstate10K layout" in rows["re10k-test-150"].detail
    rows = {r.name: r for r in describe_splits(None)}
    assert not rows["tanks-150"].found and "GAC_BENCH_TANKS" in rows["tanks-150"].detail
