"""One GaC training step under FSDP2 on N GPUs: seconds per step, tokens/s and MFU per GPU, peak memory, and the
share of the step spent in communication kernels (issue 13 item 5, issue 16).

    torchrun --nproc-per-node 2 benchmarks/gac_fsdp_step.py --out fsdp_2gpu.json [--layers 28] [--ac selective]
    torchrun --nproc-per-node 2 benchmarks/gac_fsdp_step.py --debug-cpu --out /tmp/x.json   # plumbing, gloo

The model is GaC-7B's shapes (random weights in Bagel's layout; speed does not depend on the values), built on the
meta device and sharded before it is materialised, so no rank ever holds the full weights. Every rank trains on one
8-frame sample of 2x2 grids at 640x352 (geometry dropout 0.5; the sample of ``gac_throughput.training_sample``):
batch one per GPU as in the paper, bf16 compute, fp32 gradient reduction, AdamW, global-norm clipping. MFU counts
model FLOPs (``gac_throughput``'s formula: 6 x matmul parameters per token + attention over the allowed pairs, no
recompute) against the dense bf16 peak of an H100/H200 (989 TFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist

import gac_throughput as gt
from gac.masks import dense_mask, flex_block_mask
from gac.model import GaCModel
from gac.parallel import apply_fsdp, freeze_understanding, init_distributed, local_norm


def build_sharded(layers: int, device: torch.device, bf16: bool) -> GaCModel:
    """GaC on the meta device, sharded, then materialised shard by shard and initialised (DTensor-aware init)."""
    with torch.device("meta"):
        model = GaCModel(gt.BASE(num_layers=layers))
    apply_fsdp(model, torch.bfloat16 if bf16 else None)
    model.to_empty(device=device)
    torch.manual_seed(0)
    model.initialize_weights()
    with torch.no_grad():  # never time on zeros
        for layer in model.layers:
            layer.attn.cga.proj.weight.normal_(std=0.02)
        model.llm2vae.weight.normal_(std=0.02)
    return model


def comm_share(step, steps: int = 2) -> float:
    """Fraction of device time in communication kernels (NCCL all-gather / reduce-scatter) over ``steps`` steps."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
    total = comm = 0.0
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", 0.0) or getattr(ev, "cuda_time_total", 0.0)
        if t <= 0:
            continue
        total += t
        if "nccl" in ev.key.lower():
            comm += t
    return comm / total if total else 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=28)
    p.add_argument("--ac", default="full", choices=["none", "full", "selective"])
    p.add_argument("--freeze-und", action="store_true")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="also measure the communication share (2 more steps)")
    p.add_argument("--debug-cpu", action="store_true", help="gac-tiny on CPU with gloo (checks the script)")
    args = p.parse_args()
    if args.debug_cpu:
        from gac.model import gac_tiny

        gt.DEVICE, gt.VIEW_H, gt.VIEW_W = "cpu", 32, 64
        gt.BASE = lambda **kw: gac_tiny(**{"latent_channels": 16, **kw})  # noqa: E731
    on_gpu = gt.DEVICE == "cuda"
    info = init_distributed("cuda" if on_gpu else "cpu")
    device = torch.device("cuda", info.local_rank) if on_gpu else torch.device("cpu")
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = True

    model = build_sharded(args.layers, device, bf16=on_gpu).train()
    model.activation_checkpointing = args.ac
    frozen = freeze_understanding(model) if args.freeze_und else 0
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.95), eps=1e-15, weight_decay=0.0)
    packed = gt.training_sample(gt.BASE(num_layers=1), seed=info.rank)  # each rank its own sample
    mask = flex_block_mask(packed.split_id, packed.split_mode) if on_gpu else dense_mask(packed.split_id, packed.split_mode)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)

    def step():
        with autocast:
            v = model(packed.inputs, mask)
        loss = (v[packed.loss_idx].float() - packed.v_target).pow(2).mean()
        loss.backward()
        norm = local_norm(torch.nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return norm

    def sync():
        if on_gpu:
            torch.cuda.synchronize()
        dist.barrier()

    for _ in range(2):  # warm-up: FlexAttention compile, allocator, NCCL communicators
        step()
    sync()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - t0) / args.steps
    full = gt.BASE(num_layers=args.layers)
    D, Q, KV, I, L = full.hidden_size, full.q_dim, full.kv_dim, full.intermediate_size, args.layers
    n_tok, n_gen = packed.inputs.length, packed.inputs.gen_idx.numel()
    expert = D * Q + 2 * D * KV + Q * D + 3 * D * I
    per_tok = L * (expert + Q * 2 * Q * n_gen / n_tok) + 2 * full.latent_dim * D
    flops = 6 * per_tok * n_tok + 3 * L * 4 * Q * gt.allowed_pairs(packed)
    res = {
        "world": info.world, "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "torch": torch.__version__, "layers": L, "activation_checkpointing": args.ac,
        "frozen_und_params": frozen, "tokens_per_gpu_step": n_tok, "seconds_per_step": seconds,
        "tokens_per_second_per_gpu": n_tok / seconds, "model_flops_per_gpu_step": flops,
        "mfu": flops / seconds / gt.PEAK_BF16 if on_gpu else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else None,
        "command": " ".join(["torchrun --nproc-per-node", os.environ.get("WORLD_SIZE", "1"), *sys.argv]),
    }  # fmt: skip
    if args.profile:
        res["communication_share"] = comm_share(step)
    if info.is_main:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
        print(json.dumps(res, indent=1), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
