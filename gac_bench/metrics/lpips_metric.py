"""LPIPS (AlexNet, v0.1) through the ``lpips`` package, per frame.

The metric takes uint8 frames and maps them to [-1, 1] exactly once, here (lpips' own convention with
``normalize=False``). The AlexNet backbone comes from torchvision's file in the torch hub cache; when it is
absent the metric is unavailable and says which file to put where, instead of downloading it or using random
weights. The small linear heads ship inside the lpips wheel.
"""

from __future__ import annotations

import numpy as np
import torch

from gac_bench.metrics.base import MetricUnavailable, check_frames, uint8_to_float01
from gac_bench.weights import LPIPS_ALEXNET

LPIPS_VERSION = "lpips-v1(alex,v0.1,inputs[-1,1])"


def uint8_to_lpips_input(frames: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]; the only place this mapping happens."""
    return uint8_to_float01(frames, device).mul_(2.0).sub_(1.0)


class LpipsMetric:
    """LPIPS per frame. ``net`` is an ``lpips.LPIPS`` module; :meth:`from_local_weights` builds the real one."""

    def __init__(self, net: torch.nn.Module, device: str = "cpu"):
        self.net = net.to(device).eval()
        self.device = device

    @classmethod
    def from_local_weights(cls, device: str = "cpu") -> "LpipsMetric":
        if not LPIPS_ALEXNET.present():
            raise MetricUnavailable(LPIPS_ALEXNET.fix_hint())
        import lpips

        # The backbone file is in the torch hub cache, so torchvision loads it without network access.
        net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, verbose=False)
        return cls(net, device)

    @torch.no_grad()
    def per_frame(self, pred: np.ndarray, target: np.ndarray, batch_size: int = 32) -> np.ndarray:
        check_frames(pred, "generated frames")
        check_frames(target, "ground-truth frames")
        if pred.shape != target.shape:
            raise ValueError(f"generated frames {pred.shape} and ground truth {target.shape} differ in shape")
        out = []
        for s in range(0, len(pred), batch_size):
            a = uint8_to_lpips_input(pred[s : s + batch_size], self.device)
            b = uint8_to_lpips_input(target[s : s + batch_size], self.device)
            out.append(self.net(a, b, normalize=False).reshape(-1).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)
