"""Training forwards built with a few dozen device operations, however many samples they pack.

:func:`gac.sequence.build_training_sequence` builds one sample item by item (hundreds of small tensor operations
per sample, each a kernel launch on the GPU); at 50 ms of host time per sample a packed forward of 65k tokens
took 0.4 s on an H200, eight times the model's own time. Here the layout of every sample is computed on the host
with numpy (token kinds, text ids, RoPE and split ids, which latent row and which ray patch each latent token
reads, its timestep, whether it carries loss), and the device does the rest in bulk for the whole forward: one
gather of posterior moments, one VAE call for the geometry of every sample, one Plücker computation for every
view, one gather of tokens and ray patches, one noise draw, one interpolation.

The result is the same :class:`gac.sequence.Packed` as ``build_training_sequence`` samples packed and padded one by
one (same positions, ids, masks, loss rows; tested against ``tests/packing_reference.py``), with fresh randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gac import geometry as geo
from gac.masks import CAUSAL, FULL, NOISE
from gac.model import GaCConfig, PackedInputs
from gac.sequence import MODALITY_CODE, PROMPTS, Packed, encode_text, item_plan

IMAGE, AUX = 0, 1  # token bank of a row: the image latents of the views, or their geometry / warped latents


@dataclass
class HostSequence:
    """One sample's packed layout on the host. Latent tokens name their rows in the sample's token bank
    (images: view * T + j; auxiliaries: (V + aux slot) * T + j) and ray bank (view * T + j)."""

    kind: np.ndarray  # (L,) 0 = und (text, markers), 1 = gen (latent)
    text_ids: np.ndarray  # (U,)
    rope_ids: np.ndarray  # (L,)
    split_id: np.ndarray  # (L,)
    split_mode: np.ndarray  # (L,)
    bank_row: np.ndarray  # (N,)
    ray_row: np.ndarray  # (N,)
    pos2d: np.ndarray  # (N,)
    t: np.ndarray  # (N,) float32: flow time of each latent token (0 for clean context)
    loss: np.ndarray  # (N,) bool
    modality: np.ndarray  # (N,) MODALITY_CODE
    num_splits: int
    num_views: int
    aux_views: list[int]  # views whose auxiliary item the sample uses, in aux-slot order

    @property
    def length(self) -> int:
        return len(self.kind)


def sample_t_np(rng: np.random.Generator, shift: float) -> float:
    """Logit-normal t with shift, as :func:`gac.flow.sample_t`."""
    t = 1.0 / (1.0 + np.exp(-rng.standard_normal()))
    return float(shift * t / (1.0 + (shift - 1.0) * t))


class LayoutBuilder:
    """Host-side layout of training sequences for one model config and view size."""

    def __init__(self, cfg: GaCConfig, tokens_per_view: tuple[int, int]):
        self.cfg = cfg
        self.h_tok, self.w_tok = tokens_per_view
        self.T = self.h_tok * self.w_tok
        self.prompt_ids = {m: np.array(encode_text(p, cfg), dtype=np.int64) for m, p in PROMPTS.items()}
        self.cell_pos = [geo.cell_pos_ids(c, self.h_tok, self.w_tok, 2, cfg.max_latent_size).numpy() for c in range(4)]

    def layout(self, groups: list[list[int]], num_context: int, variant: str, keep_aux: list[bool],
               rng: np.random.Generator, t_shift: float = 1.0, context_noise: float = 0.0,
               fixed_t: float | None = None, swap_targets: bool = False) -> HostSequence:  # fmt: skip
        """The packed layout of one sample. ``swap_targets``: target items read the first view's ray patches
        (validation's camera-swap measurement)."""
        cfg, T = self.cfg, self.T
        plan = item_plan(len(groups), num_context, variant, keep_aux)
        n_views = groups[-1][-1] + 1
        aux_views = sorted({v for m, k, _ in plan if m != "image" for v in groups[k]})
        aux_slot = {v: i for i, v in enumerate(aux_views)}
        kind, text, rope_ids, split_ids, modes = [], [], [], [], []
        bank, rays, pos, t_tok, loss, modality = [], [], [], [], [], []
        state = {"rope": 0, "split": 0}

        def und(tokens: np.ndarray, mode: int, advance: bool) -> None:
            n = len(tokens)
            kind.append(np.zeros(n, np.int8))
            text.append(tokens)
            r = state["rope"] + (np.arange(n) if advance else np.zeros(n, np.int64))
            rope_ids.append(r)
            split_ids.append(np.full(n, state["split"]))
            modes.append(np.full(n, mode))
            if advance:
                state["rope"] += n

        def latent(modality_name: str, k: int, noisy: bool, t: float) -> None:
            mode = NOISE if noisy else FULL
            views = groups[k]
            n = len(views) * T
            rope, split = state["rope"], state["split"]
            und(np.array([cfg.vision_start_id]), mode, advance=False)
            kind.append(np.ones(n, np.int8))
            rope_ids.append(np.full(n, rope))
            split_ids.append(np.full(n, split))
            modes.append(np.full(n, mode))
            j = np.arange(T)
            if modality_name == "image":
                bank.append(np.concatenate([v * T + j for v in views]))
            else:
                bank.append(np.concatenate([(n_views + aux_slot[v]) * T + j for v in views]))
            target = k >= num_context or modality_name != "image"
            ray_views = [0] * len(views) if (swap_targets and target) else views
            rays.append(np.concatenate([v * T + j for v in ray_views]))
            pos.append(np.concatenate([self.cell_pos[c] for c in range(len(views))]))
            t_tok.append(np.full(n, t, np.float32))
            loss.append(np.full(n, noisy))
            modality.append(np.full(n, MODALITY_CODE[modality_name], np.int8))
            und(np.array([cfg.vision_end_id]), mode, advance=False)
            state["split"] += 1
            if not noisy:
                state["rope"] += 1

        for idx, (m, k, generated) in enumerate(plan):
            und(self.prompt_ids[m], CAUSAL, advance=True)
            state["split"] += 1
            if generated:
                t = sample_t_np(rng, t_shift) if fixed_t is None else float(fixed_t)
                latent(m, k, noisy=True, t=t)
                if idx < len(plan) - 1:  # the clean copy later items read
                    latent(m, k, noisy=False, t=float(rng.random()) * context_noise if context_noise > 0 else 0.0)
            else:
                latent(m, k, noisy=False, t=float(rng.random()) * context_noise if context_noise > 0 else 0.0)
        kind_a = np.concatenate(kind)
        und_text = np.concatenate(text)
        return HostSequence(
            kind=kind_a, text_ids=und_text, rope_ids=np.concatenate(rope_ids), split_id=np.concatenate(split_ids),
            split_mode=np.concatenate(modes), bank_row=np.concatenate(bank), ray_row=np.concatenate(rays),
            pos2d=np.concatenate(pos), t=np.concatenate(t_tok), loss=np.concatenate(loss),
            modality=np.concatenate(modality), num_splits=state["split"], num_views=n_views, aux_views=aux_views,
        )  # fmt: skip


@dataclass
class DeviceBanks:
    """Per forward: the token rows (images of every view, then auxiliaries) and ray patches of every view."""

    tokens: torch.Tensor  # (rows, P)
    rays: torch.Tensor  # (views * T, R)
    image_offset: list[int]  # first view of each sample in the image bank
    aux_offset: list[int]  # first aux slot of each sample in the auxiliary bank (after all image views)
    total_views: int


def assemble(seqs: list[HostSequence], banks: DeviceBanks, T: int, device, noise_generator: torch.Generator | None,
             pad_to: int | None = None) -> Packed:  # fmt: skip
    """One packed forward from host layouts and device banks: positions offset per sample, padding (``sample_id``
    -1, its own FULL split) up to ``pad_to``, x_t = (1 - t) x0 + t noise for every latent token, velocity targets
    noise - x0 of the loss tokens."""
    L_off = N_off = split_off = 0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "text_ids", "und_idx", "gen_idx", "rope_ids", "split_id", "split_mode", "sample_id", "bank_row", "ray_row",
        "pos2d", "t", "loss_idx", "loss_modality")}  # fmt: skip
    for s, sq in enumerate(seqs):
        L, N = sq.length, len(sq.bank_row)
        gen = sq.kind == 1
        parts["text_ids"].append(sq.text_ids)
        parts["und_idx"].append(np.nonzero(~gen)[0] + L_off)
        parts["gen_idx"].append(np.nonzero(gen)[0] + L_off)
        parts["rope_ids"].append(sq.rope_ids)
        parts["split_id"].append(sq.split_id + split_off)
        parts["split_mode"].append(sq.split_mode)
        parts["sample_id"].append(np.full(L, s))
        V = sq.num_views
        img = sq.bank_row < V * T
        rows = np.where(img, sq.bank_row + banks.image_offset[s] * T,
                        sq.bank_row - V * T + (banks.total_views + banks.aux_offset[s]) * T)  # fmt: skip
        parts["bank_row"].append(rows)
        parts["ray_row"].append(sq.ray_row + banks.image_offset[s] * T)
        parts["pos2d"].append(sq.pos2d)
        parts["t"].append(sq.t)
        parts["loss_idx"].append(np.nonzero(sq.loss)[0] + N_off)
        parts["loss_modality"].append(sq.modality[sq.loss].astype(np.int64))
        L_off, N_off, split_off = L_off + L, N_off + N, split_off + sq.num_splits
    if pad_to is not None and pad_to > L_off:
        n = pad_to - L_off
        parts["text_ids"].append(np.zeros(n, np.int64))
        parts["und_idx"].append(np.arange(L_off, pad_to))
        parts["rope_ids"].append(np.zeros(n, np.int64))
        parts["split_id"].append(np.full(n, split_off))
        parts["split_mode"].append(np.full(n, FULL))
        parts["sample_id"].append(np.full(n, -1))
        split_off += 1
    elif pad_to is not None and pad_to < L_off:
        raise ValueError(f"{L_off} tokens do not fit a forward of {pad_to}")
    host = {k: np.concatenate(v) for k, v in parts.items()}
    longs = {k: geo.h2d(host[k].astype(np.int64), device) for k in host if k != "t"}
    t = geo.h2d(host["t"].astype(np.float32), device)
    x0 = banks.tokens.index_select(0, longs["bank_row"])
    noise = geo.randn(x0.shape, noise_generator, device).to(x0.dtype)
    x_t = x0 + t[:, None].to(x0.dtype) * (noise - x0)
    v_target = (noise - x0).index_select(0, longs["loss_idx"])
    inputs = PackedInputs(
        text_ids=longs["text_ids"], und_idx=longs["und_idx"], latents=x_t, timesteps=t, pos2d=longs["pos2d"],
        rays=banks.rays.index_select(0, longs["ray_row"]), gen_idx=longs["gen_idx"], rope_ids=longs["rope_ids"],
    )  # fmt: skip
    return Packed(inputs, longs["split_id"], longs["split_mode"], longs["loss_idx"], v_target, next_rope=0,
                  next_split=split_off, loss_modality=longs["loss_modality"], sample_id=longs["sample_id"])  # fmt: skip


def group_by_budget(items, budget: int | None):
    """Group (plan, layout) pairs, in order, into forwards of at most ``budget`` tokens (one per forward when
    ``budget`` is None or 0); a sample longer than a whole forward is an error."""
    group, used = [], 0
    for plan, seq in items:
        if budget and seq.length > budget:
            raise ValueError(f"one training sample has {seq.length} tokens, more than --pack-tokens {budget}; raise "
                             "--pack-tokens or use fewer --frames")  # fmt: skip
        if group and (not budget or used + seq.length > budget):
            yield group
            group, used = [], 0
        group.append((plan, seq))
        used += seq.length
    if group:
        yield group


def patchify_views(lat_VChw: torch.Tensor, p: int) -> torch.Tensor:
    """(V, C, h, w) -> (V * T, p * p * C): :func:`gac.geometry.patchify` of every view at once."""
    V, C, h, w = lat_VChw.shape
    x = lat_VChw.reshape(V, C, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(V * (h // p) * (w // p), p * p * C)


def ray_patches_views(rays_V6HW: torch.Tensor, k: int) -> torch.Tensor:
    """(V, 6, H, W) -> (V * T, 6 * k * k): :func:`gac.geometry.ray_patches` of every view at once."""
    V, c, H, W = rays_V6HW.shape
    x = rays_V6HW.reshape(V, c, H // k, k, W // k, k).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(V * (H // k) * (W // k), c * k * k)
