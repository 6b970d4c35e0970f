"""gac-tiny trains (overfits one clip), resumes, and samples through the harness method on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from gac.testing import fixture_trajectory, render_planes, write_fixture_clip, write_tiny_vae  # noqa: E402
from gac_bench import cameras  # noqa: E402
from gac_bench.api import GenerationRequest, MethodUnavailable  # noqa: E402

H, W = 32, 64
TRAIN = ["--preset", "gac-tiny", "--width", str(W), "--height", str(H), "--device", "cpu", "--warmup", "5",
         "--lr", "3e-3", "--frames", "3", "--max-stride", "1", "--log-every", "1000"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("gac_train")
    write_fixture_clip(root / "data", n=16, height=H, width=W)
    write_tiny_vae(root / "vae")
    from gac.train import main

    out = main(TRAIN + ["--data-root", str(root / "data"), "--vae", str(root / "vae"), "--out", str(root / "run"),
                        "--steps", "80", "--fixed-sample"])  # fmt: skip
    yield root, out
    torch.set_num_threads(n)


def test_overfits_one_clip_loss_falls_by_a_large_factor(trained):
    _, out = trained
    losses = [h["loss"] for h in out["history"]]
    assert len(losses) == 80 and all(np.isfinite(losses))
    assert losses[0] / np.mean(losses[-5:]) > 10
    # each step logs the host seconds spent making its batches: positive, and at most the step's share of the run
    host = np.array([h["host_s"] for h in out["history"]])
    assert (host > 0).all() and host.sum() <= out["history"][-1]["elapsed_s"]


def test_checkpoint_is_safetensors_plus_config_and_resumes(trained):
    root, out = trained
    ckpt = Path(out["checkpoint"])
    assert {p.name for p in ckpt.iterdir()} >= {"model.safetensors", "config.json", "optimizer.safetensors", "vae"}
    from gac.train import main

    again = main(TRAIN + ["--data-root", str(root / "data"), "--vae", str(root / "vae"), "--out", str(root / "run"),
                          "--steps", "82", "--resume"])  # fmt: skip
    assert [h["step"] for h in again["history"]] == [81, 82]


def _request(tmp_path, n=6):
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    c2w = fixture_trajectory(n)
    img, depth = render_planes(K, c2w[0], H, W)
    return GenerationRequest("fix00", img, K, c2w, H, W, 7, "dataset", tmp_path, depth)


def test_method_samples_frames_and_geometry(trained, tmp_path):
    from gac.method import GaCMethod

    root, out = trained
    method = GaCMethod({"checkpoint": out["checkpoint"], "steps": "2", "emit_geometry": "true"}, device="cpu")
    req = _request(tmp_path)
    frames = method.generate(req)
    assert frames.shape == (6, H, W, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], req.reference_image)
    assert len(list((tmp_path / "geometry").glob("*.npy"))) == 6
    again = GaCMethod({"checkpoint": out["checkpoint"], "steps": "2"}, device="cpu").generate(req)
    assert again.shape == frames.shape
    third = GaCMethod({"checkpoint": out["checkpoint"], "steps": "2"}, device="cpu").generate(req)
    np.testing.assert_array_equal(again, third)


def test_method_without_or_with_bad_checkpoint_says_what_to_do(trained, tmp_path, monkeypatch):
    from gac.method import GaCMethod

    monkeypatch.setattr("gac.method.SHIPPED_CHECKPOINT", tmp_path / "no-shipped-model")  # a checkout without weights
    with pytest.raises(MethodUnavailable, match="checkpoint=PATH"):
        GaCMethod({}, device="cpu").setup()
    with pytest.raises(MethodUnavailable, match="config.json and model.safetensors"):
        GaCMethod({"checkpoint": str(tmp_path)}, device="cpu").setup()
    root, out = trained
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = (Path(out["checkpoint"]) / "config.json").read_text().replace('"hidden_size": 64', '"hidden_size": 32')
    (bad / "config.json").write_text(cfg)
    os.symlink(Path(out["checkpoint"]) / "model.safetensors", bad / "model.safetensors")
    with pytest.raises(MethodUnavailable, match="mismatched checkpoint"):
        GaCMethod({"checkpoint": str(bad)}, device="cpu").setup()


def test_context_t_out_of_range_fails_before_any_clip():
    from gac.method import GaCMethod

    for bad in ("x", "1", "-0.1"):
        with pytest.raises(ValueError, match="context_t"):
            GaCMethod({"context_t": bad}, device="cpu")
    assert GaCMethod({"context_t": "0.2"}, device="cpu").config.context_t == 0.2


def test_method_is_registered_as_gac():
    from gac_bench.registry import get_method_class

    cls = get_method_class("gac")
    assert cls.__name__ == "GaCMethod" and cls.uses_dataset_depth


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GAC_BENCH_RUN_SLOW") != "1", reason="set GAC_BENCH_RUN_SLOW=1")
def test_overfits_a_real_synthroom_clip(tmp_path):
    """The same overfitting check on synthroom's room00 (rendered on first use), read at 64x32 like the fixture."""
    from gac.train import main
    from gac_bench.datasets.synthroom import ensure_synthroom

    write_tiny_vae(tmp_path / "vae")
    root = ensure_synthroom(progress=False)
    out = main(TRAIN + ["--data-root", str(root), "--clips", "room00", "--max-frames", "40", "--vae",
                        str(tmp_path / "vae"), "--out", str(tmp_path / "run"), "--steps", "80", "--fixed-sample"])  # fmt: skip
    losses = [h["loss"] for h in out["history"]]
    assert losses[0] / np.mean(losses[-5:]) > 10
