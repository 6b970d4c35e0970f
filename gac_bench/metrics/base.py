"""Shared metric helpers: conventions at the edges and the 'missing' signal."""

from __future__ import annotations

import numpy as np
import torch


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here (weights or package missing). The message says how to fix it."""


def check_frames(frames: np.ndarray, what: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise ValueError(f"{what}: expected uint8 (N, H, W, 3) RGB, got {dtype} {shape}")


def uint8_to_float01(frames: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]: the convention of every pixel metric here."""
    check_frames(frames, "frames")
    t = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)
