"""The inference rewrites of gac.fast_inference: a folded CGA computes the layered model's function (to rounding), and
FP8 GEMMs stay within e4m3's error (issue 14)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from gac.data import DataConfig, SampleMaker  # noqa: E402
from gac.fast_inference import Float8Linear, fold_camera_gate, to_float8  # noqa: E402
from gac.masks import dense_mask  # noqa: E402
from gac.model import build_model, gac_tiny  # noqa: E402
from gac.sample import Rollout, SampleConfig  # noqa: E402
from gac.sequence import build_training_sequence  # noqa: E402
from gac.testing import fixture_clip_and_codec, fixture_trajectory, render_planes  # noqa: E402
from gac_bench import cameras  # noqa: E402

H, W = 32, 64


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return fixture_clip_and_codec(tmp_path_factory.mktemp("gac_fast"), n=16, height=H, width=W)


def trained_like_model(seed: int = 0, **overrides):
    """gac-tiny with CGA's Linear2 and the velocity head away from their zero init, as after training."""
    torch.manual_seed(seed)
    model = build_model(gac_tiny(**overrides))
    with torch.no_grad():
        torch.nn.init.normal_(model.llm2vae.weight, std=0.3)
        for layer in model.layers:
            if layer.attn.cga is not None:
                torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.2)
                torch.nn.init.normal_(layer.attn.cga.proj.bias, std=0.2)
                torch.nn.init.normal_(layer.attn.gen.q_proj.bias, std=0.2)
    return model.eval()


def training_inputs(clip, codec):
    """A packed sequence with prompts, clean context, geometry and noisy targets, and its block mask."""
    maker = SampleMaker([clip], codec, gac_tiny(), DataConfig(frames_per_sample=3, max_stride=1))
    frames, n_ctx = maker.make(np.random.default_rng(0), torch.Generator().manual_seed(0))
    pk = build_training_sequence(gac_tiny(), frames, n_ctx, "geometry", 0.0, generator=torch.Generator().manual_seed(0))
    return pk.inputs, dense_mask(pk.split_id, pk.split_mode)


@torch.no_grad()
def test_folded_cga_is_the_same_function_in_fp32(parts):
    inp, mask = training_inputs(*parts)
    model = trained_like_model()
    layered = model(inp, mask)
    folded = fold_camera_gate(copy.deepcopy(model))
    assert folded.camera_folded and all(layer.attn.q_gate is not None for layer in folded.layers)
    out = folded(inp, mask)
    assert layered.abs().max() > 0.1  # the camera path carries signal: Linear2 is not zero
    torch.testing.assert_close(out, layered, rtol=1e-4, atol=1e-5)
    # the per-item ray term passed in equals the one the model computes itself
    torch.testing.assert_close(folded(inp, mask, camera_terms=folded.camera_terms(inp.rays)), out)


@torch.no_grad()
def test_folded_cga_in_bf16_is_within_bf16_rounding(parts):
    """Against the float32 model, the folded bf16 model errs no more than the layered bf16 model does (x1.5)."""
    inp, mask = training_inputs(*parts)
    model = trained_like_model(1)
    reference = model(inp, mask)
    layered_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    folded_bf16 = fold_camera_gate(copy.deepcopy(model).to(torch.bfloat16))
    err_layered = (layered_bf16(inp, mask).float() - reference).abs().mean()
    err_folded = (folded_bf16(inp, mask).float() - reference).abs().mean()
    assert err_layered > 0  # bf16 does round
    assert err_folded <= 1.5 * err_layered, (float(err_folded), float(err_layered))


def test_folding_leaves_other_camera_modes_alone_and_refuses_training(parts):
    inp, mask = training_inputs(*parts)
    for camera in ("add", "none"):
        model = fold_camera_gate(trained_like_model(camera=camera))
        assert not model.camera_folded and all(layer.attn.q_gate is None for layer in model.layers)
    folded = fold_camera_gate(trained_like_model()).train()
    with pytest.raises(RuntimeError, match="folded"):
        folded(inp, mask)


def _rollout(model, codec, **cfg):
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    c2w = fixture_trajectory(10)
    img, depth = render_planes(K, c2w[0], H, W)
    out = Rollout(model, codec, SampleConfig(steps=3, emit_geometry=True, **cfg)).run(
        img, K, c2w, float(np.median(depth)), seed=0
    )
    return out


def test_folded_rollout_gives_the_layered_frames(parts):
    """Prefill, the per-item ray term shared by the steps, geometry and image items: the same frames and depth."""
    _, codec = parts
    model = trained_like_model(2)
    layered = _rollout(model, codec)
    assert not model.camera_folded  # the default SampleConfig leaves the model as it is (validation trains it on)
    folded = _rollout(model, codec, fold_cga=True)
    assert model.camera_folded
    assert np.abs(layered.frames.astype(int) - folded.frames.astype(int)).max() <= 1
    np.testing.assert_allclose(folded.depth, layered.depth, rtol=1e-3, atol=1e-4)


def test_float8_linear_is_close_to_the_linear_and_pads_short_inputs():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    fp8 = Float8Linear(linear)
    x = torch.randn(18, 64)
    exact, approx = linear(x), fp8(x)
    rel = (approx - exact).norm() / exact.norm()
    assert 1e-4 < rel < 0.06, float(rel)  # quantised (not exact), within e4m3's 3 mantissa bits
    torch.testing.assert_close(fp8(x[:2]), approx[:2])  # 2 rows padded to 16 give the same rows
    assert fp8(torch.randn(3, 5, 64)).shape == (3, 5, 48)
    with pytest.raises(ValueError, match="divisible by 16"):
        Float8Linear(torch.nn.Linear(64, 40))


@torch.no_grad()
def test_fp8_model_converts_every_decoder_linear_but_linear2_and_stays_close(parts):
    inp, mask = training_inputs(*parts)
    model = trained_like_model(3)
    reference = model(inp, mask)
    fp8 = to_float8(fold_camera_gate(copy.deepcopy(model)))
    for layer in fp8.layers:
        kinds = {name: type(m).__name__ for name, m in layer.named_modules() if type(m).__name__.endswith("Linear")}
        assert kinds.pop("attn.cga.proj") == "Linear"
        assert set(kinds.values()) == {"Float8Linear"} and "attn.q_gate" in kinds and "mlp_gen.down_proj" in kinds
    rel = (fp8(inp, mask) - reference).norm() / reference.norm()
    assert 1e-4 < rel < 0.1, float(rel)


def test_the_gac_method_folds_by_default_and_takes_fp8_as_an_option():
    from gac.method import GaCMethod, SHIPPED_CHECKPOINT

    if not (SHIPPED_CHECKPOINT / "model.safetensors").is_file():
        pytest.skip("no shipped checkpoint in this checkout")
    kinds = {}
    for label, options in (("default", {}), ("layered", {"fold_cga": "false"}), ("fp8", {"fp8": "true"})):
        method = GaCMethod({"compile": "false", **options}, device="cpu")
        method.setup()
        model = method.rollout.model
        kinds[label] = (model.camera_folded, any(isinstance(m, Float8Linear) for m in model.modules()))
    assert kinds == {"default": (True, False), "layered": (False, False), "fp8": (True, True)}
