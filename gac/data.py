"""Training samples: 8-frame interleaved sequences cut from RealEstate10K-form clips with depth (paper 5.1).

A sample is ``frames_per_sample`` frames; with the grid on, each frame is a 2x2 grid of four consecutive views
(a "frame" of the paper's 8-frame sequences), and with probability ``single_reference_prob`` the first frame holds
only its first view, which is how every inference rollout starts (one reference image). Consecutive views are
``stride`` source frames apart, stride drawn uniformly from [min_stride, max_stride]. The first 1-4 frames are
context, the rest targets. Poses are relative to the first view and lengths are divided by the median depth of
that view (:mod:`gac.geometry`).

Image latents are encoded once per source frame (posterior mean and std kept, a fresh posterior sample drawn per
use, as Bagel trains); geometry depends on each sample's scale and is encoded per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gac import geometry as geo
from gac.model import GaCConfig
from gac.sequence import FrameData
from gac.vae import LatentCodec


@dataclass(frozen=True)
class DataConfig:
    frames_per_sample: int = 8
    grid: bool = True
    max_context: int = 4
    min_stride: int = 1
    max_stride: int = 4
    single_reference_prob: float = 0.5
    geometry: str = "depth"
    """Geometry context: "depth" (default, Table 4) or "pointmap"."""
    variant: str = "geometry"
    """"geometry" (#1), "warped" (#2) or "none" (#3), paper 4.1."""


@dataclass
class ClipArrays:
    clip_id: str
    frames: np.ndarray  # uint8 (F, H, W, 3)
    depth: np.ndarray  # float32 (F, H, W) z-depth
    K: np.ndarray  # (3, 3) pixels
    c2w: np.ndarray  # (F, 4, 4)


def load_clip_arrays(clip, max_frames: int | None = None) -> ClipArrays:
    """Read every frame and depth map of a :class:`gac_bench.datasets.clip.Clip` into memory."""
    n = clip.num_frames if max_frames is None else min(max_frames, clip.num_frames)
    if not clip.has_depth:
        raise ValueError(f"clip {clip.clip_id} has no depth; GaC training needs depth for its geometry context")
    frames = np.stack([clip.frame(i) for i in range(n)])
    depth = np.stack([clip.depth(i) for i in range(n)])
    return ClipArrays(clip.clip_id, frames, depth, np.asarray(clip.K, dtype=np.float64), np.asarray(clip.c2w[:n]))


def view_groups(cfg: DataConfig, single_reference: bool) -> list[list[int]]:
    """View offsets of each frame: [[0], [1..4], [5..8], ...] or [[0..3], [4..7], ...] (grid), [[0], [1], ...]."""
    per = 4 if cfg.grid else 1
    if cfg.grid and single_reference:
        return [[0]] + [[1 + per * k + c for c in range(per)] for k in range(cfg.frames_per_sample - 1)]
    return [[per * k + c for c in range(per)] for k in range(cfg.frames_per_sample)]


class SampleMaker:
    """Draws training samples (lists of :class:`FrameData` + number of context frames)."""

    def __init__(
        self, clips: list[ClipArrays], codec: LatentCodec, model_cfg: GaCConfig, cfg: DataConfig, device="cpu"
    ):
        if codec.latent_channels != model_cfg.latent_channels:
            raise ValueError(
                f"VAE has {codec.latent_channels} latent channels, model config expects {model_cfg.latent_channels}"
            )
        self.clips, self.codec, self.mcfg, self.cfg, self.device = clips, codec, model_cfg, cfg, torch.device(device)
        self.moments = [self._encode_clip(c) for c in clips]

    def _encode_clip(self, clip: ClipArrays) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        means, stds = [], []
        for i in range(0, len(x), 32):
            m, s = self.codec.encode_moments(x[i : i + 32])
            means.append(m.to(self.device))
            stds.append(s.to(self.device))
        return torch.cat(means), torch.cat(stds)

    def _aux_images(self, clip: ClipArrays, idx: np.ndarray, groups, c2w_n, scale) -> list[np.ndarray] | None:
        """Per-view auxiliary images in [-1, 1] (H, W, 3): geometry of each view, or its warped image."""
        if self.cfg.variant == "geometry":
            kind = self.cfg.geometry
            return [geo.encode_geometry(kind, clip.depth[i], clip.K, c2w_n[j], scale) for j, i in enumerate(idx)]
        if self.cfg.variant == "warped":
            from baselines.depth_warp import warp_reference

            out: list[np.ndarray | None] = [None] * len(idx)
            for k in range(1, len(groups)):
                prev = groups[k - 1]
                for c, j in enumerate(groups[k]):
                    src = prev[c] if c < len(prev) else prev[0]
                    warped, _ = warp_reference(clip.frames[idx[src]], clip.depth[idx[src]], clip.K,
                                               clip.c2w[idx[src]], clip.c2w[idx[j]])  # fmt: skip
                    out[j] = warped.astype(np.float32) / 127.5 - 1.0
            return out
        return None

    def make(self, rng: np.random.Generator, generator: torch.Generator) -> tuple[list[FrameData], int]:
        cfg, mcfg = self.cfg, self.mcfg
        ci = int(rng.integers(len(self.clips)))
        clip, (mean, std) = self.clips[ci], self.moments[ci]
        groups = view_groups(cfg, single_reference=bool(rng.random() < cfg.single_reference_prob))
        n_views = groups[-1][-1] + 1
        F_clip = len(clip.frames)
        if n_views > F_clip:
            raise ValueError(f"clip {clip.clip_id} has {F_clip} frames; a sample needs {n_views}")
        stride = int(rng.integers(cfg.min_stride, cfg.max_stride + 1))
        while stride > 1 and (n_views - 1) * stride + 1 > F_clip:
            stride -= 1
        start = int(rng.integers(0, F_clip - (n_views - 1) * stride))
        idx = start + stride * np.arange(n_views)
        num_context = int(rng.integers(1, min(cfg.max_context, cfg.frames_per_sample - 1) + 1))
        scale = geo.scene_scale(clip.depth[idx[0]])
        c2w_n = geo.normalize_poses(clip.c2w[idx], clip.c2w[idx[0]], scale)
        H, W = clip.frames.shape[1:3]
        rays = geo.view_rays(clip.K, c2w_n, H, W, self.device)
        t_idx = torch.as_tensor(idx, device=self.device)
        noise = torch.randn(mean[t_idx].shape, generator=generator).to(self.device)
        lat = mean[t_idx] + std[t_idx] * noise  # posterior sample per use
        aux_imgs = self._aux_images(clip, idx, groups, c2w_n, scale)
        aux_lat = [None] * n_views
        if aux_imgs is not None:
            have = [j for j, a in enumerate(aux_imgs) if a is not None]
            x = torch.from_numpy(np.stack([aux_imgs[j] for j in have])).permute(0, 3, 1, 2)
            enc = self.codec.encode_float(x, sample=True).to(self.device)
            for j, z in zip(have, enc):
                aux_lat[j] = z
        frames = []
        for g in groups:
            cells = list(range(len(g)))
            image = geo.make_item([lat[j] for j in g], [rays[j] for j in g], cells, mcfg, 2)
            aux = None
            if all(aux_lat[j] is not None for j in g):
                aux = geo.make_item([aux_lat[j] for j in g], [rays[j] for j in g], cells, mcfg, 2)
            frames.append(FrameData(image, aux))
        return frames, num_context
