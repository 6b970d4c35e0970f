"""Attention masks of the packed interleaved sequence (Bagel's rules) and the attention call itself.

Every token belongs to a *split* (one text segment or one image/geometry item with its two markers) with a mode:

    CAUSAL  text: lower-triangular inside the split
    FULL    clean latent item (context, t = 0): bidirectional inside the split
    NOISE   noisy latent item (target, t > 0): bidirectional inside the split, invisible to every other split

and the rules (gac-model.md 1.8): a token sees every earlier token of its sample; FULL and NOISE splits are
bidirectional inside; tokens of a NOISE split are hidden from all tokens outside it (so a noisy target sees the
clean context and itself, and nothing later sees a noisy copy); samples never see each other. A generated item is
packed twice, noisy then clean, so later tokens read its clean copy ("a generated frame re-enters as clean
context").

One function, :func:`allowed`, states the rules on index tensors; the dense CPU mask and the FlexAttention
``mask_mod`` both call it, so they agree by construction (and a test checks the two attention outputs).
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

CAUSAL, FULL, NOISE = 0, 1, 2

# Kernels for unmasked grouped-query attention on CUDA, in priority order. At the sampling shape (3,522 queries over
# 17,646 keys, 28/4 heads, bf16, H100) cuDNN reads the shared key/value heads natively in 1.40 ms, flash in 2.46 ms,
# flash with expanded heads in 2.71 ms (benchmarks/attention_backends.py, results in benchmarks/gac_throughput.md).
_UNMASKED_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]

try:  # FlexAttention (torch >= 2.5)
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # pragma: no cover - old torch
    BlockMask, create_block_mask, flex_attention = None, None, None

AttnMask = Union[None, torch.Tensor, "BlockMask"]


def allowed(
    q_idx: torch.Tensor,
    kv_idx: torch.Tensor,
    split_id: torch.Tensor,
    split_mode: torch.Tensor,
    sample_id: torch.Tensor | None = None,
) -> torch.Tensor:
    """True where query position ``q_idx`` may attend to key position ``kv_idx`` (broadcasting index tensors)."""
    same_split = split_id[q_idx] == split_id[kv_idx]
    earlier = kv_idx <= q_idx
    bidirectional = same_split & (split_mode[q_idx] != CAUSAL)
    hidden_noise = (split_mode[kv_idx] == NOISE) & ~same_split
    ok = (earlier | bidirectional) & ~hidden_noise
    if sample_id is not None:
        ok = ok & (sample_id[q_idx] == sample_id[kv_idx])
    return ok


def dense_mask(
    split_id: torch.Tensor, split_mode: torch.Tensor, sample_id: torch.Tensor | None = None, num_cached: int = 0
) -> torch.Tensor:
    """Bool mask (L - num_cached, L) for the last L - num_cached tokens over all L; True = may attend."""
    L = split_id.shape[0]
    q = torch.arange(num_cached, L, device=split_id.device)[:, None]
    kv = torch.arange(L, device=split_id.device)[None, :]
    return allowed(q, kv, split_id, split_mode, sample_id)


def flex_block_mask(
    split_id: torch.Tensor, split_mode: torch.Tensor, sample_id: torch.Tensor | None = None, block_size: int = 128
) -> BlockMask:
    """FlexAttention BlockMask of the same rules (GPU training path); blocks that are fully masked are skipped."""
    if create_block_mask is None:
        raise RuntimeError("FlexAttention needs torch >= 2.5")

    def mask_mod(b, h, q_idx, kv_idx):
        return allowed(q_idx, kv_idx, split_id, split_mode, sample_id)

    L = split_id.shape[0]
    return create_block_mask(
        mask_mod, None, None, L, L, device=split_id.device, BLOCK_SIZE=block_size, _compile=split_id.is_cuda
    )


def packed_block_mask(
    split_id: torch.Tensor, split_mode: torch.Tensor, sample_id: torch.Tensor, block_size: int = 128
) -> BlockMask:
    """FlexAttention BlockMask of a packed sequence (length a multiple of ``block_size``, padding last with
    ``sample_id`` -1), built from each block's range of samples instead of evaluating the rule on all L^2 pairs:
    a query block and a key block whose sample ranges do not meet are skipped; every other pair is a partial block
    in which :func:`allowed` decides per element. Same attention as :func:`flex_block_mask` (tested), and its cost
    does not grow with L^2 at every training step."""
    if BlockMask is None:
        raise RuntimeError("FlexAttention needs torch >= 2.5")
    L = split_id.shape[0]
    if L % block_size:
        raise ValueError(f"packed length {L} is not a multiple of the block size {block_size}")
    nb = L // block_size
    sid = torch.where(sample_id < 0, torch.full_like(sample_id, 2**30), sample_id).view(nb, block_size)
    lo, hi = sid.min(1).values, sid.max(1).values
    meet = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])  # (q block, kv block)
    kv_num = meet.sum(-1, dtype=torch.int32)[None, None]
    kv_idx = torch.argsort((~meet).to(torch.int8), dim=-1, stable=True).to(torch.int32)[None, None]

    def mask_mod(b, h, q_idx, kv_idx):
        return allowed(q_idx, kv_idx, split_id, split_mode, sample_id)

    return BlockMask.from_kv_blocks(kv_num, kv_idx, BLOCK_SIZE=block_size, mask_mod=mask_mod, seq_lengths=(L, L))


_compiled_flex = None


def _flex(q, k, v, block_mask):
    global _compiled_flex
    if q.is_cuda:
        if _compiled_flex is None:
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        return _compiled_flex(q, k, v, block_mask=block_mask, enable_gqa=True)
    return flex_attention(q, k, v, block_mask=block_mask, enable_gqa=True)


def attend(q_LHE: torch.Tensor, k_CGE: torch.Tensor, v_CGE: torch.Tensor, mask: AttnMask) -> torch.Tensor:
    """Scaled dot-product attention of L queries over C keys with grouped-query heads; returns (L, H, E).

    ``mask``: None (every query sees every key: a noisy target or a clean item over the cached clean context; the
    cuDNN/flash path on GPU), a dense bool (L, C) tensor (CPU, and short prompts on GPU), or a FlexAttention
    BlockMask (GPU training path).
    """
    q = q_LHE.transpose(0, 1)[None]
    k = k_CGE.transpose(0, 1)[None]
    v = v_CGE.transpose(0, 1)[None]
    if BlockMask is not None and isinstance(mask, BlockMask):
        out = _flex(q, k, v, mask)
    elif mask is None and q.is_cuda:
        # native grouped-query heads: the 4 key/value heads are read, never expanded to 28
        with sdpa_kernel(_UNMASKED_BACKENDS, set_priority=True):
            out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    elif q.is_cuda:
        # a dense mask (short prompts over the cache): no fused kernel takes grouped heads with a mask, and the math
        # fallback would upcast everything, so expand the heads for the memory-efficient kernel
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None, None])
    else:
        attn_mask = None if mask is None else mask[None, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=True)
    return out[0].transpose(0, 1)
