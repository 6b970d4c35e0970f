"""Train a small FLUX-shaped AutoencoderKL as a *stand-in* for the FLUX VAE (whose weights we cannot download).

    python -m gac.train_vae --split synthroom --clips room00,...,room05 --out VAE_DIR --time-limit 90

Same interface as the FLUX VAE (16 latent channels, 8x down, diffusers folder), a few million parameters,
trained with L1 + MSE reconstruction and a small KL term on RGB frames and, one batch in four, on depth maps in
GaC's encoding (the FLUX VAE never saw depth; a tiny stand-in needs the help). After training, ``shift_factor`` and
``scaling_factor`` are set from the latent statistics so normalised latents have mean 0 and std 1 (FLUX's own
constants were found the same way). Any number produced with this VAE must say that it is a stand-in.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gac import geometry as geo
from gac.train import load_training_clips
from gac.vae import random_vae, save_vae, small_vae_config

log = logging.getLogger("gac.train_vae")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gac.train_vae")
    p.add_argument("--split", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--clips", default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--latent-channels", type=int, default=16)
    p.add_argument("--width-mult", type=int, default=32, help="channels of the first VAE level")
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--time-limit", type=float, default=90.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kl", type=float, default=1e-6)
    p.add_argument("--depth-fraction", type=float, default=0.25)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    clips = load_training_clips(args)
    frames = torch.from_numpy(np.concatenate([c.frames for c in clips])).permute(0, 3, 1, 2).contiguous()
    depths = np.concatenate([c.depth for c in clips])
    depth_imgs = torch.from_numpy(np.stack([geo.encode_depth(d, geo.scene_scale(d))[..., 0] for d in depths]))
    rng = np.random.default_rng(args.seed)
    vae = random_vae(small_vae_config(args.latent_channels, args.width_mult), args.seed).to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    on_gpu = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)
    t0, step, losses = time.perf_counter(), 0, []
    while step < args.steps and time.perf_counter() - t0 < args.time_limit:
        idx = rng.integers(len(frames), size=args.batch)
        if rng.random() < args.depth_fraction:
            x = depth_imgs[idx][:, None].repeat(1, 3, 1, 1).to(device)
        else:
            x = frames[idx].to(device).float() / 127.5 - 1.0
        if rng.random() < 0.5:
            x = x.flip(-1)
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
        if step % 200 == 0:
            log.info("step %d loss %.4f", step, float(np.mean(losses[-200:])))
    vae.eval()
    with torch.no_grad():  # latent statistics -> shift and scale (normalised latents ~ N(0, 1))
        sample = frames[rng.integers(len(frames), size=min(256, len(frames)))].to(device).float() / 127.5 - 1.0
        z = torch.cat([vae.encode(sample[i : i + 32]).latent_dist.mean for i in range(0, len(sample), 32)])
        rec = torch.cat([vae.decode(z[i : i + 32]).sample.clamp(-1, 1) for i in range(0, len(z), 32)])
        psnr = float(-10 * torch.log10(((rec - sample) / 2).pow(2).mean()))
        shift, std = float(z.mean()), float(z.std())
    vae.register_to_config(shift_factor=shift, scaling_factor=1.0 / std)
    out = save_vae(vae.cpu(), Path(args.out))
    report = {"steps": step, "seconds": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-50:])),
              "train_psnr_db": psnr, "shift_factor": shift, "scaling_factor": 1.0 / std,
              "parameters": sum(p.numel() for p in vae.parameters()), "stand_in": True}  # fmt: skip
    (out / "train_report.json").write_text(json.dumps(report, indent=2))
    log.info("VAE: %s", report)
    return report


if __name__ == "__main__":
    main()
