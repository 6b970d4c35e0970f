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
from gac.batching import Packer, attention_mask, per_row_loss
from gac.data import ClipArrays, DataConfig, SampleMaker
from gac.geometry import LatentItem
from gac.model import GaCConfig, GaCModel
from gac.sequence import MODALITY_CODE, FrameData, build_training_sequence
from gac.vae import LatentCodec


@dataclass(frozen=True)
class ValConfig:
    samples: int = 16
    t_values: tuple[float, ...] = (0.25, 0.5, 0.75)
    psnr_clips: int = 4
    psnr_steps: int = 20
    psnr_stride: int = 3
    """Source frames between the views of the first grid (the evaluation trajectories use 3)."""
    seed: int = 1234


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, data range 1) of two uint8 images, capped at the quantisation floor like the harness."""
    mse = float(np.mean((a.astype(np.float64) / 255.0 - b.astype(np.float64) / 255.0) ** 2))
    return float(min(10.0 * math.log10(1.0 / max(mse, 1e-12)), 58.92))


def swap_target_cameras(frames: list[FrameData], num_context: int, reference_rays: torch.Tensor) -> list[FrameData]:
    """The same sample with every target item's rays (each cell) replaced by the reference view's rays."""
    out = []
    for k, fr in enumerate(frames):
        if k < num_context:
            out.append(fr)
            continue
        cells = len(fr.image.cells)
        rays = reference_rays.repeat(cells, 1)
        aux = None if fr.aux is None else _with_rays(fr.aux, rays)
        out.append(FrameData(_with_rays(fr.image, rays), aux))
    return out


def _with_rays(item: LatentItem, rays: torch.Tensor) -> LatentItem:
    return LatentItem(item.tokens, rays.to(item.rays), item.pos2d, item.cells)


class Validator:
    def __init__(self, clips: list[ClipArrays], codec: LatentCodec, model_cfg: GaCConfig, data_cfg: DataConfig,
                 device, cfg: ValConfig = ValConfig(), pack_tokens: int = 0):  # fmt: skip
        self.cfg, self.mcfg, self.dcfg, self.device = cfg, model_cfg, data_cfg, torch.device(device)
        self.codec, self.clips, self.pack_tokens = codec, clips, pack_tokens
        self.from_samples = True
        maker = SampleMaker(clips, codec, model_cfg, data_cfg, device)
        rng = np.random.default_rng(cfg.seed)
        plans = [maker.plan(rng, 0.0, clip=i % len(clips)) for i in range(cfg.samples)]
        self.samples = maker.make_batch(plans, torch.Generator().manual_seed(cfg.seed))
        tok_per_view = self.samples[0][0][0].image.num_tokens // len(self.samples[0][0][0].image.cells)
        self.reference_rays = [frames[0].image.rays[:tok_per_view] for frames, _ in self.samples]

    # ------------------------------------------------------------------ losses
    def _sequences(self, swap: bool):
        out = []
        for i, (frames, n_ctx) in enumerate(self.samples):
            if swap:
                frames = swap_target_cameras(frames, n_ctx, self.reference_rays[i])
            for j, t in enumerate(self.cfg.t_values):
                g = torch.Generator().manual_seed(self.cfg.seed + 1000 * i + j)  # same noise with and without swap
                out.append(build_training_sequence(self.mcfg, frames, n_ctx, self.dcfg.variant, 0.0, generator=g,
                                                   fixed_t=t))  # fmt: skip
        return out

    @torch.no_grad()
    def _losses(self, model: GaCModel, swap: bool) -> dict[str, float]:
        sums = torch.zeros(len(MODALITY_CODE), dtype=torch.float64)
        counts = torch.zeros(len(MODALITY_CODE), dtype=torch.float64)
        for pk in self._forwards(self._sequences(swap)):
            try:
                with _autocast(self.device):
                    v = model(pk.inputs, attention_mask(pk, self._flex(), from_samples=self.from_samples))
            except Exception:  # the packed block mask is new: fall back to evaluating the rule (once)
                if not (self.from_samples and self._flex()):
                    raise
                self.from_samples = False
                with _autocast(self.device):
                    v = model(pk.inputs, attention_mask(pk, True, from_samples=False))
            rows = per_row_loss(v, pk).double().cpu()
            codes = pk.loss_modality.cpu()
            sums += torch.zeros_like(sums).index_add_(0, codes, rows)
            counts += torch.bincount(codes, minlength=len(MODALITY_CODE)).double()
        return {m: float(sums[c] / counts[c]) for m, c in MODALITY_CODE.items() if counts[c] > 0}

    def _flex(self) -> bool:
        return self.device.type == "cuda" and self.pack_tokens > 0

    def _forwards(self, seqs):
        if not self._flex():
            yield from seqs
            return
        packer = Packer(self.pack_tokens)
        for pk in seqs:
            full = packer.add(pk)
            if full is not None:
                yield full
        if packer.pending:
            yield packer.flush()

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
            for v in range(1, n_views):
                ours.append(psnr_uint8(out.frames[v], clip.frames[idx[v]]))
                ident.append(psnr_uint8(clip.frames[0], clip.frames[idx[v]]))
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


