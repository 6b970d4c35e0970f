"""Packing training samples into fixed-length forwards, and the attention mask of a packed sequence.

On a GPU a forward holds as many whole samples as fit in ``length`` tokens and is padded to exactly ``length``
(padding tokens form their own sample, which no real token sees), so the compiled FlexAttention kernel and its
block mask are built for one shape only. On the CPU (tests, small runs) a forward is one sample with a dense mask.
"""

from __future__ import annotations

import torch

from gac.masks import FULL, dense_mask, flex_block_mask, packed_block_mask
from gac.model import PackedInputs
from gac.sequence import Packed, pack_samples


def pad_packed(pk: Packed, length: int) -> Packed:
    """Append ``length - L`` padding tokens (und, text id 0, one FULL split, ``sample_id`` -1)."""
    L = pk.inputs.length
    n = length - L
    if n < 0:
        raise ValueError(f"packed sequence has {L} tokens, more than the {length} of a forward")
    sample_id = pk.sample_id if pk.sample_id is not None else torch.zeros(L, dtype=torch.long, device=pk.split_id.device)
    if n == 0:
        return Packed(**{**pk.__dict__, "sample_id": sample_id})
    dev = pk.split_id.device
    inp = pk.inputs
    inputs = PackedInputs(
        text_ids=torch.cat([inp.text_ids, torch.zeros(n, dtype=torch.long, device=inp.text_ids.device)]),
        und_idx=torch.cat([inp.und_idx, torch.arange(L, length, device=inp.und_idx.device)]),
        latents=inp.latents, timesteps=inp.timesteps, pos2d=inp.pos2d, rays=inp.rays, gen_idx=inp.gen_idx,
        rope_ids=torch.cat([inp.rope_ids, torch.zeros(n, dtype=torch.long, device=inp.rope_ids.device)]),
    )  # fmt: skip
    pad_split = pk.next_split  # every split id of the sequence is below it (read on the host: no GPU sync)
    return Packed(
        inputs=inputs,
        split_id=torch.cat([pk.split_id, torch.full((n,), pad_split, dtype=torch.long, device=dev)]),
        split_mode=torch.cat([pk.split_mode, torch.full((n,), FULL, dtype=torch.long, device=dev)]),
        loss_idx=pk.loss_idx, v_target=pk.v_target, next_rope=pk.next_rope, next_split=pad_split + 1,
        items=pk.items, loss_modality=pk.loss_modality,
        sample_id=torch.cat([sample_id, torch.full((n,), -1, dtype=torch.long, device=dev)]),
    )  # fmt: skip


class Packer:
    """Groups samples into forwards of at most ``length`` tokens; a sample that does not fit waits for the next."""

    def __init__(self, length: int):
        self.length = length
        self.pending: list[Packed] = []

    def fits(self, pk: Packed) -> bool:
        return sum(p.inputs.length for p in self.pending) + pk.inputs.length <= self.length

    def add(self, pk: Packed) -> Packed | None:
        """Add a sample; returns a full forward when this sample no longer fits beside the pending ones."""
        if pk.inputs.length > self.length:
            raise ValueError(
                f"one training sample has {pk.inputs.length} tokens, more than --pack-tokens {self.length}; "
                "raise --pack-tokens or use fewer --frames"
            )
        out = None
        if not self.fits(pk):
            out = self.flush()
        self.pending.append(pk)
        return out

    def flush(self) -> Packed:
        out = pad_packed(pack_samples(self.pending), self.length)
        self.pending = []
        return out


def attention_mask(pk: Packed, use_flex: bool, block_size: int = 128, from_samples: bool = True):
    """FlexAttention block mask (GPU: from sample ranges when the forward is packed to a multiple of the block
    size, else by evaluating the rule) or a dense boolean mask (CPU, tests)."""
    if not use_flex:
        return dense_mask(pk.split_id, pk.split_mode, pk.sample_id)
    if from_samples and pk.sample_id is not None and pk.inputs.length % block_size == 0:
        return packed_block_mask(pk.split_id, pk.split_mode, pk.sample_id, block_size)
    return flex_block_mask(pk.split_id, pk.split_mode, pk.sample_id, block_size)


def per_row_loss(v_pred: torch.Tensor, pk: Packed) -> torch.Tensor:
    """Squared error of each loss row, averaged over its values: (M,) float32."""
    return (v_pred[pk.loss_idx].float() - pk.v_target.float()).pow(2).mean(-1)
