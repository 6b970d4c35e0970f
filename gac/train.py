"""Train GaC on RealEstate10K-form clips with depth (single process; FSDP comes with a later issue).

    python -m gac.train --preset gac-small --split synthroom --clips room00,room01,room02,room03,room04,room05 \
        --vae VAE_DIR --out runs/gac-small --steps 2000

One optimiser step = ``--batch`` sequences (gradient accumulation; the paper trains with batch size 1 per GPU
because geometry dropout makes sequence lengths vary). AdamW with Bagel's betas (0.9, 0.95) and eps 1e-15,
constant learning rate after a linear warm-up, gradient clipping 1.0, bf16 autocast on GPU (fp32 master weights).
``--resume`` continues from ``OUT/last`` (weights, AdamW moments, step, RNG state).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from gac.checkpoint import load_checkpoint, load_optimizer, save_checkpoint, save_optimizer
from gac.data import DataConfig, SampleMaker, load_clip_arrays
from gac.flow import flow_loss
from gac.masks import dense_mask, flex_block_mask
from gac.model import PRESETS, build_model
from gac.sequence import build_training_sequence
from gac.vae import load_vae

log = logging.getLogger("gac.train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gac.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gac-small", choices=sorted(PRESETS))
    p.add_argument("--no-cga", action="store_true", help="plain attention in the gen expert (Table 5 ablation)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a preset's field")
    p.add_argument("--init", default=None, help="start from this GaC checkpoint folder (e.g. converted from Bagel)")
    p.add_argument("--split", default=None, help="a gac-bench split with depth (synthroom)")
    p.add_argument("--data-root", default=None,
                   help="RE10K raw layout: DIR/cameras/<id>.txt, DIR/frames/<id>/, DIR/depth/<id>/")
    p.add_argument("--clips", default=None, help="comma-separated clip ids (default: every clip)")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames per clip")
    p.add_argument("--vae", required=True, help="diffusers AutoencoderKL folder (FLUX VAE, or a small stand-in)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=None, help="stop (and save) after this many seconds")
    p.add_argument("--batch", type=int, default=1, help="sequences per optimiser step")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--t-shift", type=float, default=1.0, help="training timestep shift (Bagel: 1)")
    p.add_argument("--variant", default="geometry", choices=["geometry", "warped", "none"])
    p.add_argument("--geometry", default="depth", choices=["depth", "pointmap"])
    p.add_argument("--geometry-dropout", type=float, default=0.5)
    p.add_argument("--no-grid", action="store_true", help="one view per frame instead of a 2x2 grid")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--max-context", type=int, default=4)
    p.add_argument("--min-stride", type=int, default=1)
    p.add_argument("--max-stride", type=int, default=4)
    p.add_argument("--single-ref-prob", type=float, default=0.5)
    p.add_argument("--fixed-sample", action="store_true", help="train on one fixed sample (overfitting check)")
    p.add_argument("--attention", default="auto", choices=["auto", "dense", "flex"],
                   help="auto: FlexAttention on GPU for sequences over 16k tokens, else a dense mask")
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def load_training_clips(args) -> list:
    ids = [c for c in args.clips.split(",") if c] if args.clips else None
    if args.split:
        from gac_bench.splits import get_split

        split = get_split(args.split, Path(args.data_root) if args.data_root else None)
        specs = [s for s in split.clips if ids is None or s.clip_id in ids]
        if ids is not None and len(specs) != len(ids):
            raise ValueError(f"clips {sorted(set(ids) - {s.clip_id for s in specs})} are not in split {args.split}")
        clips = [split.loader(s) for s in specs]
    elif args.data_root:
        from gac_bench.datasets.re10k import Re10kRawReader

        root = Path(args.data_root)
        if ids is None:
            ids = sorted(p.stem for p in (root / "cameras").glob("*.txt"))
        if args.width is None or args.height is None:
            raise ValueError("--data-root needs --width and --height (multiples of 16)")
        reader = Re10kRawReader(root / "cameras", root / "frames", args.width, args.height, root / "depth")
        clips = [reader.load_clip(i) for i in ids]
    else:
        raise ValueError("give --split or --data-root")
    return [load_clip_arrays(c, args.max_frames) for c in clips]


def preset_overrides(pairs: list[str]) -> dict:
    """``["num_layers=4", ...]`` -> typed GaCConfig overrides."""
    from gac.model import GaCConfig

    types = {f.name: f.type for f in dataclasses.fields(GaCConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise ValueError(f"--set {pair}: unknown GaCConfig field {key!r}")
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        if kind == "bool":
            out[key] = value.lower() in ("1", "true")
        else:
            out[key] = float(value) if kind == "float" else int(value)
    return out


def lr_at(step: int, args) -> float:
    return args.lr * min(1.0, (step + 1) / max(1, args.warmup))


def save_all(out: Path, model, opt, args, data_cfg, step, rng, vae_dir: Path) -> None:
    folder = out / "last"
    meta = {"data": dataclasses.asdict(data_cfg), "vae": "vae", "step": step, "train_args": vars(args)}
    save_checkpoint(folder, model, meta)
    save_optimizer(folder, opt, {"step": step, "rng": rng.bit_generator.state, "torch_seed": args.seed + step})
    if not (folder / "vae").exists():
        shutil.copytree(vae_dir, folder / "vae")


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # model: built on the meta device, materialised, initialised (or loaded from --init / --resume)
    cfg = PRESETS[args.preset](use_cga=not args.no_cga, **preset_overrides(args.set))
    resume_dir = out / "last"
    if args.resume and (resume_dir / "config.json").is_file():
        model, _ = load_checkpoint(resume_dir, device)
    elif args.init:
        model, _ = load_checkpoint(Path(args.init), device)
    else:
        model = build_model(cfg, device)
    cfg = model.cfg
    model.train()
    model.activation_checkpointing = args.activation_checkpointing

    # data: clips in memory, VAE frozen
    codec = load_vae(Path(args.vae), device)
    data_cfg = DataConfig(
        frames_per_sample=args.frames, grid=not args.no_grid, max_context=args.max_context,
        min_stride=args.min_stride, max_stride=args.max_stride, single_reference_prob=args.single_ref_prob,
        geometry=args.geometry, variant=args.variant,
    )  # fmt: skip
    clips = load_training_clips(args)
    maker = SampleMaker(clips, codec, cfg, data_cfg, device)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %.1fM parameters; %d clips", args.preset, n_params / 1e6, len(clips))

    # optimiser (Bagel's AdamW settings)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), eps=1e-15, weight_decay=0.0)
    step = 0
    if args.resume and (resume_dir / "optimizer.json").is_file():
        extra = load_optimizer(resume_dir, opt)
        step = int(extra["step"])
        rng.bit_generator.state = extra["rng"]
        log.info("resumed at step %d", step)
    gen = torch.Generator().manual_seed(args.seed + step)
    fixed = maker.make(rng, gen) if args.fixed_sample else None
    fixed_seed = args.seed + 12345

    # loop
    def use_flex(length: int) -> bool:
        return args.attention == "flex" or (args.attention == "auto" and device.type == "cuda" and length > 16384)

    on_gpu = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)
    history, t_start = [], time.perf_counter()
    log_path = out / "train_log.jsonl"
    while step < args.steps:
        if args.time_limit and time.perf_counter() - t_start > args.time_limit:
            log.info("time limit reached at step %d", step)
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        total_loss, tokens = 0.0, 0
        for _ in range(args.batch):
            frames, num_context = fixed if fixed is not None else maker.make(rng, gen)
            g = torch.Generator().manual_seed(fixed_seed) if fixed is not None else gen
            packed = build_training_sequence(
                cfg, frames, num_context, data_cfg.variant, args.geometry_dropout if fixed is None else 0.0,
                args.t_shift, generator=g,
            )  # fmt: skip
            make_mask = flex_block_mask if use_flex(packed.inputs.length) else dense_mask
            mask = make_mask(packed.split_id, packed.split_mode)
            with autocast:
                v = model(packed.inputs, mask)
            loss = flow_loss(v[packed.loss_idx], packed.v_target) / args.batch
            loss.backward()
            total_loss += float(loss.detach())
            tokens += packed.inputs.length
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if not math.isfinite(total_loss):
            raise FloatingPointError(f"loss is {total_loss} at step {step}")
        rec = {"step": step, "loss": total_loss, "grad_norm": grad_norm, "lr": lr_at(step - 1, args),
               "tokens": tokens, "elapsed_s": round(time.perf_counter() - t_start, 3)}  # fmt: skip
        history.append(rec)
        with log_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if step % args.log_every == 0 or step == 1:
            log.info("step %d loss %.4f grad %.3f tokens %d", step, total_loss, grad_norm, tokens)
        if step % args.save_every == 0:
            save_all(out, model, opt, args, data_cfg, step, rng, Path(args.vae))
    save_all(out, model, opt, args, data_cfg, step, rng, Path(args.vae))
    return {"history": history, "checkpoint": str(out / "last"), "step": step}


if __name__ == "__main__":
    main()
