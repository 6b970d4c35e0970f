"""Train a small FLUX-shaped AutoencoderKL as a *stand-in* for the FLUX VAE (whose weights we cannot download).

    python -m gac.train_vae --split synthroom-train --val-split synthroom-val --out VAE_DIR --time-limit 150

Same interface as the FLUX VAE (8x down, ``--latent-channels``, diffusers folder), a few million parameters,
trained with L1 + MSE reconstruction and a small KL term on RGB frames and, one batch in four, on depth maps in
GaC's encoding (the FLUX VAE never saw depth; a small stand-in needs the help), the depth scale jittered around
each frame's median as GaC's samples take it from another view. The learning rate decays (cosine) to 10% by the
time limit. After training, ``shift_factor`` and ``scaling_factor`` are set from the latent statistics so
normalised latents have mean 0 and std 1 (FLUX's own constants were found the same way), and
``train_report.json`` records size, time and the reconstruction PSNR of RGB and encoded depth on the training
frames and on held-out rooms. Any number produced with this VAE must say that it is a stand-in.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gac import geometry as geo
from gac.train import TrainingError, load_training_clips
from gac.vae import random_vae, save_vae, small_vae_config

log = logging.getLogger("gac.train_vae")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gac.train_vae")
    p.add_argument("--split", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--clips", default=None)
    p.add_argument("--val-split", default=None, help="held-out rooms for the reported PSNR (synthroom-val)")
    p.add_argument("--val-clips", default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--frame-stride", type=int, default=1, help="use every n-th frame of each clip")
    p.add_argument("--out", required=True)
    p.add_argument("--arch", default="patch", choices=["patch", "kl"],
                   help="patch: the fast patch autoencoder (gac/patch_vae.py); kl: a small diffusers AutoencoderKL")
    p.add_argument("--latent-channels", type=int, default=32)
    p.add_argument("--width-mult", type=int, default=256,
                   help="patch: channels of every block; kl: channels of the first level (e.g. 32)")
    p.add_argument("--layers-per-block", type=int, default=4, help="patch: residual blocks per side; kl: per level")
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--time-limit", type=float, default=90.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--kl", type=float, default=1e-6)
    p.add_argument("--normalization", default="channel", choices=["channel", "global"],
                   help="patch VAE latents: unit variance per channel, or one scale for all channels (FLUX's "
                        "convention; principal components keep their relative variance)")
    p.add_argument("--depth-fraction", type=float, default=0.25)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--load-workers", type=int, default=16)
    return p.parse_args(argv)


def build_vae(args):
    if args.arch == "patch":
        from gac.patch_vae import PatchVAE, PatchVAEConfig

        torch.manual_seed(args.seed)
        return PatchVAE(PatchVAEConfig(args.latent_channels, 8, args.width_mult, args.layers_per_block))
    cfg = small_vae_config(args.latent_channels, args.width_mult)
    cfg["layers_per_block"] = args.layers_per_block
    return random_vae(cfg, args.seed)


class FrameBank:
    """Frames (uint8) and depth of the chosen clips on the training device, with each frame's median depth."""

    def __init__(self, clips, frame_stride: int, device):
        self.frames = torch.from_numpy(np.concatenate([c.frames[::frame_stride] for c in clips])).to(device)
        self.depth = torch.from_numpy(np.concatenate([c.depth[::frame_stride] for c in clips])).to(device)
        d = self.depth.float().flatten(1)
        median = torch.nanmedian(torch.where(d > 0, d, torch.full_like(d, float("nan"))), dim=1).values
        self.median = torch.nan_to_num(median, nan=1.0)

    def __len__(self) -> int:
        return len(self.frames)

    def rgb(self, idx: torch.Tensor) -> torch.Tensor:
        return self.frames[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def depth_images(self, idx: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.median[idx] * (1.0 if jitter is None else jitter)
        return geo.encode_geometry_torch("depth", self.depth[idx], None, None, scale)  # K, poses: point maps only


@torch.no_grad()
def pca_patches(bank: FrameBank, patch: int, seed: int, n: int = 512) -> torch.Tensor:
    """Pixel blocks (N, 3 * patch^2) of ``n`` random frames, a quarter of them encoded depth maps."""
    idx = torch.as_tensor(np.random.default_rng(seed).choice(len(bank), size=min(n, len(bank)), replace=False),
                          device=bank.frames.device)  # fmt: skip
    k = len(idx) // 4
    x = torch.cat([bank.rgb(idx[k:]), bank.depth_images(idx[:k])])
    return torch.nn.functional.pixel_unshuffle(x, patch).permute(0, 2, 3, 1).reshape(-1, 3 * patch * patch)


@torch.no_grad()
def reconstruction_psnr(vae, x: torch.Tensor, batch: int = 32) -> float:
    """PSNR (dB) of decode(mean of encode(x)) against x, both in [-1, 1] (data range 2)."""
    err, n = 0.0, 0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        rec = vae.decode(vae.encode(xb).latent_dist.mean).sample.float().clamp(-1, 1)
        err += float(((rec - xb) / 2).pow(2).sum())
        n += xb.numel()
    return -10.0 * math.log10(max(err / n, 1e-12))


def evaluate(vae, bank: FrameBank, n: int, seed: int) -> dict:
    idx = torch.as_tensor(np.random.default_rng(seed).choice(len(bank), size=min(n, len(bank)), replace=False),
                          device=bank.frames.device)  # fmt: skip
    return {"rgb": reconstruction_psnr(vae, bank.rgb(idx)), "depth": reconstruction_psnr(vae, bank.depth_images(idx))}


def latent_normalization(z_BCHW: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_c, std_c) that :meth:`PatchVAE.fold_normalization` divides by: each channel's own std ("channel":
    unit variance per channel), or one std over all centred channels ("global": mean variance 1, ratios kept)."""
    z_CM = z_BCHW.transpose(0, 1).flatten(1)
    mean_c = z_CM.mean(1)
    if mode == "channel":
        return mean_c, z_CM.std(1)
    if mode == "global":
        return mean_c, (z_CM - mean_c[:, None]).square().mean().sqrt().expand(z_CM.shape[0]).clone()
    raise ValueError(f"unknown latent normalisation {mode!r}; known: channel, global")


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return train(args)
    except TrainingError as exc:
        if argv is not None:
            raise
        print(f"gac.train_vae: {exc}", file=sys.stderr)
        sys.exit(2)


def train(args) -> dict:
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    bank = FrameBank(load_training_clips(args, frame_stride=args.frame_stride), 1, device)
    val_bank = None
    if args.val_split or args.val_clips:
        val_bank = FrameBank(load_training_clips(args, args.val_split, args.val_clips, frame_stride=10), 1, device)
    log.info("VAE training on %d frames (%s), %s held-out frames", len(bank), device,
             len(val_bank) if val_bank else "no")  # fmt: skip
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    vae = build_vae(args).to(device).train()
    if hasattr(vae, "init_linear"):  # start from the best linear codec (principal components of the pixel blocks)
        vae.init_linear(pca_patches(bank, vae.cfg.patch, args.seed))
        log.info("patch VAE initialised to PCA: %s", evaluate(vae, bank, 64, args.seed))
    n_params = sum(p.numel() for p in vae.parameters())
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    on_gpu = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)
    t0, step, losses, last_log = time.perf_counter(), 0, [], time.perf_counter()
    total = float(args.steps)
    while step < args.steps and (step == 0 or time.perf_counter() - t0 < args.time_limit):
        elapsed = time.perf_counter() - t0
        if step > 20:
            total = min(float(args.steps), step * args.time_limit / elapsed)
        warm = min(1.0, (step + 1) / args.warmup)
        progress = min(1.0, step / max(total, 1.0))
        for g in opt.param_groups:
            g["lr"] = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        idx = torch.randint(len(bank), (args.batch,), generator=gen).to(device)
        if torch.rand((), generator=gen) < args.depth_fraction:
            jitter = torch.exp(torch.empty(args.batch).uniform_(-0.7, 0.7, generator=gen)).to(device)
            x = bank.depth_images(idx, jitter)
        else:
            x = bank.rgb(idx)
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(-1)
        t_step = time.perf_counter()
        with autocast:
            dist = vae.encode(x).latent_dist
            rec = vae.decode(dist.sample()).sample.float()
        kl = dist.kl().mean() / x[0].numel()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if step == 1 and time.perf_counter() - t_step > args.time_limit:
            raise TrainingError(
                f"--time-limit {args.time_limit:g} s fits no VAE step here: the first took "
                f"{time.perf_counter() - t_step:.0f} s on {device.type}; use a GPU or a smaller --batch"
            )
        if step % 500 == 0 or time.perf_counter() - last_log > 30 or step == 1:
            last_log = time.perf_counter()
            log.info("step %d loss %.4f %.0f s", step, float(np.mean(losses[-100:])), last_log - t0)
    seconds = time.perf_counter() - t0
    vae.eval()
    with torch.no_grad():  # latent statistics -> normalisation (latents ~ N(0, 1))
        idx = torch.as_tensor(np.random.default_rng(args.seed).choice(len(bank), min(256, len(bank)), replace=False),
                              device=device)  # fmt: skip
        sample = bank.rgb(idx)
        z = torch.cat([vae.encode(sample[i : i + 32]).latent_dist.mean for i in range(0, len(sample), 32)])
        if hasattr(vae, "fold_normalization"):  # per channel, folded into the weights
            channel_std = z.transpose(0, 1).flatten(1).std(1)
            vae.fold_normalization(*latent_normalization(z, args.normalization))
            shift, std = 0.0, 1.0
            log.info("per-channel latent std before normalisation: %s", [round(float(v), 3) for v in channel_std])
        else:
            shift, std = float(z.mean()), float(z.std())
    train_psnr = evaluate(vae, bank, 256, args.seed)
    val_psnr = evaluate(vae, val_bank, 256, args.seed) if val_bank is not None else None
    vae.register_to_config(shift_factor=shift, scaling_factor=1.0 / std)
    out = save_vae(vae.cpu(), Path(args.out))
    report = {
        "stand_in": True, "steps": step, "seconds": round(seconds, 1), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if on_gpu else None,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "parameters": n_params, "size_mb_bf16": round(2 * n_params / 2**20, 2),
        "arch": args.arch, "latent_channels": args.latent_channels, "width_mult": args.width_mult,
        "layers_per_block": args.layers_per_block, "batch": args.batch, "lr": args.lr, "kl": args.kl,
        "train_psnr_db": train_psnr["rgb"], "train_psnr_depth_db": train_psnr["depth"],
        "val_psnr_db": val_psnr["rgb"] if val_psnr else None,
        "val_psnr_depth_db": val_psnr["depth"] if val_psnr else None,
        "val_split": args.val_split, "normalization": args.normalization, "shift_factor": shift, "scaling_factor": 1.0 / std,
    }  # fmt: skip
    (out / "train_report.json").write_text(json.dumps(report, indent=2))
    log.info("VAE: %s", report)
    return report


if __name__ == "__main__":
    main()
