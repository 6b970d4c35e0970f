"""Autoregressive GaC rollout along a camera trajectory (paper Figure 2b and 5.1), written out in full.

One rollout step for target frame j (a 2x2 grid of the next four views, or one view with the grid off):

  1. retrieval  pick up to ``context_size`` earlier frames by frustum overlap (:mod:`gac.retrieval`);
  2. prefill    pack them as clean context (``<Image> I_k [<Geometry> G_k]`` in temporal order) and run them once,
                keeping their keys/values in the KV cache. The retrieved set changes from target to target and
                RoPE ids follow packing order, so the cache is rebuilt per target frame (about one forward over the
                context, against ``steps`` forwards of the target);
  3. geometry   (``emit_geometry``, variant #1, ``geometry_after_image=False``) ``<Geometry>``: sample G of the
                most recent frame, decode it as depth, and append its clean copy to the cache (a generated item
                re-enters as clean context); by default G_j is sampled instead right after step 4, from I_j appended
                clean (the training order {I_j, G_j}), and retrieval is left as it is;
     warped     (variant #2) ``<Warped>``: sample the warped image of frame j, append it clean;
  4. image      ``<Image>``: sample I_j with ``steps`` Euler steps. Each step runs the noisy query
                ``<vision_start> x_t <vision_end>`` against the cache with no mask (a noisy target sees the
                whole context and itself; the cache is read, never written); no classifier-free guidance;
  5. memory     decode I_j to pixels; store its clean tokens (re-encoded from the pixels, Bagel's own flow, or the
                sampled latent itself with ``reencode=False``) as a memory frame.

A trajectory of N poses gives frame 0 = the reference (a one-cell frame) and ceil((N-1)/4) target grids; a last
grid with fewer than four new views repeats its last pose and the extra view is dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from gac import geometry as geo
from gac.data import POSE_ANCHORS
from gac.fast_inference import fold_camera_gate, to_float8
from gac.flow import EulerSchedule
from gac.geometry import LatentItem
from gac.masks import CAUSAL, dense_mask
from gac.model import GaCModel, KVCache
from gac.retrieval import RetrievalConfig, frame_scores, select_context
from gac.sequence import SequenceBuilder
from gac.vae import LatentCodec

log = logging.getLogger(__name__)


def check_context_t(t: float) -> None:
    """ValueError unless ``t`` is a flow time a context item can carry: [0, 1) (1 is pure noise)."""
    if not 0.0 <= t < 1.0:
        raise ValueError(f"context_t must be in [0, 1) (a flow time; 1 is pure noise), got {t}")


@dataclass(frozen=True)
class SampleConfig:
    steps: int = 50
    shift: float = 3.0
    grid: bool = True
    variant: str = "geometry"
    geometry: str = "depth"
    emit_geometry: bool = False
    geometry_after_image: bool = True
    """With ``emit_geometry``: sample each frame's geometry G_i right after its image I_i, in the same step (the
    training order {I_i, G_i}), retrieval unchanged. False: sample it when the frame is next the newest context frame,
    which forces retrieval to keep the newest frame (``keep_recent``), and that alone cost the shipped model 0.62 dB
    (results/gac/runs_2026-12-01_emit_geometry/)."""
    reencode: bool = True
    context_t: float = 0.0
    """Flow time at which generated items enter the context (noise-augmented, x = (1 - t) x0 + t noise, the model told
    t); the reference image stays clean. Training's ``--context-noise`` shows the model clean items at t in [0, that];
    a generated view is not the clean data the model reads it as, and a small t tells it so. 0: all context clean."""
    compile: bool = False
    """torch.compile the unmasked passes (CUDA only; the first target frame pays the compile)."""
    fold_cga: bool = False
    """Fold CGA's Linear2 into the query projection, its ray term computed once per item (gac.fast_inference). It
    rewrites the model in place, so it is off here (validation samples from the model being trained) and on in the
    ``gac`` method."""
    fp8: bool = False
    """FP8 (e4m3, row-wise scaled) GEMMs in the decoder layers: faster on Hopper GPUs, not exact (gac.fast_inference)."""
    pose_anchor: str = "first"
    """"first": poses relative to the reference; "last-context": relative to the most recent context view, re-anchored
    for every target frame (the checkpoint's data config says which the model was trained with)."""
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)

    def __post_init__(self):
        check_context_t(self.context_t)


@dataclass
class MemoryFrame:
    views: list[int]  # trajectory indices of its cells
    image: LatentItem
    aux: LatentItem | None = None  # geometry G (variant #1) or warped image W (variant #2)


@dataclass
class RolloutResult:
    frames: np.ndarray  # uint8 (N, H, W, 3)
    depth: np.ndarray | None  # float32 (N, H, W) in input units, when geometry was generated
    contexts: list[list[int]]  # retrieved memory frames per target frame
    seconds: float


class _Context:
    """KV cache of clean context plus the RoPE/split counters and split table the masks need."""

    def __init__(self, model: GaCModel, device):
        self.model, self.device = model, torch.device(device)
        self.cache = KVCache()
        self.rope = self.split = 0
        self.split_id = torch.zeros(0, dtype=torch.long, device=device)
        self.split_mode = torch.zeros(0, dtype=torch.long, device=device)

    @torch.no_grad()
    def prefill(self, fill) -> None:
        """Run the segments ``fill(builder)`` appends over the cache and keep their keys/values."""
        b = SequenceBuilder(self.model.cfg, self.rope, self.split)
        fill(b)
        pk = b.build(self.device)
        split_id = torch.cat([self.split_id, pk.split_id])
        split_mode = torch.cat([self.split_mode, pk.split_mode])
        # One non-causal split (a clean item) over the clean cache sees everything (masks.allowed): no mask, so the
        # fused attention kernel and the compiled layers serve it. Decided from the builder, without a GPU sync.
        unmasked = pk.next_split - self.split == 1 and b.modes[0] != CAUSAL
        mask = None if unmasked else dense_mask(split_id, split_mode, num_cached=self.cache.length)
        self.model(pk.inputs, mask, cache=self.cache, write_cache=True)
        self.split_id, self.split_mode = split_id, split_mode
        self.rope, self.split = pk.next_rope, pk.next_split

    @torch.no_grad()
    def sample(self, template: LatentItem, schedule: EulerSchedule, generator: torch.Generator) -> torch.Tensor:
        """Denoise one item against the cache; returns its clean tokens (N, P) float32."""
        noise = torch.randn(template.tokens.shape, generator=generator).to(self.device)
        b = SequenceBuilder(self.model.cfg, self.rope, self.split)
        b.latent(template.with_tokens(noise), noisy=True, t=1.0, x_t=noise)
        inp = b.build(self.device).inputs
        n = inp.latents.shape[0]

        # a folded CGA's ray term depends on the rays alone, which every step of the item shares
        terms = self.model.camera_terms(inp.rays) if self.model.camera_folded else None

        def velocity(x: torch.Tensor, t_N: torch.Tensor) -> torch.Tensor:
            step_inp = dataclasses.replace(inp, latents=x, timesteps=t_N)
            return self.model(step_inp, None, cache=self.cache, write_cache=False, camera_terms=terms).float()

        return schedule.sample(lambda x, t: velocity(x, torch.full((n,), t, device=self.device)), noise)


@dataclass
class ContextNoise:
    """How items enter the context: clean, or (``t`` > 0) noise-augmented at flow time ``t`` with fresh noise from
    ``generator`` each time, as training's context noise does. Given items (the reference image) stay clean."""

    t: float = 0.0
    generator: torch.Generator | None = None

    def add(self, b: SequenceBuilder, item: LatentItem, modality: str = "image", given: bool = False):
        if self.t <= 0 or given:
            return b.latent(item, noisy=False, modality=modality)
        noise = torch.randn(item.tokens.shape, generator=self.generator).to(item.tokens)
        return b.latent(item, noisy=False, t=self.t, noise=noise, modality=modality)


def prefill_memory(ctx: _Context, frames: list[MemoryFrame], variant: str, noise: ContextNoise | None = None) -> None:
    """Context frames in temporal order, one segment per forward: a clean latent item over a clean cache needs no
    mask, so the long items run on the fused attention kernel and only the short prompts carry a mask."""
    noise = noise or ContextNoise()
    for mf in frames:
        if variant == "warped" and mf.aux is not None:
            ctx.prefill(lambda b: b.prompt("warped"))
            ctx.prefill(lambda b: noise.add(b, mf.aux, "warped"))
        ctx.prefill(lambda b: b.prompt("image"))
        ctx.prefill(lambda b: noise.add(b, mf.image, given=mf.views == [0]))
        if variant == "geometry" and mf.aux is not None:
            ctx.prefill(lambda b: b.prompt("geometry"))
            ctx.prefill(lambda b: noise.add(b, mf.aux, "geometry"))


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # pragma: no cover - older torch
        return False
    return has_triton()


class Rollout:
    """Generates the frames of one trajectory from one reference image."""

    def __init__(self, model: GaCModel, codec: LatentCodec, cfg: SampleConfig, device="cpu"):
        if cfg.variant not in ("geometry", "warped", "none"):
            raise ValueError(f"unknown variant {cfg.variant!r}")
        self.model, self.codec, self.cfg, self.device = model.eval(), codec, cfg, torch.device(device)
        self.schedule = EulerSchedule(cfg.steps, cfg.shift)
        if cfg.fold_cga:
            fold_camera_gate(model)
        if cfg.fp8:
            to_float8(model)
        if cfg.compile and self.device.type == "cuda":
            if _has_triton():
                model.compile_sampling()
            else:  # inductor needs Triton for CUDA kernels; sampling is the same without it, only slower
                log.warning("gac: compile=true but Triton is not installed; sampling eagerly")

    # ------------------------------------------------------------------ helpers
    def _item_rays(self, views: list[int], rays) -> torch.Tensor:
        """Ray patches of a frame's cells in cell order, as :func:`geometry.make_item` lays them out."""
        k = self.model.cfg.pixels_per_token
        return torch.cat([geo.ray_patches(rays[v].to(self.device), k) for v in views])

    def _anchored(self, mf: MemoryFrame, rays) -> MemoryFrame:
        """A memory frame whose items carry the rays of the current anchor."""
        r = self._item_rays(mf.views, rays)
        reray = lambda it: None if it is None else LatentItem(it.tokens, r.to(it.rays), it.pos2d, it.cells)  # noqa: E731
        return MemoryFrame(mf.views, reray(mf.image), reray(mf.aux))

    def _context(self, memory: list[MemoryFrame], chosen: list[int], rays) -> list[MemoryFrame]:
        if self.cfg.pose_anchor == "first":  # stored rays are already relative to the reference
            return [memory[i] for i in chosen]
        return [self._anchored(memory[i], rays) for i in chosen]

    def _anchor(self, memory, chosen, views, K, c2w, scale, rays_ref, c2w_ref, H, W):
        """(rays by view, c2w) of the context and ``views`` for this target: relative to the reference, or to the
        most recent context view (``last-context``; the cache is rebuilt per target anyway)."""
        if self.cfg.pose_anchor != "last-context":
            return rays_ref, c2w_ref
        anchor = memory[chosen[-1]].views[-1]
        needed = sorted({v for i in chosen for v in memory[i].views} | set(views))
        return self._rays_for(K, c2w, scale, anchor, needed, H, W), geo.normalize_poses(c2w, c2w[anchor], scale)

    def _rays_for(self, K, c2w, scale, anchor: int, views: list[int], H: int, W: int) -> dict[int, torch.Tensor]:
        """Plücker maps of ``views`` with poses relative to view ``anchor``."""
        c2w_a = geo.normalize_poses(c2w[views], c2w[anchor], scale)
        return dict(zip(views, geo.view_rays(K, c2w_a, H, W, self.device)))

    def _template(self, views: list[int], rays, h: int, w: int) -> LatentItem:
        C = self.codec.latent_channels
        zeros = [torch.zeros(C, h, w, device=self.device) for _ in views]
        cells = list(range(len(views)))
        return geo.make_item(zeros, [rays[v].to(self.device) for v in views], cells, self.model.cfg, 2)

    def _decode(self, tokens: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
        p = self.model.cfg.latent_patch_size
        return torch.stack(geo.split_item_tokens(tokens, n, self.codec.latent_channels, h, w, p))

    def _geometry(self, ctx: _Context, mf: MemoryFrame, rays, h, w, gen, c2w_n, scale, depth_out,
                  noise: ContextNoise) -> None:  # fmt: skip
        """Predict G of memory frame ``mf`` (prompt, sample, decode to depth, re-enter as context)."""
        ctx.prefill(lambda b: b.prompt("geometry"))
        template = self._template(mf.views, rays, h, w)
        tokens = ctx.sample(template, self.schedule, gen)
        mf.aux = template.with_tokens(tokens)
        ctx.prefill(lambda b: noise.add(b, mf.aux, "geometry"))
        imgs = self.codec.decode_float(self._decode(tokens, len(mf.views), h, w))
        for img, v in zip(imgs, mf.views):
            depth_out[v] = geo.decode_geometry(self.cfg.geometry, img, c2w_n[v], scale)

    # ------------------------------------------------------------------ speed
    @torch.no_grad()
    def seconds_per_evaluation(self, H: int, W: int, context_frames: int = 3) -> float:
        """Wall time of one model evaluation of a target grid over a typical cache (``context_frames`` grids),
        measured after one warm-up evaluation on this device."""
        h, w = H // self.codec.downsample, W // self.codec.downsample
        per = 4 if self.cfg.grid else 1
        rays = torch.zeros(per, 6, H, W, device=self.device)
        template = self._template(list(range(per)), rays, h, w)
        ctx = _Context(self.model, self.device)
        g = torch.Generator().manual_seed(0)
        for _ in range(context_frames):
            item = template.with_tokens(torch.randn(template.tokens.shape, generator=g).to(self.device))
            ctx.prefill(lambda b: b.prompt("image"))
            ctx.prefill(lambda b: b.latent(item, noisy=False))
        ctx.sample(template, EulerSchedule(1, self.cfg.shift), g)  # warm-up (and compile, where on)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        ctx.sample(template, EulerSchedule(2, self.cfg.shift), g)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / 2

    def expected_seconds(self, H: int, W: int, num_frames: int) -> float:
        """Expected wall time of a rollout of ``num_frames`` views: target grids x items per grid x steps."""
        per = 4 if self.cfg.grid else 1
        grids = -(-(num_frames - 1) // per)
        items = 1 + int(self.cfg.emit_geometry and self.cfg.variant == "geometry") + int(self.cfg.variant == "warped")
        return grids * items * self.cfg.steps * self.seconds_per_evaluation(H, W)

    # ------------------------------------------------------------------ rollout
    @torch.no_grad()
    def run(self, reference: np.ndarray, K: np.ndarray, c2w: np.ndarray, scale: float, seed: int = 0,
            on_frames: Callable[[int, int], None] | None = None) -> RolloutResult:  # fmt: skip
        """reference uint8 (H, W, 3) with H, W multiples of 16; K pixels; c2w (N, 4, 4) OpenCV, c2w[0] = reference;
        ``scale`` = scene scale (median reference depth, same units as c2w); ``on_frames(done, N)`` after every
        generated frame (or grid), for progress."""
        t0 = time.perf_counter()
        cfg, mcfg = self.cfg, self.model.cfg
        H, W = reference.shape[:2]
        k = mcfg.pixels_per_token
        if H % k or W % k:
            raise ValueError(f"view size {W}x{H} must be a multiple of {k} pixels")
        N = len(c2w)
        h, w = H // self.codec.downsample, W // self.codec.downsample
        gen = torch.Generator().manual_seed(int(seed))
        noise = ContextNoise(cfg.context_t, gen)
        if cfg.pose_anchor not in POSE_ANCHORS:
            raise ValueError(f"unknown pose_anchor {cfg.pose_anchor!r}")
        c2w_n = geo.normalize_poses(c2w, c2w[0], scale)  # retrieval always works relative to the reference
        rays_ref = geo.view_rays(K, c2w_n, H, W, self.device)  # (N, 6, H, W)
        per = 4 if cfg.grid else 1
        targets = [list(range(i, min(i + per, N))) for i in range(1, N, per)]
        targets = [g + [g[-1]] * (per - len(g)) for g in targets]

        frames = np.zeros((N, H, W, 3), dtype=np.uint8)
        frames[0] = reference
        want_depth = cfg.emit_geometry and cfg.variant == "geometry"
        depth = np.zeros((N, H, W), dtype=np.float32) if want_depth else None
        ref_lat = self.codec.encode_uint8(reference[None], sample=False).to(self.device)
        memory = [MemoryFrame([0], geo.make_item([ref_lat[0]], [rays_ref[0].to(self.device)], [0], mcfg, 2))]
        contexts = []
        # with geometry generated, the newest frame is always in context and last: its geometry G_i is sampled right
        # after its image I_i, the training order {I_i, G_i, I_i+1}, so every generated view gets its geometry once
        after_image = want_depth and cfg.geometry_after_image
        forced = want_depth and not after_image  # the newest frame must be in context, last, for its G to follow it
        retrieval = dataclasses.replace(cfg.retrieval, keep_recent=True, order="time") if forced else cfg.retrieval
        for views in targets:
            scores = frame_scores([c2w_n[m.views] for m in memory], c2w_n[views], K, H, W, retrieval)
            chosen = select_context(scores, retrieval)
            contexts.append(chosen)
            rays, anchored_c2w = self._anchor(memory, chosen, views, K, c2w, scale, rays_ref, c2w_n, H, W)
            ctx = _Context(self.model, self.device)
            prefill_memory(ctx, self._context(memory, chosen, rays), cfg.variant, noise)
            last = memory[chosen[-1]]
            if forced and last.aux is None:
                self._geometry(ctx, last, rays, h, w, gen, anchored_c2w, scale, depth, noise)
            elif after_image and memory[0].aux is None:  # the reference, the only context of the first target
                self._geometry(ctx, memory[0], rays, h, w, gen, anchored_c2w, scale, depth, noise)
            new = MemoryFrame(views, None)
            template = self._template(views, rays, h, w)
            if cfg.variant == "warped":
                ctx.prefill(lambda b: b.prompt("warped"))
                new.aux = template.with_tokens(ctx.sample(template, self.schedule, gen))
                ctx.prefill(lambda b: noise.add(b, new.aux, "warped"))
            ctx.prefill(lambda b: b.prompt("image"))
            tokens = ctx.sample(template, self.schedule, gen)
            images = self.codec.decode_uint8(self._decode(tokens, len(views), h, w))
            for img, v in zip(images, views):
                frames[v] = img
            if cfg.reencode:
                tokens = geo.make_item(list(self.codec.encode_uint8(images, sample=False).to(self.device)),
                                       [rays[v] for v in views], list(range(len(views))), mcfg, 2).tokens  # fmt: skip
            new.image = template.with_tokens(tokens)
            if after_image:  # I_i enters as context after its prompt, then G_i is sampled from it
                ctx.prefill(lambda b: noise.add(b, new.image))
                self._geometry(ctx, new, rays, h, w, gen, anchored_c2w, scale, depth, noise)
            memory.append(new)
            if on_frames is not None:
                on_frames(min(N, max(views) + 1), N)
        if forced:  # the last frame's geometry has not been asked for yet
            ctx = _Context(self.model, self.device)
            chosen = select_context(np.ones(len(memory)), retrieval)
            rays, anchored_c2w = self._anchor(memory, chosen, [], K, c2w, scale, rays_ref, c2w_n, H, W)
            prefill_memory(ctx, self._context(memory, chosen, rays), cfg.variant, noise)
            if memory[chosen[-1]].aux is None:
                self._geometry(ctx, memory[chosen[-1]], rays, h, w, gen, anchored_c2w, scale, depth, noise)
        return RolloutResult(frames, depth, contexts, time.perf_counter() - t0)
