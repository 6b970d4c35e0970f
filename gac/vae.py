"""The latent codec: a diffusers ``AutoencoderKL`` loaded from a local folder, with its scale and shift.

GaC encodes views and geometry with the FLUX VAE (paper 5.1): 16 latent channels, 8x down,
z = 0.3611 (z_raw - 0.1159) (gac-model.md section 2). Point ``vae=`` at a diffusers-layout folder
(``config.json`` + ``diffusion_pytorch_model.safetensors``), e.g. the ``vae/`` folder of FLUX.1-schnell.

``small_vae_config`` / ``tiny_vae_config`` give small AutoencoderKLs of the same interface. Random ones are for
shape and plumbing tests only; ``python -m gac.train_vae`` trains a small one quickly as a stand-in where the FLUX
weights are not available (say so wherever its numbers are reported).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FLUX_VAE_CONFIG = dict(
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=16, norm_num_groups=32,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False,
    force_upcast=True, sample_size=1024,
)  # fmt: skip


def small_vae_config(latent_channels: int = 16, width: int = 32) -> dict:
    """A FLUX-shaped (8x down, 16 channels) AutoencoderKL of a few million parameters."""
    return dict(
        FLUX_VAE_CONFIG, block_out_channels=[width, 2 * width, 4 * width, 4 * width], layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=8, scaling_factor=1.0, shift_factor=0.0,
        mid_block_add_attention=False, force_upcast=False,
    )  # fmt: skip


def tiny_vae_config(latent_channels: int = 4) -> dict:
    """8x down with a handful of channels: CPU tests only."""
    return dict(
        FLUX_VAE_CONFIG, block_out_channels=[8, 8, 16, 16], layers_per_block=1, latent_channels=latent_channels,
        norm_num_groups=4, scaling_factor=1.0, shift_factor=0.0, mid_block_add_attention=False, force_upcast=False,
    )  # fmt: skip


def _autoencoder_cls():
    try:
        from diffusers import AutoencoderKL
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("GaC needs diffusers for its VAE: pip install -e . (or pip install diffusers)") from exc
    return AutoencoderKL


class LatentCodec:
    """Pixels in [-1, 1] <-> normalised latents ``scale * (z - shift)`` (B, C, H/8, W/8)."""

    def __init__(self, vae, sample_posterior: bool = False):
        self.vae = vae.eval().requires_grad_(False)
        cfg = vae.config
        self.scale = float(cfg.scaling_factor)
        self.shift = float(cfg.shift_factor or 0.0)
        self.latent_channels = int(cfg.latent_channels)
        ds = getattr(cfg, "downsample", None)
        self.downsample = int(ds) if ds else 2 ** (len(cfg.block_out_channels) - 1)
        self.sample_posterior = sample_posterior

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None):
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/8, W/8); posterior sample (Bagel's training) or mean."""
        dist = self.vae.encode(x.to(self.device, self.dtype)).latent_dist
        sample = self.sample_posterior if sample is None else sample
        z = dist.sample(generator) if sample else dist.mean
        return (self.scale * (z - self.shift)).float()

    @torch.no_grad()
    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised posterior mean and std, each (B, C, h, w), so that training can draw fresh samples cheaply."""
        dist = self.vae.encode(x.to(self.device, self.dtype)).latent_dist
        return (self.scale * (dist.mean - self.shift)).float(), (self.scale * dist.std).float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) normalised latents -> (B, 3, H, W) float in [-1, 1] (clamped)."""
        raw = z.to(self.device, self.dtype) / self.scale + self.shift
        return self.vae.decode(raw).sample.float().clamp(-1.0, 1.0)

    def encode_uint8(self, images: np.ndarray, batch: int = 16, **kw) -> torch.Tensor:
        """uint8 (B, H, W, 3) RGB -> latents (B, C, h, w) float32."""
        x = torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0
        return self.encode_float(x, batch, **kw)

    def encode_float(self, x: torch.Tensor, batch: int = 16, **kw) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> latents, in chunks of ``batch``."""
        return torch.cat([self.encode(x[i : i + batch], **kw) for i in range(0, len(x), batch)])

    def decode_uint8(self, z: torch.Tensor, batch: int = 16) -> np.ndarray:
        """latents (B, C, h, w) -> uint8 (B, H, W, 3)."""
        outs = []
        for i in range(0, len(z), batch):
            x = self.decode(z[i : i + batch])
            outs.append(((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(outs)

    def decode_float(self, z: torch.Tensor, batch: int = 16) -> np.ndarray:
        """latents -> float32 (B, H, W, 3) in [-1, 1] (for geometry decoding)."""
        return np.concatenate(
            [self.decode(z[i : i + batch]).permute(0, 2, 3, 1).cpu().numpy() for i in range(0, len(z), batch)]
        )


def random_vae(config: dict, seed: int = 0):
    """An AutoencoderKL with seeded random weights (tests and stand-ins before training)."""
    torch.manual_seed(seed)
    return _autoencoder_cls()(**config)


def save_vae(vae, folder: Path) -> Path:
    """diffusers layout (config.json + diffusion_pytorch_model.safetensors), loadable without pickle."""
    folder = Path(folder)
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


def load_vae(
    folder: Path, device="cpu", dtype: torch.dtype = torch.float32, sample_posterior: bool = False
) -> LatentCodec:
    """Load a diffusers AutoencoderKL folder offline; a missing folder raises FileNotFoundError saying which."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    weights = folder / "diffusion_pytorch_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"VAE folder {folder} must hold config.json and diffusion_pytorch_model.safetensors (diffusers layout, "
            "e.g. the vae/ folder of black-forest-labs/FLUX.1-schnell)"
        )
    cls_name = json.loads(cfg_path.read_text()).get("_class_name", "AutoencoderKL")
    if cls_name == "GaCPatchVAE":  # the project's stand-in (gac/patch_vae.py)
        from gac.patch_vae import load_patch_vae

        return LatentCodec(load_patch_vae(folder, dtype).to(device=device), sample_posterior=sample_posterior)
    if cls_name != "AutoencoderKL":
        raise ValueError(f"VAE folder {folder}: expected an AutoencoderKL or GaCPatchVAE, config says {cls_name}")
    vae = _autoencoder_cls().from_pretrained(folder, local_files_only=True, use_safetensors=True, torch_dtype=dtype)
    return LatentCodec(vae.to(device=device), sample_posterior=sample_posterior)


MIN_VAE_STEPS = 200
MIN_VAE_PSNR_DB = 20.0


def vae_training_problem(folder: Path) -> str | None:
    """One line saying why a stand-in VAE is unfit to train GaC on (too few steps, reconstruction too poor), from
    its ``train_report.json``; None when it looks fine or has no report (the FLUX VAE)."""
    report_path = Path(folder) / "train_report.json"
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None
    steps = int(report.get("steps", 0))
    psnr = report.get("val_psnr_db") or report.get("train_psnr_db")
    if (psnr is not None and psnr < MIN_VAE_PSNR_DB) or (psnr is None and steps < MIN_VAE_STEPS):
        shown = f"{psnr:.1f} dB" if psnr is not None else "unknown"
        return (
            f"the VAE at {folder} was trained for {steps} steps (reconstruction PSNR {shown}), too little to train "
            f"GaC on: retrain it longer (python -m gac.train_vae ... --time-limit SECONDS, on a GPU) or pass the FLUX VAE"
        )
    return None
