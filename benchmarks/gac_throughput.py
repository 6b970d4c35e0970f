"""Throughput of the gac-7b shapes with random weights on one GPU (issue item 11).

    python benchmarks/gac_throughput.py --out results.json [--layers 2,6] [--train-layers 2,4]

Inference: one target 2x2 grid of 640x352 views (3,520 latent tokens + 2 markers) denoised with 50 Euler steps
against a KV cache of 4 context grid frames (14,080 latent tokens + prompts), bf16, CGA on, the code path of
``gac.sample`` (prefill, ``<Image>`` prompt, 50 query forwards, no CFG), plus the FLUX-shaped VAE decode of the four
views and their re-encode (random weights, diffusers AutoencoderKL). Per view = per grid / 4.

Training: one 8-frame sample of 2x2 grids (context 2 frames, geometry kept on frames chosen by a fixed seed at
dropout 0.5), FlexAttention block mask, bf16 autocast, activation checkpointing, forward + backward.

Scaling: every quantity is measured at two depths L1 < L2 with all other shapes at 7B size; the per-layer cost
(T(L2) - T(L1)) / (L2 - L1) and the rest (embeddings, heads, Python) give T(28) = T(L1) + (28 - L1) * per-layer.
MFU uses model FLOPs (6 x active matmul parameters per token + attention over the allowed pairs, no recompute)
against the card's dense bf16 peak (H100 SXM 989 TFLOP/s, H200 the same).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gac import geometry as geo
from gac.fast_inference import fold_camera_gate, to_float8
from gac.masks import allowed, dense_mask, flex_block_mask
from gac.model import GaCModel, gac_7b
from gac.sample import MemoryFrame, _Context, prefill_memory
from gac.flow import EulerSchedule
from gac.sequence import FrameData, SequenceBuilder, build_training_sequence

PEAK_BF16 = 989e12
VIEW_H, VIEW_W = 352, 640
DEVICE = "cuda"
BASE = gac_7b


def make_model(layers: int, dtype=torch.bfloat16) -> GaCModel:
    cfg = BASE(num_layers=layers)
    with torch.device("meta"):
        model = GaCModel(cfg)
    model = model.to_empty(device=DEVICE).to(dtype)
    model.initialize_weights()
    with torch.no_grad():  # never time on zeros: give the zero-initialised layers random values too
        for layer in model.layers:
            layer.attn.cga.proj.weight.normal_(std=0.02)
        model.llm2vae.weight.normal_(std=0.02)
    return model


def grid_item(cfg, cells=4, seed=0) -> geo.LatentItem:
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    h, w = VIEW_H // 8, VIEW_W // 8
    lats = [torch.randn(cfg.latent_channels, h, w, generator=g, device=DEVICE) for _ in range(cells)]
    rays = [torch.randn(6, VIEW_H, VIEW_W, generator=g, device=DEVICE) for _ in range(cells)]
    return geo.make_item(lats, rays, list(range(cells)), cfg, 2)


def _sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeat=3):
    times = []
    for _ in range(repeat):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


# ---------------------------------------------------------------------------------------------- inference


def prefill_context(ctx: _Context, items) -> None:
    """The rollout's own prefill of clean image frames (the geometry variant without geometry items)."""
    prefill_memory(ctx, [MemoryFrame([i], it) for i, it in enumerate(items)], "geometry")


def inference_grid_seconds(layers: int, steps: int, context_frames: int, compile_: bool, profile: bool,
                           fold: bool = False, fp8: bool = False) -> dict:
    model = make_model(layers).eval()
    cfg = model.cfg
    if fold:
        fold_camera_gate(model)
    if fp8:
        to_float8(model)
    ctx_items = [grid_item(cfg, seed=i) for i in range(context_frames)]
    target = grid_item(cfg, seed=99)
    schedule = EulerSchedule(steps, 3.0)
    gen = torch.Generator().manual_seed(0)
    if compile_:
        model.compile_sampling()

    def one_grid():
        ctx = _Context(model, torch.device(DEVICE))
        prefill_context(ctx, ctx_items)
        ctx.prefill(lambda b: b.prompt("image"))
        return ctx.sample(target, schedule, gen), ctx

    with torch.no_grad():
        warmup = timed(one_grid, repeat=1)  # includes the compile when compile_
        total = timed(one_grid, repeat=3)
        ctx = _Context(model, torch.device(DEVICE))
        prefill = timed(lambda: ctx.__init__(model, torch.device(DEVICE)) or prefill_context(ctx, ctx_items), 3)
        n_ctx = ctx.cache.length
        b = SequenceBuilder(cfg, ctx.rope, ctx.split)
        noise = torch.randn_like(target.tokens)
        b.latent(target.with_tokens(noise), noisy=True, t=1.0, x_t=noise)
        inp = b.build(DEVICE).inputs
        terms = model.camera_terms(inp.rays) if model.camera_folded else None  # once per item, as the sampler does
        one_step = lambda: model(inp, None, cache=ctx.cache, write_cache=False, camera_terms=terms)  # noqa: E731
        step = timed(one_step, repeat=10)
        if profile:
            print_profile(one_step, f"step, {layers} layers")
            fresh = _Context(model, torch.device(DEVICE))
            print_profile(lambda: fresh.__init__(model, torch.device(DEVICE)) or prefill_context(fresh, ctx_items),
                          f"prefill, {layers} layers", rows=15)  # fmt: skip
    del model
    _free()
    return {"layers": layers, "compile": compile_, "fold_cga": fold, "fp8": fp8, "first_grid_seconds": warmup, "grid_seconds": total,
            "prefill_seconds": prefill, "step_seconds": step, "context_tokens": n_ctx, "query_tokens": inp.length}


def print_profile(fn, label: str, rows: int = 25) -> None:
    """CUDA kernel time of three calls of ``fn``, top kernels (where one step's time goes)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        _sync()
    print(f"--- profile, 3 calls: {label}")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70))


def vae_seconds() -> dict:
    from gac.vae import FLUX_VAE_CONFIG, LatentCodec, random_vae

    codec = LatentCodec(random_vae(FLUX_VAE_CONFIG).to(DEVICE, torch.bfloat16))
    z = torch.randn(4, 16, VIEW_H // 8, VIEW_W // 8, device=DEVICE)
    x = torch.rand(4, 3, VIEW_H, VIEW_W, device=DEVICE) * 2 - 1
    with torch.no_grad():
        codec.decode(z), codec.encode(x)
        dec = timed(lambda: codec.decode(z), 3)
        enc = timed(lambda: codec.encode(x, sample=False), 3)
    return {"decode_4_views_s": dec, "encode_4_views_s": enc}


# ---------------------------------------------------------------------------------------------- training


def training_sample(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = [FrameData(grid_item(cfg, seed=2 * k), grid_item(cfg, seed=2 * k + 1)) for k in range(8)]
    return build_training_sequence(cfg, frames, num_context=2, variant="geometry", geometry_dropout=0.5, generator=g)


def allowed_pairs(packed) -> int:
    """Query-key pairs the mask allows (counted in chunks of rows)."""
    total, L = 0, packed.inputs.length
    kv = torch.arange(L, device=packed.split_id.device)[None]
    for s in range(0, L, 4096):
        q = torch.arange(s, min(L, s + 4096), device=packed.split_id.device)[:, None]
        total += int(allowed(q, kv, packed.split_id, packed.split_mode).sum())
    return total


def _free():
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def training_step_seconds(layers: int, packed, block_mask) -> dict:
    model = make_model(layers, torch.float32).train()
    model.activation_checkpointing = True
    params = [p for p in model.parameters()]

    def step():
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            v = model(packed.inputs, block_mask)
        loss = (v[packed.loss_idx].float() - packed.v_target).pow(2).mean()
        loss.backward()
        for p in params:
            p.grad = None

    step()
    t = timed(step, 3)
    mem = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else 0.0
    del model, params
    _free()
    return {"layers": layers, "fwd_bwd_seconds": t, "peak_mem_gib": mem}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--layers", default="2,6")
    p.add_argument("--train-layers", default="1,3")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--context-frames", type=int, default=4)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the denoising passes (GaCModel.compile_sampling)")
    p.add_argument("--profile", action="store_true", help="print the top CUDA kernels of one denoising pass")
    p.add_argument("--skip-infer", action="store_true")
    p.add_argument("--fold", action="store_true", help="fold CGA's Linear2 into the query projection (gac.fast_inference)")
    p.add_argument("--fp8", action="store_true", help="FP8 GEMMs in the decoder layers (gac.fast_inference)")
    p.add_argument("--debug-cpu", action="store_true", help="tiny shapes on the CPU (checks the script, no numbers)")
    args = p.parse_args()
    global DEVICE, BASE, VIEW_H, VIEW_W
    if args.debug_cpu:
        from gac.model import gac_tiny

        DEVICE, VIEW_H, VIEW_W = "cpu", 32, 64
        BASE = lambda **kw: gac_tiny(**{"latent_channels": 16, **kw})  # noqa: E731
        args.steps = 2
    torch.backends.cuda.matmul.allow_tf32 = True
    res = {"device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu", "torch": torch.__version__,
           "steps": args.steps}
    full = BASE()
    L = full.num_layers

    if args.skip_infer:
        inf = []
    else:
        depths = [int(n) for n in args.layers.split(",")]
        inf = [inference_grid_seconds(n, args.steps, args.context_frames, args.compile, args.profile and i == 0,
                                      args.fold, args.fp8)
               for i, n in enumerate(depths)]
    if inf:
        a, b = inf[0], inf[-1]
        per_layer = (b["grid_seconds"] - a["grid_seconds"]) / (b["layers"] - a["layers"])
        grid28 = a["grid_seconds"] + (L - a["layers"]) * per_layer
        vae = vae_seconds() if DEVICE == "cuda" else {"decode_4_views_s": 0.0, "encode_4_views_s": 0.0}
        grid_total = grid28 + vae["decode_4_views_s"] + vae["encode_4_views_s"]
        res["inference"] = {"measured": inf, "per_layer_grid_seconds": per_layer, "grid_seconds_28_layers": grid28,
                            "vae": vae, "seconds_per_view": grid_total / 4,
                            "seconds_per_view_transformer_only": grid28 / 4}  # fmt: skip
        print(json.dumps(res["inference"], indent=1), flush=True)
        with open(args.out, "w") as f:  # keep the inference numbers even if the training part fails
            json.dump(res, f, indent=2)

    if not args.skip_train:
        cfg = BASE(num_layers=1)
        packed = training_sample(cfg)
        block_mask = flex_block_mask(packed.split_id, packed.split_mode) if DEVICE == "cuda" else \
            dense_mask(packed.split_id, packed.split_mode)
        pairs = allowed_pairs(packed)
        n_tok, n_gen = packed.inputs.length, packed.inputs.gen_idx.numel()
        tr = [training_step_seconds(int(n), packed, block_mask) for n in args.train_layers.split(",")]
        a, b = tr[0], tr[-1]
        per_layer = (b["fwd_bwd_seconds"] - a["fwd_bwd_seconds"]) / (b["layers"] - a["layers"])
        step28 = a["fwd_bwd_seconds"] + (L - a["layers"]) * per_layer
        D, Q, KV, I = full.hidden_size, full.q_dim, full.kv_dim, full.intermediate_size
        expert = D * Q + 2 * D * KV + Q * D + 3 * D * I  # matmul parameters of one expert layer
        cga = Q * 2 * Q
        per_tok = L * (expert + cga * n_gen / n_tok) + 2 * full.latent_dim * D  # (+ vae2llm / llm2vae)
        flops = 6 * per_tok * n_tok + 3 * L * 4 * Q * pairs  # fwd+bwd matmuls + attention (QK^T and PV, x3)
        res["training"] = {"tokens": n_tok, "gen_tokens": n_gen, "allowed_pairs": pairs, "measured": tr,
                           "per_layer_seconds": per_layer, "fwd_bwd_seconds_28_layers": step28,
                           "tokens_per_second": n_tok / step28, "model_flops": flops,
                           "mfu": flops / step28 / PEAK_BF16,
                           "note": "one sample (batch 1, as the paper), activation checkpointing on; excludes "
                                   "optimizer step and FSDP communication"}  # fmt: skip
        print(json.dumps(res["training"], indent=1), flush=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
