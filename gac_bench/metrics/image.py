"""PSNR and SSIM per frame (protocol paper-v1: float [0, 1], data range 1, torchmetrics).

PSNR of a pixel-exact frame is infinite. MSE is floored at the variance of uint8 quantisation noise,
1 / (12 * 255^2), so PSNR is capped at 58.92 dB: one exact frame (the last frame of forth-and-back for a method
that copies the reference, say) cannot make a clip's mean infinite. Real generated frames sit far below the cap.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from gac_bench.metrics.base import check_frames, uint8_to_float01

PSNR_VERSION = "psnr-v1(float01,range1,mse_floor=1/(12*255^2))"
SSIM_VERSION = "ssim-v1(torchmetrics-definition,gaussian11,sigma1.5,k1=0.01,k2=0.03,range1,separable)"
SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
MSE_FLOOR = 1.0 / (12.0 * 255.0**2)
PSNR_CAP_DB = float(10.0 * np.log10(1.0 / MSE_FLOOR))


def _pair(pred: np.ndarray, target: np.ndarray) -> None:
    check_frames(pred, "generated frames")
    check_frames(target, "ground-truth frames")
    if pred.shape != target.shape:
        raise ValueError(f"generated frames {pred.shape} and ground truth {target.shape} differ in shape")


@torch.no_grad()
def psnr_per_frame(pred: np.ndarray, target: np.ndarray, device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """PSNR in dB per frame of uint8 (N, H, W, 3) images, data range 1 on [0, 1] floats."""
    _pair(pred, target)
    out = []
    for s in range(0, len(pred), batch_size):
        a = uint8_to_float01(pred[s : s + batch_size], device)
        b = uint8_to_float01(target[s : s + batch_size], device)
        mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(MSE_FLOOR)
        out.append((10.0 * torch.log10(1.0 / mse)).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def _gaussian_1d(size: int, sigma: float, device) -> torch.Tensor:
    dist = torch.arange((1 - size) / 2, (1 + size) / 2, 1.0, device=device)
    g = torch.exp(-((dist / sigma) ** 2) / 2)
    return g / g.sum()


def ssim_map_mean(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image of float (N, C, H, W) tensors, exactly torchmetrics' definition.

    torchmetrics (1.9) reflect-pads by 5, filters with an 11x11 Gaussian (sigma 1.5) without further padding, and
    averages the whole H x W SSIM map, with variances clamped at 0. The 2-D Gaussian is the outer product of a 1-D one, so filtering with
    two 1-D passes gives the same numbers about 5x faster (``tests/test_metrics_image.py`` pins the equality).
    """
    pad = (SSIM_KERNEL_SIZE - 1) // 2
    c = a.shape[1]
    g = _gaussian_1d(SSIM_KERNEL_SIZE, SSIM_SIGMA, a.device).to(a.dtype)
    gx = g.reshape(1, 1, 1, -1).repeat(5 * c, 1, 1, 1)
    gy = g.reshape(1, 1, -1, 1).repeat(5 * c, 1, 1, 1)
    a = F.pad(a, (pad, pad, pad, pad), mode="reflect")
    b = F.pad(b, (pad, pad, pad, pad), mode="reflect")
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    filtered = F.conv2d(F.conv2d(stack, gx, groups=5 * c), gy, groups=5 * c)
    mu_a, mu_b, e_aa, e_bb, e_ab = filtered.split(c, dim=1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    var_a, var_b = (e_aa - mu_a**2).clamp_min(0.0), (e_bb - mu_b**2).clamp_min(0.0)
    cov = e_ab - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim.reshape(ssim.shape[0], -1).mean(dim=1)


@functools.lru_cache(maxsize=1)
def _gaussian_1d_numpy() -> np.ndarray:
    """The SSIM window as float64 numpy, built once instead of once per frame."""
    return _gaussian_1d(SSIM_KERNEL_SIZE, SSIM_SIGMA, "cpu").double().numpy()


def _ssim_cpu(a: np.ndarray, b: np.ndarray) -> float:
    """The same definition as :func:`ssim_map_mean` for one float32 (H, W, 3) pair, filtered by OpenCV.

    On the CPU, PyTorch's depthwise convolution is ~100x slower than OpenCV's separable filter; reflect-101
    borders are torch's "reflect" padding, so the numbers agree to float32 rounding (tests pin it).
    """
    import cv2

    g = _gaussian_1d_numpy()

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, -1, g, g, borderType=cv2.BORDER_REFLECT_101)

    mu_a, mu_b = blur(a), blur(b)
    var_a = np.maximum(blur(a * a) - mu_a**2, 0.0)
    var_b = np.maximum(blur(b * b) - mu_b**2, 0.0)
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean(dtype=np.float64))


@torch.no_grad()
def ssim_per_frame(pred: np.ndarray, target: np.ndarray, device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """SSIM per frame (Gaussian 11x11, sigma 1.5, data range 1 on [0, 1]), colour channels averaged."""
    _pair(pred, target)
    if str(device) == "cpu":
        scale = np.float32(1.0 / 255.0)
        return np.array([_ssim_cpu(p.astype(np.float32) * scale, t.astype(np.float32) * scale)
                         for p, t in zip(pred, target)])
    out = []
    for s in range(0, len(pred), batch_size):
        a = uint8_to_float01(pred[s : s + batch_size], device)
        b = uint8_to_float01(target[s : s + batch_size], device)
        out.append(ssim_map_mean(a, b).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)
