"""gac.prepare_geometry: depth for clips without it, in the dataset's units, resumable and shardable; tested with a
stand-in estimator that sees the true depth through an unknown scale and world frame."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gac import prepare_geometry as pg
from gac.testing import write_fixture_clip
from gac_bench import cameras
from gac_bench.datasets.re10k import Re10kRawReader

H, W = 32, 64
SCALE = 0.137  # estimator units per dataset unit (unknown to the code under test)


class StandIn:
    """Looks the true depth and poses up by frame content, then reports them in its own units and world frame."""

    name = "stand-in"

    def __init__(self, truth: dict, device: str = "cpu", weights=None):
        self.truth, self.calls = truth, 0
        rng = np.random.default_rng(5)
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        self.world = cameras.to_homogeneous(np.concatenate([q * np.sign(np.linalg.det(q)), rng.normal(size=(3, 1))], 1))

    def estimate(self, frames):
        self.calls += 1
        keys = [frames[i].tobytes() for i in range(len(frames))]
        depth = np.stack([self.truth[k][0] for k in keys]) * SCALE
        c2w = np.stack([self.truth[k][1] for k in keys]).copy()
        c2w[:, :3, 3] *= SCALE
        return pg.DepthPrediction(depth, np.ones_like(depth), self.world[None] @ c2w)


@pytest.fixture()
def data(tmp_path):
    root = tmp_path / "re10k"
    for i, cid in enumerate(["clipA", "clipB", "clipC"]):
        write_fixture_clip(root, clip_id=cid, n=10, height=H, width=W, seed=i)
    truth_dir = tmp_path / "truth"
    shutil.move(str(root / "depth"), truth_dir)  # the data root ships no depth, like RealEstate10K
    reader = Re10kRawReader(root / "cameras", root / "frames", W, H, truth_dir)
    truth = {}
    for cid in ["clipA", "clipB", "clipC"]:
        clip = reader.load_clip(cid)
        for i in range(clip.num_frames):
            truth[clip.frame(i).tobytes()] = (clip.depth(i), np.asarray(clip.c2w[i]))
    return root, truth_dir, truth


def _args(root, *extra):
    return ["--data-root", str(root), "--width", str(W), "--height", str(H), "--device", "cpu",
            "--estimator", "tests.test_gac_prepare_geometry:make_stand_in", "--window", "4", *extra]  # fmt: skip


_TRUTH: dict = {}
_MADE: list = []


def make_stand_in(device, weights):
    _MADE.append(StandIn(_TRUTH, device, weights))
    return _MADE[-1]


def test_depth_in_dataset_units_readable_by_training(data):
    root, truth_dir, truth = data
    _TRUTH.clear(), _TRUTH.update(truth)
    assert pg.main(_args(root)) == 0
    reader = Re10kRawReader(root / "cameras", root / "frames", W, H, root / "depth")
    ref = Re10kRawReader(root / "cameras", root / "frames", W, H, truth_dir)
    for cid in ["clipA", "clipC"]:
        clip, gt = reader.load_clip(cid), ref.load_clip(cid)
        assert clip.has_depth
        for i in (0, 4, 9):  # window starts, middles and the last (one-frame) window
            np.testing.assert_allclose(clip.depth(i), gt.depth(i), rtol=1e-4)
    rec = json.loads((root / "depth" / "clipA" / "geometry.json").read_text())
    assert rec["frames"] == 10 and rec["estimator"] == "stand-in" and len(rec["windows"]) == 3
    np.testing.assert_allclose([w["scale"] for w in rec["windows"]], 1 / SCALE, rtol=1e-6)
    assert len(list((root / "depth" / "clipA" / "confidence").glob("*.npy"))) == 10


def test_resume_skips_finished_clips_and_redoes_a_partial_one(data):
    root, _, truth = data
    _TRUTH.clear(), _TRUTH.update(truth)
    assert pg.main(_args(root, "--shard", "1/2")) == 0  # clips A and C
    assert not (root / "depth" / "clipB").exists() and (root / "depth" / "clipC" / "geometry.json").is_file()
    (root / "depth" / "clipC" / "geometry.json").unlink()  # as if killed before the clip finished
    _MADE.clear()
    assert pg.main(_args(root)) == 0
    assert _MADE[0].calls == 6  # clips B and C again, three windows each; A was skipped
    assert all((root / "depth" / c / "geometry.json").is_file() for c in ["clipA", "clipB", "clipC"])


def test_a_static_camera_is_refused_and_a_corrupt_clip_fails_alone(data, capsys):
    root, _, truth = data
    _TRUTH.clear(), _TRUTH.update(truth)
    with pytest.raises(pg.GeometryError, match="barely moves"):
        pg.scale_to_dataset(np.repeat(np.eye(4)[None], 3, 0), np.repeat(np.eye(4)[None], 3, 0))
    frame = sorted((root / "frames" / "clipB").glob("*.png"))[5]
    frame.write_bytes(b"truncated")  # clip B cannot be read: it fails, A and C are written, the run exits 1
    assert pg.main(_args(root)) == 1
    assert "1 of 3 clips failed: clipB" in capsys.readouterr().err
    assert (root / "depth" / "clipA" / "geometry.json").is_file() and (root / "depth" / "clipC" / "geometry.json").is_file()
    assert not (root / "depth" / "clipB" / "geometry.json").is_file()


def test_missing_vggt_and_bad_arguments_are_one_line(data, capsys):
    root, _, _ = data
    assert pg.main(_args(root, "--clips", "nope")) == 2
    assert "clips ['nope'] are not under" in capsys.readouterr().err
    assert pg.main(["--data-root", str(root), "--width", str(W), "--height", str(H), "--estimator", "vggt",
                    "--device", "cpu", "--weights", str(root / "missing.pt")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("gac.prepare_geometry: ") and ("vggt" in err) and err.count("\n") == 1
    assert pg.main(["--data-root", str(root / "empty"), "--width", "64", "--height", "32"]) == 2


def test_uncrop_puts_maps_back_at_the_frame_size():
    from gac_bench.poses.vggt import vggt_crop_plan

    plan = vggt_crop_plan(700, 400)  # a tall frame: VGGT crops rows
    assert plan.top > 0
    maps = np.full((2, *plan.out_hw), 3.0, np.float32)
    out = pg.uncrop_to_frames(maps, plan)
    assert out.shape == (2, 700, 400)
    assert out[:, 350].min() == 3.0 and out[:, 0].max() == 0.0 and out[:, -1].max() == 0.0


def test_dl3dv_scenes_get_depth_named_by_frame_that_training_reads(tmp_path):
    from argparse import Namespace

    from gac.testing import write_fixture_dl3dv_scene
    from gac.train import load_training_clips
    from gac_bench.datasets.dl3dv import Dl3dvReader

    root = tmp_path / "dl3dv"
    ids = ["c" * 64, "d" * 64]
    for seed, sid in enumerate(ids):
        write_fixture_dl3dv_scene(root / "2K", scene_id=sid, n=9, height=H, width=W, seed=seed)
    plain = Dl3dvReader(root, W, H)
    _TRUTH.clear()
    for sid in ids:  # the true depth of each frame, rendered from the scene's own poses
        clip = plain.load_clip(sid)
        K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
        for i in range(clip.num_frames):
            from gac.testing import render_planes

            depth = render_planes(K, clip.c2w[i], H, W, ids.index(sid))[1]
            _TRUTH[clip.frame(i).tobytes()] = (depth, np.asarray(clip.c2w[i]))
    assert pg.main(_args(root)) == 0
    assert sorted(p.name for p in (root / "depth" / ids[0]).glob("*.npy"))[0] == "frame_00001.npy"
    args = Namespace(split=None, clips=None, data_root=str(root), width=W, height=H, max_frames=None,
                     load_workers=1)  # fmt: skip
    arrays = load_training_clips(args)
    assert len(arrays) == 2 and arrays[0].depth is not None
    truth = _TRUTH[plain.load_clip(ids[0]).frame(4).tobytes()][0]
    np.testing.assert_allclose(arrays[0].depth[4].astype(np.float32), truth, rtol=2e-3)  # float16 in training


def test_pixelsplat_chunks_get_depth_by_timestamp_that_training_reads(tmp_path):
    from argparse import Namespace

    from gac.train import load_training_clips
    from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout
    from tests.test_datasets_fixtures import make_clip, write_chunks

    root = tmp_path / "re10k-chunks"
    write_chunks(root, [make_clip("00c0ffee00c0ffee", 10, seed=1)])
    clip = Re10kDataRoot(detect_re10k_layout(root), W, H).load_clip("00c0ffee00c0ffee")
    _TRUTH.clear()
    for i in range(clip.num_frames):  # depth i + 1 everywhere on frame i, in the dataset's units
        _TRUTH[clip.frame(i).tobytes()] = (np.full((H, W), i + 1.0, np.float32), np.asarray(clip.c2w[i]))
    assert pg.main(_args(root)) == 0
    written = sorted((root / "depth" / "00c0ffee00c0ffee").glob("*.npy"))
    assert [p.stem for p in written] == [str(int(t)) for t in sorted(clip.timestamps_us)]
    args = Namespace(split=None, clips=None, data_root=str(root), width=W, height=H, max_frames=None,
                     load_workers=1)  # fmt: skip
    arrays = load_training_clips(args)
    assert [float(arrays[0].depth[i][0, 0]) for i in (0, 3, 9)] == [1.0, 4.0, 10.0]
