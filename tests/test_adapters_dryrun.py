"""Dry runs: every adapter writes inspectable upstream inputs that parse with the upstream format's rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.re10k import parse_camera_file

from baselines.cameractrl import CameraCtrlMethod
from baselines.cameractrl import convert as cc
from baselines.gen3c import Gen3cMethod
from baselines.seva import SevaMethod
from baselines.seva import convert as sv
from baselines.upstream import DryRunComplete
from baselines.viewcrafter import ViewCrafterMethod
from baselines.viewcrafter import convert as vc
from baselines.voyager import VoyagerMethod
from tests.fake_upstream.layout import make_request

ALL = [CameraCtrlMethod, ViewCrafterMethod, Gen3cMethod, SevaMethod, VoyagerMethod]


@pytest.fixture(autouse=True)
def _no_upstream_configured(monkeypatch):
    for cls in ALL:
        for req in cls.requirements():
            monkeypatch.delenv(req.env, raising=False)


def dry_run(cls, tmp_path, options=None, **request_kw):
    method = cls({"dry_run": "true", **(options or {})})
    method.setup()  # a dry run needs no checkout, interpreter or weights
    request = make_request(tmp_path, **request_kw)
    with pytest.raises(DryRunComplete) as info:
        method.generate(request)
    up = request.scratch_dir / "upstream"
    assert str(info.value) == f"dry run: upstream inputs written to {up}"
    return method, request, up


def _job(up, k):
    return json.loads((up / f"chunk_{k:02d}" / "job.json").read_text())


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_every_dry_run_writes_jobs_clip_record_and_worker_command(cls, tmp_path):
    method, request, up = dry_run(cls, tmp_path)
    clip = json.loads((up / "clip.json").read_text())
    assert clip["upstream"]["commit"] == cls.upstream.commit and len(clip["upstream"]["commit"]) == 40
    command = json.loads((up / "worker_command.json").read_text())
    assert command["argv"][0] == f"<{cls.env_prefix}_PYTHON>" and command["argv"][1].endswith("upstream_worker.py")
    assert len(command["requests"]) == len(clip["chunks"])
    owned = sorted(g for c in clip["chunks"] for g in c["owned_global"])
    assert owned == list(range(64))
    job0 = _job(up, 0)
    assert job0["harness"]["condition_image"] and Image.open(job0["harness"]["condition_image"]).size == tuple(
        job0["harness"]["native_wh"]
    )
    assert method.info["dry_run"] is True


def test_cameractrl_pose_files_parse_as_realestate10k(tmp_path):
    _, request, up = dry_run(CameraCtrlMethod, tmp_path, {"translation_scale": "2.0"})
    starts = [0, 24, 48]
    for k, start in enumerate(starts):
        cams = parse_camera_file(up / f"chunk_{k:02d}" / "pose.txt")
        assert len(cams.w2c) == 25  # --num_frames of SVD-xt
        idx = [min(start + i, 63) for i in range(25)]
        assert cams.timestamps_us.tolist() == idx
        back = cc.poses_from_pose_file(cams.w2c, request.c2w[0], translation_scale=2.0)
        np.testing.assert_allclose(back, request.c2w[idx], atol=1e-6)
    official = json.loads((up / "official_cli.json").read_text())["chunk_00"]
    assert official[official.index("--original_pose_width") + 1] == "576"
    assert official[official.index("--num_frames") + 1] == "25"
    assert _job(up, 1)["harness"]["condition_from"] == {"chunk": 0, "local_frame": 24}


def test_viewcrafter_cameras_are_pytorch3d_and_scale_is_deferred_to_dust3r(tmp_path):
    _, request, up = dry_run(ViewCrafterMethod, tmp_path)
    job = _job(up, 1)
    R, T = np.load(job["upstream"]["R_p3d"]), np.load(job["upstream"]["T_p3d"])
    assert R.shape == (25, 3, 3) and T.shape == (25, 3)
    back = vc.harness_c2w_from_render_cameras(R, T, request.c2w[0])
    np.testing.assert_allclose(back, request.c2w[24:49], atol=1e-10)
    scale = job["harness"]["scale"]
    assert scale["policy"] == "depth-median"
    assert np.isclose(scale["harness_median_depth"], np.median(request.reference_depth))
    assert job["upstream"]["render_hw"] == [288, 512] and job["upstream"]["video_hw"] == [576, 1024]


def test_viewcrafter_without_dataset_depth_falls_back_to_the_fixed_scale(tmp_path):
    _, _, up = dry_run(ViewCrafterMethod, tmp_path, {"translation_scale": "0.5"}, depth=False)
    assert _job(up, 0)["harness"]["scale"] == {"policy": "fixed", "factor": 0.5}


def test_gen3c_single_call_padded_to_121(tmp_path):
    _, request, up = dry_run(Gen3cMethod, tmp_path)
    job = _job(up, 0)
    w2c = np.load(job["upstream"]["w2c"])
    assert w2c.shape == (121, 4, 4) and job["upstream"]["num_video_frames"] == 121
    np.testing.assert_allclose(w2c[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(w2c[64:], np.repeat(w2c[63:64], 57, axis=0))
    c2w_rel_10 = cameras.invert_rigid(request.c2w[0]) @ request.c2w[10]
    np.testing.assert_allclose(c2w_rel_10, np.linalg.inv(w2c[10]), atol=1e-10)
    assert np.load(job["upstream"]["K"]).shape == (121, 3, 3)


def test_seva_scene_folder_parses_with_reconfusion_rules(tmp_path):
    _, request, up = dry_run(SevaMethod, tmp_path)
    scene = up / "chunk_00" / "seva_scene"
    c2w, Ks = sv.parse_transforms(json.loads((scene / "transforms.json").read_text()))
    np.testing.assert_allclose(request.c2w[0][None] @ c2w, request.c2w, atol=1e-10)
    split = json.loads((scene / "train_test_split_1.json").read_text())
    assert split["train_ids"] == [0] and len(split["test_ids"]) == 63
    assert Image.open(scene / "images" / "frame_0000.png").size == (1024, 576)
    argv = json.loads((up / "official_cli.json").read_text())["chunk_00"]
    assert argv[argv.index("--task") + 1] == "img2trajvid"


def test_voyager_condition_folder_in_create_input_layout(tmp_path):
    _, request, up = dry_run(VoyagerMethod, tmp_path, {"depth_source": "dataset"})
    folder = up / "chunk_00" / "input"
    renders = sorted((folder / "video_input").glob("render_*.png"))
    assert len(renders) == 49 and Image.open(renders[0]).size == (768, 512)
    mask = np.asarray(Image.open(folder / "video_input" / "mask_0000.png"))
    assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255} and mask.mean() > 250  # frame 0 sees everything
    ranges = json.loads((folder / "depth_range.json").read_text())
    assert len(ranges) == 49 and all(len(r) == 2 and r[0] <= r[1] for r in ranges)
    assert np.load(folder / "ref_depth.npy").shape == (512, 768)
    assert _job(up, 1)["upstream"]["input_path"] is None  # chunk 1 needs chunk 0's generated RGB-D
    render0 = np.asarray(Image.open(renders[0])).astype(int)
    reference = np.asarray(Image.open(folder / "ref_image.png")).astype(int)
    assert np.abs(render0 - reference).mean() < 8  # render 0 is the reference, re-splatted at half size


def test_voyager_with_moge_depth_writes_cameras_only(tmp_path):
    _, _, up = dry_run(VoyagerMethod, tmp_path)
    job = _job(up, 0)
    assert job["upstream"]["input_path"] is None and "MoGe" in job["upstream"]["renders"]
    assert np.load(up / "chunk_00" / "w2c_opencv_rel_harness_units.npy").shape == (49, 4, 4)
