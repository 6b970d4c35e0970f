"""The attention mask of a packed forward, and the per-row flow loss.

On a GPU a forward holds as many whole samples as fit in ``--pack-tokens`` and is padded to exactly that length
(padding tokens form their own sample, which no real token sees; :mod:`gac.batch_builder`), so the compiled
FlexAttention kernel and its block mask are built for one shape only. On the CPU (tests, small runs) a forward is
one sample with a dense mask.
"""

from __future__ import annotations

import torch

from gac.masks import dense_mask, flex_block_mask, packed_block_mask
from gac.sequence import Packed


def attention_mask(pk: Packed, use_flex: bool, block_size: int = 128):
    """FlexAttention block mask (GPU: from sample ranges when the forward is packed to a multiple of the block
    size, else by evaluating the rule) or a dense boolean mask (CPU, tests)."""
    if not use_flex:
        return dense_mask(pk.split_id, pk.split_mode, pk.sample_id)
    if pk.sample_id is not None and pk.inputs.length % block_size == 0:
        return packed_block_mask(pk.split_id, pk.split_mode, pk.sample_id, block_size)
    return flex_block_mask(pk.split_id, pk.split_mode, pk.sample_id, block_size)


def per_row_loss(v_pred: torch.Tensor, pk: Packed) -> torch.Tensor:
    """Squared error of each loss row, averaged over its values: (M,) float32."""
    return (v_pred[pk.loss_idx].float() - pk.v_target.float()).pow(2).mean(-1)
