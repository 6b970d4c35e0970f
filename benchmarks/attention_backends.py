"""Unmasked grouped-query attention at GaC-7B sampling shapes: which SDPA kernel, with or without expanded heads.

    python benchmarks/attention_backends.py [--out attention.json]

Shape of one denoising pass: 3,522 queries (a 2x2 grid of 640x352 views + 2 markers) over 14,124 cached + 3,522
new keys, 28 query heads, 4 key/value heads, head dim 128, bf16. Every variant is checked against the math
reference before it is timed; a variant the build cannot run is reported as such.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

H, G, E = 28, 4, 128


def _time_ms(fn, repeat=20) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def variants(q, k, v):
    rep = H // G

    def expanded(backend):
        def run():
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1))

        return run

    def gqa(backend):
        def run():
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

        return run

    out = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("efficient", SDPBackend.EFFICIENT_ATTENTION)):  # fmt: skip
        out[f"{name}+expand"] = expanded(backend)
        out[f"{name}+gqa"] = gqa(backend)
    try:
        from torch.nn.attention.flex_attention import flex_attention

        flex = torch.compile(flex_attention, dynamic=False)
        out["flex+gqa"] = lambda: flex(q, k, v, enable_gqa=True)
    except ImportError:
        pass
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=3522)
    p.add_argument("--cached", type=int, default=14124)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    L, S = args.queries, args.cached + args.queries
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, H, L, E, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(1, G, S, E, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(1, G, S, E, device="cuda", dtype=torch.bfloat16, generator=g)
    with sdpa_kernel([SDPBackend.MATH]):
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), enable_gqa=True)
    flops = 4 * H * L * S * E
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "queries": L, "keys": S}
    for name, fn in variants(q, k, v).items():
        try:
            err = float((fn().float() - ref).abs().max())
            ms = _time_ms(fn)
            res[name] = {"ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1), "max_abs_err": err}
        except Exception as exc:  # a kernel this build or card does not offer
            res[name] = {"unavailable": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        print(name, res[name], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
