"""Validation while training, on held-out rooms (never the evaluation split).

Three measurements, each on data fixed once (plans, posterior samples, noise and t come from a fixed seed):

* ``val_loss_<modality>``: the flow-matching loss of every generated item, per modality (RGB ``image``, ``geometry``,
  ``warped``), at fixed timesteps ``t_values`` (mean over them), geometry dropout off;
* ``camera_swap_gap``: the RGB loss with every target item's camera replaced by the reference camera (the first
  view of the sample), minus the true RGB loss. A model that uses the camera gets worse when it is lied to; the gap
  must grow as training goes. Near zero means the rays act as a positional code, not as motion;
* ``psnr_first_grid``: one rollout step as at inference (reference image -> the first target grid of four views
  at the evaluation stride, ``psnr_steps`` Euler steps), PSNR against the ground truth, beside the PSNR of
  copying the reference (``psnr_identity``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gac import geometry as geo
from gac.batch_builder import group_by_budget
from gac.batching import attention_mask, per_row_loss
from gac.data import ClipArrays, DataConfig, SampleMaker
from gac.model import GaCConfig, GaCModel
from gac.sequence import MODALITY_CODE
from gac.vae import LatentCodec
from gac_bench.metrics.image import psnr_per_frame


@dataclass(frozen=True)
class ValConfig:
    samples: int = 16
    t_values: tuple[float, ...] = (0.25, 0.5, 0.75)
    psnr_clips: int = 4
    psnr_steps: int = 20
    psnr_stride: int = 3
    """Source frames between the views of the first grid (the evaluation trajectories use 3)."""
    seed: int = 1234


class Validator:
    def __init__(self, clips: list[ClipArrays], codec: LatentCodec, model_cfg: GaCConfig, data_cfg: DataConfig,
                 device, cfg: ValConfig = ValConfig(), pack_tokens: int = 0):  # fmt: skip
        self.cfg, self.mcfg, self.dcfg, self.device = cfg, model_cfg, data_cfg, torch.device(device)
        self.codec, self.clips, self.pack_tokens = codec, clips, pack_tokens
        self.maker = SampleMaker(clips, codec, model_cfg, data_cfg, device)
        rng = np.random.default_rng(cfg.seed)
        self.plans = [self.maker.plan(rng, 0.0, clip=i % len(clips)) for i in range(cfg.samples)]

    # ------------------------------------------------------------------ losses
    def _forwards(self, swap: bool):
        """Fixed forwards: the same plans, timesteps and (re-seeded) noise at every validation; with ``swap`` only
        the target items' rays differ, so the two losses compare like with like."""
        items = []
        for i, plan in enumerate(self.plans):
            for j, t in enumerate(self.cfg.t_values):
                rng = np.random.default_rng(self.cfg.seed + 1000 * i + j)
                items.append((plan, self.maker.layout(plan, rng, fixed_t=t, swap_targets=swap)))
        budget = self.pack_tokens if self._flex() else 0
        for g_i, group in enumerate(group_by_budget(items, budget)):
            gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + g_i)
            yield self.maker.build_forward([p for p, _ in group], [q for _, q in group], gen,
                                           pad_to=budget if budget > 0 else None)  # fmt: skip

    @torch.no_grad()
    def _losses(self, model: GaCModel, swap: bool) -> dict[str, float]:
        sums = torch.zeros(len(MODALITY_CODE), dtype=torch.float64)
        counts = torch.zeros(len(MODALITY_CODE), dtype=torch.float64)
        for pk in self._forwards(swap):
            with _autocast(self.device):
                v = model(pk.inputs, attention_mask(pk, self._flex()))
            rows = per_row_loss(v, pk).double().cpu()
            codes = pk.loss_modality.cpu()
            sums += torch.zeros_like(sums).index_add_(0, codes, rows)
            counts += torch.bincount(codes, minlength=len(MODALITY_CODE)).double()
        return {m: float(sums[c] / counts[c]) for m, c in MODALITY_CODE.items() if counts[c] > 0}

    def _flex(self) -> bool:
        return self.device.type == "cuda" and self.pack_tokens > 0

    # ------------------------------------------------------------------ first grid
    @torch.no_grad()
    def _first_grid_psnr(self, model: GaCModel) -> tuple[float, float]:
        from gac.sample import Rollout, SampleConfig

        scfg = SampleConfig(steps=self.cfg.psnr_steps, grid=self.dcfg.grid, variant=self.dcfg.variant,
                            geometry=self.dcfg.geometry, pose_anchor=self.dcfg.pose_anchor)  # fmt: skip
        rollout = Rollout(model, self.codec, scfg, self.device)
        n_views = 1 + self.dcfg.views_per_frame
        ours, ident = [], []
        for i, clip in enumerate(self.clips[: self.cfg.psnr_clips]):
            idx = np.arange(n_views) * self.cfg.psnr_stride
            scale = geo.scene_scale(clip.depth[0].astype(np.float32))
            out = rollout.run(clip.frames[0], clip.K, clip.c2w[idx], scale, seed=self.cfg.seed + i)
            truth = clip.frames[idx[1:]]  # the harness's PSNR: the same numbers the leaderboard reports
            ours.extend(psnr_per_frame(out.frames[1:], truth))
            ident.extend(psnr_per_frame(np.repeat(clip.frames[:1], n_views - 1, axis=0), truth))
        return float(np.mean(ours)), float(np.mean(ident))

    def run(self, model: GaCModel) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            true = self._losses(model, swap=False)
            swapped = self._losses(model, swap=True)
            psnr, psnr_identity = self._first_grid_psnr(model) if self.cfg.psnr_clips > 0 else (math.nan, math.nan)
        finally:
            model.train(was_training)
        out = {f"val_loss_{m}": v for m, v in true.items()}
        out["val_loss_image_swap"] = swapped["image"]
        out["camera_swap_gap"] = swapped["image"] - true["image"]
        out.update(psnr_first_grid=psnr, psnr_identity=psnr_identity)
        return out


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def plot_curves(train_log: list[dict], val_log: list[dict], path) -> None:
    """Training loss, held-out losses, camera-swap gap and first-grid PSNR against steps, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if train_log:
        steps = np.array([r["step"] for r in train_log])
        loss = np.array([r["loss"] for r in train_log])
        k = max(1, len(loss) // 100)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        axes[0].plot(steps[k - 1 :], smooth, label=f"train (mean of {k} steps)", color="0.6")
    vs = [r["step"] for r in val_log]
    for key, style in (("val_loss_image", "-o"), ("val_loss_geometry", "-s"), ("val_loss_warped", "-^")):
        if val_log and key in val_log[0]:
            axes[0].plot(vs, [r[key] for r in val_log], style, label=key.replace("val_loss_", "held-out "))
    axes[0].set(xlabel="step", ylabel="flow loss (MSE of velocity)", title="loss", yscale="log")
    axes[0].legend()
    if val_log:
        axes[1].plot(vs, [r["camera_swap_gap"] for r in val_log], "-o")
    axes[1].axhline(0.0, color="0.7", lw=1)
    axes[1].set(xlabel="step", ylabel="held-out RGB loss increase", title="camera-swap gap (target camera -> reference)")
    if val_log:
        axes[2].plot(vs, [r["psnr_first_grid"] for r in val_log], "-o", label="GaC, first grid")
        axes[2].plot(vs, [r["psnr_identity"] for r in val_log], "--", color="0.5", label="identity (copy the reference)")
        axes[2].legend()
    axes[2].set(xlabel="step", ylabel="PSNR (dB)", title="one rollout step on held-out rooms")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


