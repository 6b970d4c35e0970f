"""PSNR/SSIM against scikit-image on real photos; LPIPS plumbing with the real bundled linear heads."""

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gac_bench.metrics.image import PSNR_CAP_DB, psnr_per_frame, ssim_per_frame
from gac_bench.metrics.lpips_metric import LpipsMetric, uint8_to_lpips_input


def real_pairs():
    rng = np.random.default_rng(0)
    imgs = [skdata.astronaut()[100:244, 100:356], skdata.coffee()[50:194, 100:356], skdata.chelsea()[50:194, 50:306]]
    clean = np.stack(imgs)
    noisy = np.clip(clean.astype(np.int16) + rng.normal(0, 12, clean.shape).round().astype(np.int16), 0, 255)
    return noisy.astype(np.uint8), clean


def test_psnr_matches_skimage_on_real_images():
    pred, target = real_pairs()
    ours = psnr_per_frame(pred, target)
    ref = [peak_signal_noise_ratio(t.astype(np.float64) / 255, p.astype(np.float64) / 255, data_range=1.0)
           for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_psnr_has_no_uint8_wraparound():
    black = np.zeros((1, 8, 8, 3), np.uint8)
    white = np.full((1, 8, 8, 3), 255, np.uint8)
    assert psnr_per_frame(black, white)[0] == pytest.approx(0.0, abs=1e-6)  # MSE 1 on [0,1] (65025 on uint8)


def test_psnr_of_identical_frames_is_capped_not_infinite():
    pred, _ = real_pairs()
    assert psnr_per_frame(pred, pred) == pytest.approx([PSNR_CAP_DB] * 3)
    assert PSNR_CAP_DB == pytest.approx(58.92, abs=0.01)


def test_ssim_matches_skimage_gaussian_on_real_images():
    pred, target = real_pairs()
    ours = ssim_per_frame(pred, target)
    ref = [
        structural_similarity(t.astype(np.float64) / 255, p.astype(np.float64) / 255, data_range=1.0,
                              channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for p, t in zip(pred, target)
    ]
    # torchmetrics crops the border the Gaussian window cannot cover; skimage pads: agree to ~1e-2
    np.testing.assert_allclose(ours, ref, atol=0.01)
    assert np.all(np.diff(np.argsort(ours)) == np.diff(np.argsort(ref)))


def test_metrics_reject_bad_inputs():
    pred, target = real_pairs()
    with pytest.raises(ValueError, match="uint8"):
        psnr_per_frame(pred.astype(np.float32), target)
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_per_frame(pred[:, :100], target)


@pytest.fixture(scope="module")
def lpips_random_backbone():
    """The real lpips package with its real bundled v0.1 linear heads; the AlexNet trunk is random (plumbing only)."""
    import lpips

    torch.manual_seed(0)
    return lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)


def test_lpips_identical_images_give_zero(lpips_random_backbone):
    pred, _ = real_pairs()
    assert np.allclose(LpipsMetric(lpips_random_backbone).per_frame(pred, pred), 0.0, atol=1e-7)


def test_lpips_inputs_mapped_to_minus_one_one_exactly_once(lpips_random_backbone):
    pred, target = real_pairs()
    seen = []
    net = lpips_random_backbone
    hook = net.scaling_layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        ours = LpipsMetric(net).per_frame(pred, target)
    finally:
        hook.remove()
    x = seen[0]
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.9 and x.max() > 0.9  # full [-1, 1] range used
    direct = net(uint8_to_lpips_input(pred), uint8_to_lpips_input(target), normalize=False).reshape(-1).detach().numpy()
    np.testing.assert_allclose(ours, direct, rtol=1e-6)
    twice = net(uint8_to_lpips_input(pred) * 2 - 1, uint8_to_lpips_input(target) * 2 - 1).reshape(-1).detach().numpy()
    assert not np.allclose(ours, twice)  # a second mapping would change the value


def test_lpips_heads_are_the_bundled_ones(lpips_random_backbone):
    import importlib.util
    from pathlib import Path

    heads = Path(importlib.util.find_spec("lpips").submodule_search_locations[0]) / "weights/v0.1/alex.pth"
    state = torch.load(heads, map_location="cpu", weights_only=True)
    torch.testing.assert_close(lpips_random_backbone.lin0.model[1].weight, state["lin0.model.1.weight"])


def test_lpips_without_backbone_weights_is_missing_not_random(tmp_path, monkeypatch):
    from gac_bench.metrics.base import MetricUnavailable

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth"):
        LpipsMetric.from_local_weights()


def test_ssim_is_torchmetrics_definition_on_both_paths():
    from torchmetrics.functional.image import structural_similarity_index_measure

    from gac_bench.metrics.base import uint8_to_float01
    from gac_bench.metrics.image import ssim_map_mean

    pred, target = real_pairs()
    ref = structural_similarity_index_measure(uint8_to_float01(pred), uint8_to_float01(target), data_range=1.0,
                                              reduction="none").numpy()
    np.testing.assert_allclose(ssim_per_frame(pred, target, device="cpu"), ref, atol=1e-4)  # OpenCV path
    torch_path = ssim_map_mean(uint8_to_float01(pred), uint8_to_float01(target)).numpy()  # the GPU path
    np.testing.assert_allclose(torch_path, ref, atol=1e-4)


def test_near_exact_frames_are_held_at_the_cap_too():
    """The floor is on the MSE, not a special case for MSE == 0: one pixel off by one (MSE ~1e-10) is below the
    uint8 quantisation floor and must score the cap, not 106 dB; a frame just above the floor scores its own PSNR."""
    pred = np.full((1, 144, 256, 3), 100, dtype=np.uint8)
    one_off = pred.copy()
    one_off[0, 10, 20, 1] = 101
    assert psnr_per_frame(one_off, pred)[0] == pytest.approx(PSNR_CAP_DB, abs=1e-4)  # float32 arithmetic
    noisy = pred.copy()
    noisy[0, ::2, :, :] = 101  # MSE = 0.5 / 255^2 > floor 1 / (12 * 255^2)
    assert psnr_per_frame(noisy, pred)[0] == pytest.approx(10 * np.log10(2 * 255.0**2), abs=1e-4)
