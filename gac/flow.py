"""Rectified-flow matching (Bagel's convention): t = 0 is data, t = 1 is noise, the network predicts velocity.

    x_t = (1 - t) x_0 + t eps,      v* = eps - x_0,      loss = mean over generated tokens of ||v - v*||^2 / P
    t   = shift(sigmoid(u)),  u ~ N(0, 1),   shift_s(t) = s t / (1 + (s - 1) t)        (logit-normal with shift)

Sampling is Euler from t = 1 to t = 0 on a shifted grid, one forward per step, no classifier-free guidance
(paper section 5.1: "We do not use classifier-free guidance techniques during sampling").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def shift_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Time shift s t / (1 + (s - 1) t); s > 1 spends more of the schedule at high noise."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def sample_t(n: int, shift: float = 1.0, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """n logit-normal timesteps in (0, 1) with shift (Bagel trains with shift 1)."""
    u = torch.randn(n, generator=generator, device="cpu").to(device)
    return shift_t(torch.sigmoid(u), shift)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t noise; t broadcasts over trailing dims as (N,) -> (N, 1)."""
    t = t.reshape(t.shape + (1,) * (x0.dim() - t.dim())).to(x0.dtype)
    return (1.0 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def flow_loss(v_pred: torch.Tensor, v_target: torch.Tensor) -> torch.Tensor:
    """Token-level mean of the per-token mean squared error (loss only where the caller passes tokens)."""
    return (v_pred.float() - v_target.float()).pow(2).mean()


@dataclass(frozen=True)
class EulerSchedule:
    """``steps`` model evaluations on the grid linspace(1, 0, steps + 1), shifted.

    Bagel's ``num_timesteps=K`` makes K grid points and K - 1 evaluations; here ``steps`` counts evaluations,
    so "50 steps" means 50 forwards.
    """

    steps: int = 50
    shift: float = 3.0

    def timesteps(self) -> torch.Tensor:
        return shift_t(torch.linspace(1.0, 0.0, self.steps + 1, dtype=torch.float64), self.shift)

    def sample(self, velocity_fn, x: torch.Tensor) -> torch.Tensor:
        """Integrate dx/dt = v from t = 1 (x = noise) to t = 0; ``velocity_fn(x, t_float)`` returns v like x."""
        ts = self.timesteps()
        for k in range(self.steps):
            t, t_next = float(ts[k]), float(ts[k + 1])
            v = velocity_fn(x, t)
            x = x + (t_next - t) * v.to(x.dtype)
        return x
