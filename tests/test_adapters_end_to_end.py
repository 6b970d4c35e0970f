"""The five adapters end to end against the FAKE upstream worker: conversion, protocol, chaining, stitching.

The fake encodes the pose index in red, the chunk in green and the condition image's mean red in blue (see
tests/fake_upstream/fake_worker.py), so the returned frames show which call made them and from what.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gac_bench.api import MethodUnavailable
from gac_bench.registry import get_method_class

from baselines.cameractrl import CameraCtrlMethod
from baselines.cameractrl import convert as cameractrl_convert
from baselines.gen3c import convert as gen3c_convert
from baselines.seva import convert as seva_convert
from baselines.viewcrafter import convert as viewcrafter_convert
from baselines.voyager import convert as voyager_convert
from baselines.gen3c import Gen3cMethod
from baselines.seva import SevaMethod
from baselines.upstream.errors import WorkerError
from baselines.viewcrafter import ViewCrafterMethod
from baselines.voyager import VoyagerMethod
from tests.fake_upstream.fake_worker import FAKE_DEPTH
from tests.fake_upstream.layout import fake_installation, make_request

ALL = [CameraCtrlMethod, ViewCrafterMethod, Gen3cMethod, SevaMethod, VoyagerMethod]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for cls in ALL:
        for req in cls.requirements():
            monkeypatch.delenv(req.env, raising=False)
    for switch in ("CRASH_ON", "HANG_ON", "FAIL_ON", "FAIL_LOAD"):
        monkeypatch.delenv(f"FAKE_UPSTREAM_{switch}", raising=False)


@pytest.fixture(autouse=True)
def _small_native_resolutions(monkeypatch):
    """Same code paths at 1/8 of each method's working size, so the fake's PNG traffic stays small.

    The real sizes are checked by the dry-run tests; the aspect ratios are kept.
    """
    monkeypatch.setattr(cameractrl_convert, "NATIVE_WH", (144, 80))
    monkeypatch.setattr(viewcrafter_convert, "NATIVE_WH", (128, 72))
    monkeypatch.setattr(viewcrafter_convert, "DUST3R_WH", (64, 36))
    monkeypatch.setattr(gen3c_convert, "NATIVE_WH", (160, 88))
    monkeypatch.setattr(seva_convert, "NATIVE_WH", (128, 72))
    monkeypatch.setattr(voyager_convert, "NATIVE_WH", (96, 64))


def _pose_channel(frames):
    return frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 0].astype(int)


def _source_channel(frames):
    return frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 2].astype(int)


def test_cameractrl_chains_chunks_resizes_back_and_survives_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_CRASH_ON", "crashing-clip")
    method = CameraCtrlMethod(fake_installation(tmp_path / "install", CameraCtrlMethod))
    method.setup()
    try:
        frames = method.generate(make_request(tmp_path, "a"))
        with pytest.raises(WorkerError, match=r"died \(exit code 3\)"):
            method.generate(make_request(tmp_path, "crashing-clip"))
        again = method.generate(make_request(tmp_path, "c"))
    finally:
        method._worker.close()
    assert frames.shape == (64, 352, 640, 3) and frames.dtype == np.uint8
    assert np.abs(_pose_channel(frames) - np.arange(64)).max() <= 1  # frame i was generated for pose i
    blue = _source_channel(frames)
    assert (blue[25:49] == 24).all() and (blue[49:] == 48).all()  # chunks 1, 2 start from frames 24, 48
    assert method._worker.starts == 2 and np.array_equal(frames, again)
    log = (tmp_path / "crashing-clip" / "upstream" / "worker.log").read_text()
    assert "fake upstream: crashing on crashing-clip" in log
    assert method.info["chunks"] == [0, 24, 48] and method.info["translation_scale"] == 1.0
    upstream = tmp_path / "a" / "upstream"  # after success the bulky outputs go, the records stay
    assert not (upstream / "chunk_00" / "output").exists() and (upstream / "chunk_00" / "job.json").is_file()
    assert (tmp_path / "crashing-clip" / "upstream" / "chunk_00" / "condition.png").is_file()  # kept for a rerun


def _generate_kept(cls, tmp_path):
    """One clip through the fake worker, keeping the upstream folders: (frames, request, method)."""
    method = cls({**fake_installation(tmp_path / "install", cls), "keep_upstream": "true"})
    method.setup()
    request = make_request(tmp_path, "clip")
    try:
        return method.generate(request), request, method
    finally:
        method._worker.close()


@pytest.mark.parametrize("cls", [ViewCrafterMethod, Gen3cMethod, SevaMethod, VoyagerMethod], ids=lambda c: c.name)
def test_adapter_round_trip_through_the_fake_worker(cls, tmp_path):
    frames, request, method = _generate_kept(cls, tmp_path)
    assert frames.shape == (64, 352, 640, 3) and frames.dtype == np.uint8
    first = 1 if cls is VoyagerMethod else 0  # Voyager never returns the reference pose: frame 0 is the reference
    assert np.abs(_pose_channel(frames)[first:] - np.arange(first, 64)).max() <= 1
    scale = json.loads((request.scratch_dir / "upstream" / "scale.json").read_text())
    median = float(np.median(request.reference_depth))
    if cls is ViewCrafterMethod:  # the worker computed the depth-median factor from its own depth
        assert np.isclose(method.info["translation_scale"], FAKE_DEPTH / median)
    if cls is VoyagerMethod:  # the adapter computed it from the worker's depth map
        moge = np.load(request.scratch_dir / "upstream" / "depth" / "moge_depth.npy")
        assert np.isclose(scale["factor_used"], np.median(moge) / median)
        assert (request.scratch_dir / "upstream" / "chunk_01" / "input" / "video_input" / "render_0048.png").is_file()
    if cls is SevaMethod:
        assert scale["spec"]["policy"] == "normalised by SEVA"


def test_missing_installation_fails_in_setup_naming_what_to_set():
    method = ViewCrafterMethod({})
    with pytest.raises(MethodUnavailable, match="GAC_BENCH_VIEWCRAFTER_REPO[\\s\\S]*GAC_BENCH_VIEWCRAFTER_DUST3R"):
        method.setup()


def test_methods_readiness_comes_from_the_environment(tmp_path, monkeypatch):
    """What ``gac-bench methods`` shows: the entry point resolves, and check_available names what to set."""
    for cls in ALL:
        assert get_method_class(cls.name) is cls
        assert f"{cls.env_prefix}_REPO" in cls.check_available()
    options = fake_installation(tmp_path, SevaMethod)
    for req in SevaMethod.requirements():
        monkeypatch.setenv(req.env, options[req.key])
    assert SevaMethod.check_available() is None
    assert VoyagerMethod.check_available({"dry_run": "true"}) is None  # a dry run needs no installation
    monkeypatch.setenv("GAC_BENCH_SEVA_CKPT", str(tmp_path / "nowhere"))
    assert "GAC_BENCH_SEVA_CKPT" in SevaMethod.check_available()


def test_voyager_maps_upstreams_45_frames_to_the_new_poses_of_each_call(tmp_path):
    """Upstream drops decoded frames 0-3 of 49: each call holds its anchor for 4 positions, the 45 frames returned
    are the call's new poses, and call 1 starts from call 0's frame at pose 45 (the fake emulates upstream)."""
    frames, request, _ = _generate_kept(VoyagerMethod, tmp_path)
    chunk_of = frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 1].astype(int)
    assert (chunk_of[1:46] == 0).all() and (chunk_of[46:] == 1).all()
    assert np.abs(_pose_channel(frames)[1:] - np.arange(1, 64)).max() <= 1
    job1 = json.loads((request.scratch_dir / "upstream" / "chunk_01" / "job.json").read_text())["harness"]
    assert job1["pose_index"][:5] == [45, 45, 45, 45, 46] and job1["upstream_drops_leading"] == 4
    blue_1 = _source_channel(frames)[46:]
    assert (np.abs(blue_1 - 45) <= 1).all()  # conditioned on the frame generated at pose 45 (red = 45)
    job0 = json.loads((request.scratch_dir / "upstream" / "chunk_00" / "job.json").read_text())["harness"]
    assert job0["want_depth"] == [44]  # pose 45 is returned frame 44 of call 0


def test_voyager_refuses_a_frame_count_it_cannot_align():
    from baselines.upstream.chunking import plan_held

    chunk = plan_held(64, 49, 4)[0]
    cond = np.zeros((8, 12, 3), np.uint8)
    assert VoyagerMethod.align_output(chunk, np.ones((45, 8, 12, 3), np.uint8), cond).shape == (49, 8, 12, 3)
    with pytest.raises(RuntimeError, match="returned 49 frames for chunk 0; .* returns 45"):
        VoyagerMethod.align_output(chunk, np.ones((49, 8, 12, 3), np.uint8), cond)
