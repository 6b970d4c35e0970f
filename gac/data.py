"""Training samples: 8-frame interleaved sequences cut from RealEstate10K-form clips with depth (paper 5.1).

A sample is ``frames_per_sample`` frames; with the grid on, each frame is a 2x2 grid of four consecutive views
(a "frame" of the paper's 8-frame sequences), and with probability ``single_reference_prob`` the first frame holds
only its first view, which is how every inference rollout starts (one reference image). Consecutive views are
``stride`` source frames apart, stride drawn uniformly from [min_stride, max_stride]. The first 1-4 frames are
context, the rest targets. Lengths are divided by the median depth of the first view (:mod:`gac.geometry`).

Options beyond the paper (off by default; what each is for is in gac/README.md, "Training recipe"):

* ``pose_anchor="last-context"``: poses relative to the most recent context view instead of the first view, so a
  target's relative pose stays as small as in training however long the rollout (the sampler follows the
  checkpoint's choice);
* ``max_gap``: consecutive frames of a sample may skip up to this many grid frames, so context looks like what
  retrieval picks at inference (the reference plus non-adjacent frames) and samples span the 189 source frames
  of an evaluation trajectory;
* ``revisit_prob``: the sample turns back after a random view and retraces its poses (a forth-and-back path), so
  targets whose pose equals a context pose teach the model to reproduce what it has seen.

Image latents are encoded once per source frame (posterior mean and std kept, a fresh posterior sample drawn per
use, as Bagel trains). Geometry depends on each sample's scale and is encoded per batch of samples on the
device, in one VAE call.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from gac import geometry as geo
from gac.batch_builder import DeviceBanks, HostSequence, LayoutBuilder, assemble, patchify_views, ray_patches_views
from gac.model import GaCConfig
from gac.sequence import FrameData, Packed
from gac.vae import LatentCodec

POSE_ANCHORS = ("first", "last-context")


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
    pose_anchor: str = "first"
    """"first" (the first view, CameraCtrl's relative poses) or "last-context" (the most recent context view)."""
    max_gap: int = 0
    """Frames of a sample may skip up to this many grid frames between each other (0: contiguous)."""
    revisit_prob: float = 0.0
    """Probability that a sample turns back and retraces its poses (forth-and-back)."""

    def __post_init__(self):
        if self.pose_anchor not in POSE_ANCHORS:
            raise ValueError(f"pose_anchor must be one of {POSE_ANCHORS}, got {self.pose_anchor!r}")
        if not 1 <= self.min_stride <= self.max_stride:
            raise ValueError(f"need 1 <= min_stride <= max_stride, got {self.min_stride}, {self.max_stride}")
        if self.frames_per_sample < 2:
            raise ValueError("a sample needs at least 2 frames (one context, one target)")

    @property
    def views_per_frame(self) -> int:
        return 4 if self.grid else 1

    def min_clip_frames(self) -> int:
        """Source frames a clip needs for one sample at stride 1 with no gaps (the smallest span there is)."""
        return view_groups(self, single_reference=True)[-1][-1] + 1


@dataclass
class ClipArrays:
    clip_id: str
    frames: np.ndarray  # uint8 (F, H, W, 3)
    depth: np.ndarray  # (F, H, W) z-depth, float32 or float16
    K: np.ndarray  # (3, 3) pixels
    c2w: np.ndarray  # (F, 4, 4)


def load_clip_arrays(clip, max_frames: int | None = None, depth_dtype=np.float32, frame_stride: int = 1) -> ClipArrays:
    """Read the frames and depth maps of a :class:`gac_bench.datasets.clip.Clip` into memory (every
    ``frame_stride``-th of the first ``max_frames``; the poses of the frames read)."""
    n = clip.num_frames if max_frames is None else min(max_frames, clip.num_frames)
    if not clip.has_depth:
        raise ValueError(f"clip {clip.clip_id} has no depth; GaC training needs depth for its geometry context")
    idx = range(0, n, frame_stride)
    frames = np.stack([clip.frame(i) for i in idx])
    depth = np.stack([clip.depth(i).astype(depth_dtype) for i in idx])
    return ClipArrays(clip.clip_id, frames, depth, np.asarray(clip.K, dtype=np.float64),
                      np.asarray(clip.c2w[:n:frame_stride]))  # fmt: skip


def resize_clip(arr: ClipArrays, width: int, height: int) -> ClipArrays:
    """Frames and depth area-resampled to (height, width), intrinsics scaled per axis (normalised K unchanged).

    For training at a lower resolution than the split renders (experiments on few cores)."""
    import torch
    import torch.nn.functional as F

    H, W = arr.frames.shape[1:3]
    if (H, W) == (height, width):
        return arr
    rgb = torch.from_numpy(arr.frames).permute(0, 3, 1, 2).float()
    rgb = F.interpolate(rgb, size=(height, width), mode="area").round().clamp(0, 255).to(torch.uint8)
    depth = F.interpolate(torch.from_numpy(arr.depth.astype(np.float32))[:, None], size=(height, width), mode="area")
    K = arr.K.copy()
    K[0] *= width / W
    K[1] *= height / H
    return ClipArrays(arr.clip_id, rgb.permute(0, 2, 3, 1).numpy(), depth[:, 0].numpy().astype(arr.depth.dtype), K,
                      arr.c2w)  # fmt: skip


_TO_LOAD: list = []  # clips handed to forked loader processes (inherited memory: clips need not pickle)


def _load_one(i: int, max_frames, depth_dtype, frame_stride) -> ClipArrays:
    return load_clip_arrays(_TO_LOAD[i], max_frames, depth_dtype, frame_stride)


def load_clips(clips: list, max_frames: int | None = None, workers: int = 16, depth_dtype=np.float32,
               frame_stride: int = 1) -> list:  # fmt: skip
    """:func:`load_clip_arrays` for many clips in parallel: forked processes where the OS has fork (PNG decoding
    holds the GIL, so threads do not scale: 48,000 frames took 50-80 s on 16 threads), else threads."""
    if len(clips) <= 1 or workers <= 1:
        return [load_clip_arrays(c, max_frames, depth_dtype, frame_stride) for c in clips]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if "fork" in mp.get_all_start_methods():
        _TO_LOAD[:] = clips
        try:
            one = partial(_load_one, max_frames=max_frames, depth_dtype=depth_dtype, frame_stride=frame_stride)
            with ProcessPoolExecutor(min(workers, len(clips)), mp_context=mp.get_context("fork")) as pool:
                return list(pool.map(one, range(len(clips))))
        finally:
            _TO_LOAD.clear()
    with ThreadPoolExecutor(min(workers, len(clips))) as pool:
        return list(pool.map(lambda c: load_clip_arrays(c, max_frames, depth_dtype, frame_stride), clips))


def view_groups(cfg: DataConfig, single_reference: bool) -> list[list[int]]:
    """View offsets of each frame: [[0], [1..4], [5..8], ...] or [[0..3], [4..7], ...] (grid), [[0], [1], ...]."""
    per = cfg.views_per_frame
    if cfg.grid and single_reference:
        return [[0]] + [[1 + per * k + c for c in range(per)] for k in range(cfg.frames_per_sample - 1)]
    return [[per * k + c for c in range(per)] for k in range(cfg.frames_per_sample)]


# ---------------------------------------------------------------------------------------------- sample plans


@dataclass
class SamplePlan:
    """Which source frames one sample reads and how it is laid out (drawn on the host, cheap)."""

    clip: int
    source: np.ndarray  # (V,) source frame of each view
    groups: list[list[int]]  # view indices of each frame
    num_context: int
    anchor: int  # view the poses are relative to
    keep_aux: list[bool]  # per frame: its geometry / warped item is kept (geometry dropout decided here)


def view_positions(n_views: int, groups: list[list[int]], gaps: list[int], turn: int | None) -> np.ndarray:
    """Position of each view along the clip path, in strides: views run consecutively, frame k shifted by
    ``views_per_frame * sum(gaps[1..k])``; after view ``turn`` the path retraces itself (position
    2 * turn + 1 - i, as the forth-and-back trajectory repeats its turning pose)."""
    per = max(len(g) for g in groups)
    lin = np.zeros(n_views, dtype=np.int64)
    shift = 0
    for k, g in enumerate(groups):
        shift += per * gaps[k]
        for v in g:
            lin[v] = v + shift
    if turn is None:
        return lin
    t = lin[turn]
    return np.where(lin <= t, lin, np.abs(2 * t + 1 - lin))


def plan_sample(rng: np.random.Generator, cfg: DataConfig, clip_lengths: list[int], geometry_dropout: float = 0.0,
                clip: int | None = None) -> SamplePlan:  # fmt: skip
    """Draw one sample's layout: clip, stride, start, gaps, turn, context count, anchor, dropped auxiliaries."""
    ci = int(rng.integers(len(clip_lengths))) if clip is None else clip
    groups = view_groups(cfg, single_reference=bool(rng.random() < cfg.single_reference_prob))
    n_views = groups[-1][-1] + 1
    num_context = int(rng.integers(1, min(cfg.max_context, cfg.frames_per_sample - 1) + 1))
    gaps = [0] + [int(rng.integers(0, cfg.max_gap + 1)) for _ in groups[1:]]
    turn = None
    if cfg.revisit_prob > 0 and rng.random() < cfg.revisit_prob:
        first_target = groups[num_context][0]
        turn = int(rng.integers(max(0, first_target - 1), n_views - 1))
    pos = view_positions(n_views, groups, gaps, turn)
    F_clip = clip_lengths[ci]
    if pos.max() + 1 > F_clip:  # drop the gaps, then the four-view first frame, before giving up
        pos = view_positions(n_views, groups, [0] * len(groups), turn)
    if pos.max() + 1 > F_clip and cfg.grid and len(groups[0]) > 1:
        groups = view_groups(cfg, single_reference=True)
        n_views = groups[-1][-1] + 1
        turn = None if turn is None else min(turn, n_views - 2)
        pos = view_positions(n_views, groups, [0] * len(groups), turn)
    span = int(pos.max())
    if span + 1 > F_clip:
        raise ValueError(f"clip {ci} has {F_clip} frames; a sample needs {span + 1}")
    stride = int(rng.integers(cfg.min_stride, cfg.max_stride + 1))
    while stride > 1 and span * stride + 1 > F_clip:
        stride -= 1
    start = int(rng.integers(0, F_clip - span * stride))
    anchor = 0 if cfg.pose_anchor == "first" else groups[num_context - 1][-1]
    keep = [True] * len(groups)
    if geometry_dropout > 0:
        keep = [bool(rng.random() >= geometry_dropout) for _ in groups]
    return SamplePlan(ci, start + stride * pos, groups, num_context, anchor, keep)


# ---------------------------------------------------------------------------------------------- sample maker


class SampleMaker:
    """Draws training samples (lists of :class:`FrameData` + number of context frames).

    Frames, depth and the VAE moments of every source frame live on ``device``; a batch of samples is made with
    one VAE call for all of its geometry items.
    """

    def __init__(
        self, clips: list[ClipArrays], codec: LatentCodec, model_cfg: GaCConfig, cfg: DataConfig, device="cpu"
    ):
        if codec.latent_channels != model_cfg.latent_channels:
            raise ValueError(
                f"VAE has {codec.latent_channels} latent channels, model config expects {model_cfg.latent_channels}"
            )
        need = cfg.min_clip_frames()
        short = [f"{c.clip_id} ({len(c.frames)})" for c in clips if len(c.frames) < need]
        if short:
            raise ValueError(
                f"{len(short)} clip(s) have fewer frames than one sample needs ({need} views of "
                f"{cfg.frames_per_sample} frames): {', '.join(short[:5])}; use fewer --frames, --no-grid or longer clips"
            )
        self.clips, self.codec, self.mcfg, self.cfg, self.device = clips, codec, model_cfg, cfg, torch.device(device)
        self.batch_warps = self.device.type == "cuda"  # variant #2: one batched warp per forward (else view by view)
        self.lengths = [len(c.frames) for c in clips]
        self.clip_offset = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        moments = [self._encode_clip(c) for c in clips]
        # every frame of every clip in one tensor, so a forward gathers all of its views at once
        self.mean_all = torch.cat([m for m, _ in moments])
        self.std_all = torch.cat([s for _, s in moments])
        self.depth_all = torch.cat([torch.from_numpy(np.ascontiguousarray(c.depth)) for c in clips]).to(self.device)
        self.median_depth = [self._median_depths(c.depth) for c in clips]
        H, W = clips[0].frames.shape[1:3]
        k = model_cfg.pixels_per_token
        self.layouts = LayoutBuilder(model_cfg, (H // k, W // k))

    def _encode_clip(self, clip: ClipArrays) -> tuple[torch.Tensor, torch.Tensor]:
        means, stds = [], []
        for i in range(0, len(clip.frames), 32):
            x = torch.from_numpy(clip.frames[i : i + 32]).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            m, s = self.codec.encode_moments(x)
            means.append(m.to(self.device))
            stds.append(s.to(self.device))
        return torch.cat(means), torch.cat(stds)

    @staticmethod
    def _median_depths(depth: np.ndarray) -> np.ndarray:
        """The scene scale of every frame, once (a sample takes that of its first view)."""
        return np.array([geo.scene_scale(d) for d in depth], dtype=np.float64)

    def latent_stats(self) -> tuple[float, float]:
        """Mean and std of the normalised posterior means over every frame (about 0 and 1 for a good VAE)."""
        m = self.mean_all.float()
        return float(m.mean()), float(m.std())

    # ------------------------------------------------------------------ plans
    def plan(self, rng: np.random.Generator, geometry_dropout: float = 0.0, clip: int | None = None) -> SamplePlan:
        return plan_sample(rng, self.cfg, self.lengths, geometry_dropout, clip)

    def make(self, rng: np.random.Generator, generator: torch.Generator, geometry_dropout: float = 0.0):
        """One sample: (frames, num_context)."""
        (frames, n_ctx), = self.make_batch([self.plan(rng, geometry_dropout)], generator)  # fmt: skip
        return frames, n_ctx

    # ------------------------------------------------------------------ materialise
    def _poses(self, plan: SamplePlan) -> tuple[np.ndarray, float]:
        clip = self.clips[plan.clip]
        scale = float(self.median_depth[plan.clip][plan.source[0]])
        c2w = clip.c2w[plan.source]
        return geo.normalize_poses(c2w, c2w[plan.anchor], scale), scale

    def make_batch(self, plans: list[SamplePlan], generator: torch.Generator) -> list[tuple[list[FrameData], int]]:
        """Materialise plans item by item (the reference of :meth:`build_forward`): image latents (fresh posterior
        samples), rays, and every kept geometry / warped item of the batch encoded in one VAE call."""
        poses = [self._poses(plan) for plan in plans]
        views = [self._aux_views(plan) for plan in plans]
        aux_lat: dict[tuple[int, int], torch.Tensor] = {}
        if any(views):
            enc = self.codec.encode_float(self._aux_images_batch(plans, views, poses), batch=256, sample=True)
            pairs = [(p_i, v) for p_i, vs in enumerate(views) for v in vs]
            aux_lat = dict(zip(pairs, enc.to(self.device)))
        out = []
        for p_i, (plan, (c2w_n, _)) in enumerate(zip(plans, poses)):
            clip = self.clips[plan.clip]
            rays = geo.view_rays(clip.K, c2w_n, *clip.frames.shape[1:3], self.device)
            idx = geo.h2d(self.clip_offset[plan.clip] + plan.source, self.device)
            noise = geo.randn((len(plan.source),) + tuple(self.mean_all.shape[1:]), generator, self.device)
            lat = self.mean_all[idx] + self.std_all[idx] * noise  # posterior sample per use
            frames = []
            for g in plan.groups:
                cells = list(range(len(g)))
                image = geo.make_item([lat[j] for j in g], [rays[j] for j in g], cells, self.mcfg, 2)
                aux = None
                if all((p_i, j) in aux_lat for j in g):
                    aux = geo.make_item([aux_lat[(p_i, j)] for j in g], [rays[j] for j in g], cells, self.mcfg, 2)
                frames.append(FrameData(image, aux))
            out.append((frames, plan.num_context))
        return out

    # ------------------------------------------------------------------ vectorised forwards
    def layout(self, plan: SamplePlan, rng: np.random.Generator, t_shift: float = 1.0, context_noise: float = 0.0,
               fixed_t: float | None = None, swap_targets: bool = False) -> HostSequence:  # fmt: skip
        """The host-side layout of one planned sample (timesteps and noise levels drawn from ``rng``)."""
        return self.layouts.layout(plan.groups, plan.num_context, self.cfg.variant, plan.keep_aux, rng, t_shift,
                                   context_noise, fixed_t, swap_targets)  # fmt: skip

    def build_forward(self, plans: list[SamplePlan], seqs: list[HostSequence], noise_generator: torch.Generator,
                      pad_to: int | None = None) -> Packed:  # fmt: skip
        """One packed forward of planned samples and their layouts (:mod:`gac.batch_builder`)."""
        banks = self.device_banks(plans, seqs, noise_generator)
        return assemble(seqs, banks, self.layouts.T, self.device, noise_generator, pad_to)

    def device_banks(self, plans: list[SamplePlan], seqs: list[HostSequence], noise_generator) -> DeviceBanks:
        p, k = self.mcfg.latent_patch_size, self.mcfg.pixels_per_token
        src = np.concatenate([self.clip_offset[pl.clip] + pl.source for pl in plans])
        idx = geo.h2d(src, self.device)
        mean, std = self.mean_all.index_select(0, idx), self.std_all.index_select(0, idx)
        lat = mean + std * geo.randn(mean.shape, noise_generator, self.device)  # posterior sample per use
        poses = [self._poses(pl) for pl in plans]
        image_offset = np.concatenate([[0], np.cumsum([len(pl.source) for pl in plans])[:-1]]).tolist()
        aux_offset = np.concatenate([[0], np.cumsum([len(sq.aux_views) for sq in seqs])[:-1]]).tolist()
        tokens = [patchify_views(lat, p)]
        if any(sq.aux_views for sq in seqs):
            aux = self._aux_images_batch(plans, [sq.aux_views for sq in seqs], poses)
            enc = self.codec.encode_float(aux, batch=256, sample=True, generator=noise_generator).to(self.device)
            tokens.append(patchify_views(enc.to(lat.dtype), p))
        rays = ray_patches_views(self._view_rays(plans, [c for c, _ in poses]), k)
        return DeviceBanks(torch.cat(tokens), rays, image_offset, aux_offset, len(src))

    def _view_rays(self, plans: list[SamplePlan], c2w_n: list[np.ndarray]) -> torch.Tensor:
        """Plücker maps (V, 6, H, W) of every view of the forward: one computation when the clips share K."""
        K0 = self.clips[plans[0].clip].K
        H, W = self.clips[plans[0].clip].frames.shape[1:3]
        if all(np.array_equal(self.clips[pl.clip].K, K0) for pl in plans):
            return geo.view_rays(K0, np.concatenate(c2w_n), H, W, self.device)
        return torch.cat([geo.view_rays(self.clips[pl.clip].K, c, H, W, self.device) for pl, c in zip(plans, c2w_n)])

    def _aux_images_batch(self, plans: list[SamplePlan], views: list[list[int]], poses) -> torch.Tensor:
        """(sum of len(views), 3, H, W) in [-1, 1], in aux-bank order: the encoded geometry of the views (one
        computation when the clips share K), or their warped images."""
        if self.cfg.variant != "geometry":
            return self._warped_images_batch(plans, views)
        K0 = self.clips[plans[0].clip].K
        if not all(np.array_equal(self.clips[pl.clip].K, K0) for pl in plans):  # point maps unproject with each K
            return torch.cat([self._aux_images_batch([pl], [v], [ps]) for pl, v, ps in zip(plans, views, poses) if v])
        src = np.concatenate([self.clip_offset[pl.clip] + pl.source[v] for pl, v in zip(plans, views)])
        scale = np.concatenate([np.full(len(v), s) for v, (_, s) in zip(views, poses)])
        c2w = np.concatenate([c[v] for v, (c, _) in zip(views, poses)])
        depth = self.depth_all.index_select(0, geo.h2d(src, self.device)).float()
        return geo.encode_geometry_torch(self.cfg.geometry, depth, K0, c2w, geo.h2d(scale.astype(np.float32), self.device))

    def _aux_views(self, plan: SamplePlan) -> list[int]:
        """Views whose auxiliary item is kept: every view of a kept frame (geometry), or of a kept frame that has
        a predecessor to be warped from (warped)."""
        if self.cfg.variant == "none":
            return []
        first = 1 if self.cfg.variant == "warped" else 0
        return [j for k, g in enumerate(plan.groups) if k >= first and plan.keep_aux[k] for j in g]

    def _warp_pairs(self, plan: SamplePlan, views: list[int]) -> list[tuple[int, int]]:
        """(source frame, destination frame) of each view's warp: from the same cell of the previous frame."""
        view_frame = {j: k for k, g in enumerate(plan.groups) for j in g}
        pairs = []
        for j in views:
            k = view_frame[j]
            prev, c = plan.groups[k - 1], plan.groups[k].index(j)
            pairs.append((int(plan.source[prev[c] if c < len(prev) else prev[0]]), int(plan.source[j])))
        return pairs

    def _warped_images_batch(self, plans: list[SamplePlan], views: list[list[int]]) -> torch.Tensor:
        """(sum of len(views), 3, H, W) in [-1, 1]: each view's image warped from the previous frame, in aux-bank
        order. On CUDA every view of the forward goes through one batched warp (one upload, no device sync); on the
        CPU view by view, which is faster there (64 views at 256x144, 2 cores: 0.68 s per view loop against 1.27 s
        batched)."""
        from gac_bench.pointcloud import warp_batch, warp_reference

        jobs = [(self.clips[pl.clip], a, b) for pl, v in zip(plans, views) if v for a, b in self._warp_pairs(pl, v)]
        K0 = jobs[0][0].K
        if not self.batch_warps or not all(np.array_equal(c.K, K0) for c, _, _ in jobs):
            out = [warp_reference(c.frames[a], c.depth[a].astype(np.float32), c.K, c.c2w[a], c.c2w[b])[0]
                   for c, a, b in jobs]  # fmt: skip
            return torch.from_numpy(np.stack(out)).float().div(127.5).sub(1.0).permute(0, 3, 1, 2).contiguous()
        images = geo.h2d(torch.from_numpy(np.stack([c.frames[a] for c, a, _ in jobs])), self.device)
        depth = geo.h2d(torch.from_numpy(np.stack([c.depth[a] for c, a, _ in jobs]).astype(np.float32)), self.device)
        c2w_src = np.stack([c.c2w[a] for c, a, _ in jobs])
        c2w_dst = np.stack([c.c2w[b] for c, _, b in jobs])
        warped, _ = warp_batch(images, depth, K0, c2w_src, c2w_dst)
        return (warped.float() / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
