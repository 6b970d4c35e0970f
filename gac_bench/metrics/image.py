"""PSNR and SSIM per frame (protocol paper-v1: float [0, 1], data range 1, torchmetrics).

PSNR of a pixel-exact frame is infinite. MSE is floored at the variance of uint8 quantisation noise,
1 / (12 * 255^2), so PSNR is capped at 58.92 dB: one exact frame (the last frame of forth-and-back for a method
that copies the reference, say) cannot make a clip's mean infinite. Real generated frames sit far below the cap.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from gac_bench.metrics.base import check_frames, uint8_to_float01

PSNR_VERSION = "psnr-v1(float01,range1,mse_floor=1/(12*255^2))"
SSIM_VERSION = "ssim-v1(torchmetrics,gaussian11,sigma1.5,k1=0.01,k2=0.03,range1)"
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


@torch.no_grad()
def ssim_per_frame(pred: np.ndarray, target: np.ndarray, device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """SSIM per frame (torchmetrics defaults: Gaussian 11x11, sigma 1.5), colour channels averaged."""
    _pair(pred, target)
    out = []
    for s in range(0, len(pred), batch_size):
        a = uint8_to_float01(pred[s : s + batch_size], device)
        b = uint8_to_float01(target[s : s + batch_size], device)
        v = structural_similarity_index_measure(a, b, data_range=1.0, reduction="none")
        out.append(v.double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)
