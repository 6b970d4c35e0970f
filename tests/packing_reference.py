"""The item-by-item packing the vectorised training forward (gac.batch_builder) is tested against: samples built
by gac.sequence.build_training_sequence, concatenated with offsets (Bagel's packing) and padded as a forward is."""

from __future__ import annotations

import torch

from gac.masks import FULL
from gac.model import PackedInputs
from gac.sequence import Packed


def pack_and_pad(samples: list[Packed], length: int) -> Packed:
    """Several samples in one sequence: positions, splits and loss rows offset, RoPE ids restarting per sample,
    ``sample_id`` per position; then padding tokens (one FULL split, ``sample_id`` -1) up to ``length``."""
    L_off = N_off = split_off = 0
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in (
        "text_ids", "und_idx", "latents", "timesteps", "pos2d", "rays", "gen_idx", "rope_ids", "split_id",
        "split_mode", "loss_idx", "v_target", "loss_modality", "sample_id")}  # fmt: skip
    for i, pk in enumerate(samples):
        inp, L = pk.inputs, pk.inputs.length
        for k in ("text_ids", "latents", "timesteps", "pos2d", "rays", "rope_ids"):
            parts[k].append(getattr(inp, k))
        parts["und_idx"].append(inp.und_idx + L_off)
        parts["gen_idx"].append(inp.gen_idx + L_off)
        parts["split_id"].append(pk.split_id + split_off)
        parts["split_mode"].append(pk.split_mode)
        parts["loss_idx"].append(pk.loss_idx + N_off)
        parts["v_target"].append(pk.v_target)
        parts["loss_modality"].append(pk.loss_modality)
        parts["sample_id"].append(torch.full((L,), i, dtype=torch.long))
        L_off, N_off, split_off = L_off + L, N_off + int(inp.latents.shape[0]), split_off + pk.next_split
    n = length - L_off
    assert n >= 0, f"{L_off} tokens do not fit {length}"
    parts["text_ids"].append(torch.zeros(n, dtype=torch.long))
    parts["und_idx"].append(torch.arange(L_off, length))
    parts["rope_ids"].append(torch.zeros(n, dtype=torch.long))
    parts["split_id"].append(torch.full((n,), split_off, dtype=torch.long))
    parts["split_mode"].append(torch.full((n,), FULL, dtype=torch.long))
    parts["sample_id"].append(torch.full((n,), -1, dtype=torch.long))
    cat = {k: torch.cat(v) for k, v in parts.items()}
    inputs = PackedInputs(**{k: cat[k] for k in (
        "text_ids", "und_idx", "latents", "timesteps", "pos2d", "rays", "gen_idx", "rope_ids")})  # fmt: skip
    return Packed(inputs, cat["split_id"], cat["split_mode"], cat["loss_idx"], cat["v_target"], next_rope=0,
                  next_split=split_off + 1, loss_modality=cat["loss_modality"], sample_id=cat["sample_id"])  # fmt: skip
