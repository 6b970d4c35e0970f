"""Inference-only rewrites of a trained GaC that keep its function: a folded CGA and FP8 GEMMs (issue 14).

**Folded CGA.** With Q = W_q x + b_q (eq. 13) and {Q_res, Gate} = W_2 (Q + r) + b_2 (eq. 14), the query of eq. 15
and the gate are affine in x and r::

    [Q + Q_res; Gate] = [(I + W_2a) W_q; W_2b W_q] x + [(I + W_2a) b_q + b_2a; W_2b b_q + b_2b] + W_2 r

The first two terms are one D -> 2Q projection (instead of D -> Q then Q -> 2Q: a third fewer query FLOPs), and
W_2 r depends only on the rays, which stay fixed over the denoising steps of an item, so the sampler computes it
once per item (:meth:`gac.model.GaCModel.camera_terms`). The folded weights are products computed in float32 and
rounded once to the model's dtype: equal to the layered form up to that rounding.

**FP8.** :func:`to_float8` swaps the decoder layers' linear layers for :class:`Float8Linear`: e4m3 weights with one
scale per output channel, activations quantised per token on the fly, ``torch._scaled_mm`` with row-wise scales
and the model's dtype out. It changes the outputs (measured in benchmarks/gac_throughput.md) and is off by
default (the ``gac`` method's ``fp8`` option).

Both rewrites are for sampling only: a folded or FP8 model must not be trained or saved (its extra modules are not
part of a checkpoint).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gac.model import GaCModel

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)  # 448
ALIGN = 16  # torch._scaled_mm needs every matrix dimension to be a multiple of 16


@torch.no_grad()
def fold_camera_gate(model: GaCModel) -> GaCModel:
    """Give each CGA layer one projection x -> {Q + Q_res, Gate}; the model then takes the ray part per layer."""
    if model.cfg.camera != "cga" or model.camera_folded:
        return model
    for layer in model.layers:
        attn = layer.attn
        wq, bq = attn.gen.q_proj.weight.float(), attn.gen.q_proj.bias.float()
        w2, b2 = attn.cga.proj.weight.float(), attn.cga.proj.bias.float()
        Q = wq.shape[0]
        lift = torch.cat([torch.eye(Q, device=w2.device), torch.zeros_like(w2[Q:])])  # Q + Q_res keeps Q itself
        w_fold, b_fold = (lift + w2) @ wq, (lift + w2) @ bq + b2
        q_gate = nn.Linear(wq.shape[1], 2 * Q, bias=True, device=wq.device, dtype=attn.gen.q_proj.weight.dtype)
        q_gate.weight.copy_(w_fold)
        q_gate.bias.copy_(b_fold)
        attn.q_gate = q_gate
    model.camera_folded = True
    return model


class Float8Linear(nn.Module):
    """``y = x W^T + b`` with W in e4m3 (one scale per output channel) and x quantised per row at call time."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        if w.shape[0] % ALIGN or w.shape[1] % ALIGN:
            raise ValueError(f"Float8Linear needs dimensions divisible by {ALIGN}, got {tuple(w.shape)}")
        scale_O = w.abs().amax(dim=1).clamp(min=1e-12) / E4M3_MAX
        self.register_buffer("weight_fp8", (w / scale_O[:, None]).to(E4M3))
        self.register_buffer("scale_1O", scale_O[None, :])  # (1, O) with unit stride, as _scaled_mm asks
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.out_dtype = linear.weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, K = x.shape[:-1], x.shape[-1]
        x_MK = x.reshape(-1, K).float()
        M = x_MK.shape[0]
        pad = -M % ALIGN  # the two marker tokens of a denoising step are 2 rows
        if pad:
            x_MK = F.pad(x_MK, (0, 0, 0, pad))
        scale_M1 = (x_MK.abs().amax(dim=1).clamp(min=1e-12) / E4M3_MAX)[:, None]  # strides (1, 1), not (1, 0)
        x_fp8 = (x_MK / scale_M1).to(E4M3)
        y = torch._scaled_mm(x_fp8, self.weight_fp8.t(), scale_a=scale_M1, scale_b=self.scale_1O,
                             out_dtype=self.out_dtype)  # fmt: skip
        y = y[:M] if pad else y
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, y.shape[-1]).to(x.dtype)


@torch.no_grad()
def to_float8(model: GaCModel) -> GaCModel:
    """Every linear layer of the decoder layers (projections, MLPs, folded CGA) computed as an FP8 GEMM.

    CGA's Linear2 stays as it is: with the fold it only makes the per-item ray term, and unfolded it is small next to
    the MLP. Embeddings, heads and the VAE keep the model's dtype.
    """
    for layer in model.layers:
        for name, module in list(layer.named_modules()):
            if not isinstance(module, nn.Linear) or name.endswith("cga.proj"):
                continue
            parent = layer.get_submodule(name.rsplit(".", 1)[0]) if "." in name else layer
            setattr(parent, name.rsplit(".", 1)[-1], Float8Linear(module))
    return model
