"""Data parallelism for GaC training: FSDP2 under torchrun, kept apart from the model (as torchtitan keeps
``parallelize.py`` apart from its models).

``python -m gac.train ...`` is one process without a process group; ``torchrun --nproc-per-node N -m gac.train
...`` starts N ranks, each holding 1/N of the parameters, gradients and AdamW state (``fully_shard`` per MoT layer,
then the root for the embedders and heads). Compute runs in bf16 on GPUs, gradients are reduced in fp32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job. ``distributed`` is False for a plain ``python -m gac.train``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun job (NCCL on GPUs, gloo on CPU); a plain process gets ``DistInfo()``."""
    if not launched_by_torchrun():
        return DistInfo()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank, world, local, True)


def close_distributed(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------ sharding


def apply_fsdp(model: nn.Module, compute_dtype: torch.dtype | None, reshard_after_forward: bool = True) -> nn.Module:
    """``fully_shard`` every MoT layer, then the root (embedders, final norms, heads).

    ``compute_dtype`` bf16: parameters are all-gathered in bf16 and gradients reduce-scattered in fp32 (the
    master weights and AdamW state stay fp32, sharded). None: everything fp32 (CPU tests compare exactly).
    ``reshard_after_forward`` False keeps the last layer's gathered parameters for backward (less traffic, more
    memory), as torchtitan does for the final block.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32) if compute_dtype else None
    kwargs = {"mp_policy": mp} if mp is not None else {}
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        fully_shard(layer, reshard_after_forward=reshard_after_forward and not last, **kwargs)
    fully_shard(model, reshard_after_forward=reshard_after_forward, **kwargs)
    return model


UND_PREFIXES = ("embed_tokens.", "norm_und.", "lm_head.")
UND_LAYER_PARTS = (".attn.und.", ".norm1_und.", ".norm2_und.", ".mlp_und.")


def freeze_understanding(model: nn.Module) -> int:
    """Freeze the understanding expert (it only reads the short prompts) and the text embedding/head: no
    gradients and no AdamW state for them. Returns the number of frozen parameters."""
    frozen = 0
    for name, p in model.named_parameters():
        if name.startswith(UND_PREFIXES) or any(part in f".{name}" for part in UND_LAYER_PARTS):
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


# ------------------------------------------------------------------------------------------------ reductions


def sum_across_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise sum over ranks (logged loss and tokens); unchanged in a single process. On GPUs the reduction is
    queued on the stream: no host sync until the values are read."""
    if not info.distributed:
        return value.detach()
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def local_norm(value: torch.Tensor) -> torch.Tensor:
    """A gradient norm as a plain tensor (FSDP2's clip_grad_norm_ returns a replicated DTensor)."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
