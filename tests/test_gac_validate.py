"""Validation while training: fixed held-out measurements, the camera-swap gap, curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from gac.data import DataConfig  # noqa: E402
from gac.model import build_model, gac_tiny  # noqa: E402
from gac.testing import fixture_clip_and_codec  # noqa: E402
from gac.validate import ValConfig, Validator, plot_curves  # noqa: E402
from gac_bench.metrics.image import PSNR_CAP_DB, psnr_per_frame  # noqa: E402

H, W = 32, 64


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    clip, codec = fixture_clip_and_codec(tmp_path_factory.mktemp("val"), n=30, height=H, width=W)
    return [clip], codec


def _validator(parts, camera, **data):
    clips, codec = parts
    cfg = gac_tiny(camera=camera)
    dcfg = DataConfig(frames_per_sample=3, max_stride=3, **data)
    return cfg, Validator(clips, codec, cfg, dcfg, "cpu", ValConfig(samples=3, psnr_clips=1, psnr_steps=2))


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():  # an "trained-looking" model: the zero-initialised output and camera layers made nonzero
        torch.nn.init.normal_(model.llm2vae.weight, std=0.05)
        for layer in model.layers:
            if layer.attn.cga is not None:
                torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.05)
    return model


def test_camera_swap_gap_is_zero_without_camera_and_nonzero_with_cga(parts):
    cfg, val = _validator(parts, "none")
    assert _validator(parts, "none")[1].run(_model(cfg))["camera_swap_gap"] == 0.0
    cfg, val = _validator(parts, "cga")
    out = val.run(_model(cfg))
    assert abs(out["camera_swap_gap"]) > 1e-6
    assert out["val_loss_image_swap"] == pytest.approx(out["val_loss_image"] + out["camera_swap_gap"])


def test_measurements_are_fixed_and_cover_both_modalities(parts):
    cfg, val = _validator(parts, "cga", pose_anchor="last-context", revisit_prob=0.5, max_gap=1)
    model = _model(cfg, seed=1)
    a, b = val.run(model), val.run(model)
    assert a == b  # same plans, timesteps and noise every time
    assert {"val_loss_image", "val_loss_geometry", "camera_swap_gap", "psnr_first_grid", "psnr_identity"} <= set(a)
    assert model.training  # validation leaves the model as it found it


def test_identity_psnr_is_the_reference_against_the_first_grid(parts):
    cfg, val = _validator(parts, "cga")
    out = val.run(_model(cfg))
    clip = parts[0][0]
    expected = np.mean(psnr_per_frame(np.repeat(clip.frames[:1], 4, axis=0), clip.frames[[3, 6, 9, 12]]))
    assert out["psnr_identity"] == pytest.approx(expected)
    assert psnr_per_frame(clip.frames[:1], clip.frames[:1])[0] == pytest.approx(PSNR_CAP_DB)


def test_curves_are_drawn(tmp_path):
    train = [{"step": s, "loss": 2.0 / s} for s in range(1, 50)]
    val = [{"step": s, "val_loss_image": 1.0 / s, "val_loss_geometry": 0.5 / s, "camera_swap_gap": 0.01 * s,
            "psnr_first_grid": 10 + s / 10, "psnr_identity": 12.0} for s in (10, 20, 30)]  # fmt: skip
    plot_curves(train, val, tmp_path / "curves.png")
    from PIL import Image

    img = Image.open(tmp_path / "curves.png")
    assert img.size[0] > 800 and np.asarray(img).std() > 10
