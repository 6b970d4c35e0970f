"""Train GaC on RealEstate10K-form clips with depth: one process, or N ranks under torchrun (FSDP2).

    python -m gac.train --preset gac-small --split synthroom-train --val-split synthroom-val \
        --vae VAE_DIR --out runs/gac-small --time-limit 600

One optimiser step = ``--batch`` forwards (gradient accumulation). A forward is one sample (the paper's batch size
one; geometry dropout makes lengths vary), or with ``--pack-tokens T`` as many whole samples as fit in T tokens,
padded to exactly T so the compiled FlexAttention kernel sees one shape (the GPU recipe). AdamW with Bagel's betas
(0.9, 0.95) and eps 1e-15, linear warm-up then a constant learning rate (``--lr-decay cosine`` decays it to 10%
by the end of ``--steps`` or ``--time-limit``), gradient clipping 1.0, bf16 autocast on GPU (fp32 master weights).
``--resume`` continues from ``OUT/last`` (weights, AdamW moments, step, data streams' positions and generators).

Under ``torchrun --nproc-per-node N -m gac.train ...`` every rank holds 1/N of the weights and AdamW state
(:mod:`gac.parallel`: FSDP2, bf16 compute with fp32 gradient reduction on GPUs), reads only its own clips
(:mod:`gac.streams`), and ``--save-every`` writes a sharded checkpoint to ``OUT/dcp`` (:mod:`gac.dist_checkpoint`)
that ``--resume`` reloads on any number of ranks; at the end ``OUT/last`` is also written as one safetensors folder.

Every ``--val-every`` steps the held-out rooms of ``--val-split`` are measured (:mod:`gac.validate`): loss per
modality, camera-swap gap, first-grid PSNR against identity; ``OUT/val_log.jsonl`` and ``OUT/curves.png``.
``OUT/best`` keeps the checkpoint with the lowest held-out RGB loss. Never pass the evaluation split here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gac.batch_builder import group_by_budget
from gac.batching import attention_mask, per_row_loss
from gac.checkpoint import load_checkpoint, load_optimizer, save_checkpoint, save_optimizer
from gac.data import DataConfig, SampleMaker, load_clips, resize_clip
from gac import dist_checkpoint as dist_ckpt
from gac.model import CAMERA_MODES, PRESETS, build_model
from gac.parallel import (DistInfo, apply_fsdp, close_distributed, freeze_understanding, init_distributed, local_norm,
                          sum_across_ranks)
from gac.streams import clips_to_load, make_streams
from gac.vae import load_vae, vae_training_problem

log = logging.getLogger("gac.train")

EVALUATION_SPLITS = ("synthroom", "re10k-test-150", "tanks-150")


class TrainingError(RuntimeError):
    """A run that cannot start or go on; main() prints the message as one line and exits 2."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gac.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="gac-small", choices=sorted(PRESETS))
    p.add_argument("--camera", default=None, choices=CAMERA_MODES,
                   help="camera conditioning: cga (paper), add (Plücker embedding added to the tokens), none")
    p.add_argument("--no-cga", action="store_true", help="same as --camera none")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a preset's field")
    p.add_argument("--init", default=None, help="start from this GaC checkpoint folder (e.g. converted from Bagel)")
    p.add_argument("--split", default=None, help="a gac-bench split with depth (synthroom-train)")
    p.add_argument("--data-root", default=None,
                   help="RE10K raw layout (DIR/cameras/<id>.txt, DIR/frames/<id>/) or DL3DV scenes "
                        "(DIR/.../<hash>/transforms.json); depth from DIR/depth/<id>/ (gac.prepare_geometry)")
    p.add_argument("--clips", default=None, help="comma-separated clip ids (default: every clip)")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames per clip")
    p.add_argument("--vae", required=True, help="diffusers AutoencoderKL folder (FLUX VAE, or a small stand-in)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=None, help="stop (and save) after this many seconds")
    p.add_argument("--batch", type=int, default=1, help="forwards per optimiser step")
    p.add_argument("--pack-tokens", type=int, default=0,
                   help="pack whole samples into forwards of exactly this many tokens (0: one sample per forward)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--lr-decay", default="none", choices=["none", "cosine"])
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
    # beyond the paper (defaults off; gac/README.md "Training recipe")
    p.add_argument("--pose-anchor", default="first", choices=["first", "last-context"])
    p.add_argument("--max-gap", type=int, default=0, help="frames of a sample may skip up to this many grid frames")
    p.add_argument("--revisit-prob", type=float, default=0.0, help="samples that turn back and retrace their poses")
    p.add_argument("--context-noise", type=float, default=0.0, help="noise-augment clean items up to this flow time")
    p.add_argument("--fixed-sample", action="store_true", help="train on one fixed sample (overfitting check)")
    p.add_argument("--attention", default="auto", choices=["auto", "dense", "flex"],
                   help="auto: FlexAttention on GPU for packed forwards or sequences over 16k tokens, else dense")
    p.add_argument("--activation-checkpointing", nargs="?", const="full", default="none",
                   choices=["none", "full", "selective"],
                   help="recompute activations in backward: full (each block) or selective (keep matmul and "
                        "attention outputs); the bare flag means full")
    p.add_argument("--freeze-und", action="store_true",
                   help="freeze the understanding expert and the text embedding/head (they only read the prompts)")
    p.add_argument("--val-split", default=None, help="held-out split for validation (synthroom-val)")
    p.add_argument("--val-clips", default=None, help="comma-separated clip ids of --val-split (default: all)")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-samples", type=int, default=16)
    p.add_argument("--val-psnr-clips", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--load-workers", type=int, default=16, help="threads reading clips")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data


_FROM_ARGS = object()


def data_root_reader(root: Path, width: int, height: int):
    """(reader, clip ids) of a training data root: DL3DV scenes (``<hash>/transforms.json``) or the raw
    RealEstate10K layout (``cameras/<id>.txt``, ``frames/<id>/``); depth from ``root/depth`` where prepared."""
    from gac_bench.datasets.dl3dv import Dl3dvReader, find_scenes
    from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout

    layout = detect_re10k_layout(root)
    if layout is not None:  # raw, npz, mp4 or pixelSplat chunks; depth as gac.prepare_geometry writes it
        data = Re10kDataRoot(layout, width, height)
        return _WithDepth(data, root / "depth"), data.clip_ids()
    if find_scenes(root):  # looked for second: it walks three folder levels
        reader = Dl3dvReader(root, width, height, root / "depth")
        return reader, reader.scene_ids()
    raise TrainingError(f"--data-root {root}: no RealEstate10K layout (cameras/<id>.txt with frames, or pixelSplat "
                        "chunks) and no DL3DV scenes (<hash>/transforms.json)")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _WithDepth:
    """A RealEstate10K reader whose clips read prepared depth from ``depth_dir``."""

    data: object
    depth_dir: Path

    def load_clip(self, clip_id: str):
        from gac_bench.datasets.re10k import with_prepared_depth

        return with_prepared_depth(self.data.load_clip(clip_id), self.depth_dir)


def load_training_clips(args, split_name=_FROM_ARGS, clip_ids=_FROM_ARGS, frame_stride: int = 1,
                        select=None) -> list:  # fmt: skip
    """Clips of ``split_name`` (default ``--split``), or of ``--data-root``, restricted to ``clip_ids``;
    ``select(n)`` -> the indices (of the n clips) to read, e.g. one rank's shard."""
    split_name = args.split if split_name is _FROM_ARGS else split_name
    clip_ids = args.clips if clip_ids is _FROM_ARGS else clip_ids
    ids = [c for c in clip_ids.split(",") if c] if clip_ids else None
    t0 = time.perf_counter()
    if split_name:
        from gac_bench.splits import get_split

        split = get_split(split_name, Path(args.data_root) if args.data_root else None)
        specs = [s for s in split.clips if ids is None or s.clip_id in ids]
        if ids is not None and len(specs) != len(ids):
            raise TrainingError(f"clips {sorted(set(ids) - {s.clip_id for s in specs})} are not in split {split_name}")
        log.info("reading %d clips of %s (rendered once and cached on first use)", len(specs), split_name)
        clips = [split.loader(s) for s in specs]
    elif args.data_root:
        if args.width is None or args.height is None:
            raise TrainingError("--data-root needs --width and --height (multiples of 16)")
        reader, all_ids = data_root_reader(Path(args.data_root), args.width, args.height)
        clips = [reader.load_clip(i) for i in (ids if ids is not None else all_ids)]
    else:
        raise TrainingError("give --split or --data-root")
    if select is not None:
        clips = [clips[i] for i in select(len(clips))]
    arrays = load_clips(clips, args.max_frames, args.load_workers, depth_dtype=np.float16, frame_stride=frame_stride)
    if split_name and args.width is not None and args.height is not None:  # train below the rendered resolution
        if args.width % 16 or args.height % 16:
            raise TrainingError(f"--width {args.width} --height {args.height}: both must be multiples of 16")
        arrays = [resize_clip(a, args.width, args.height) for a in arrays]
    log.info("loaded %d clips, %d frames in %.1f s", len(arrays), sum(len(a.frames) for a in arrays),
             time.perf_counter() - t0)  # fmt: skip
    return arrays


def data_config(args) -> DataConfig:
    return DataConfig(
        frames_per_sample=args.frames, grid=not args.no_grid, max_context=args.max_context,
        min_stride=args.min_stride, max_stride=args.max_stride, single_reference_prob=args.single_ref_prob,
        geometry=args.geometry, variant=args.variant, pose_anchor=args.pose_anchor, max_gap=args.max_gap,
        revisit_prob=args.revisit_prob,
    )  # fmt: skip


def preset_overrides(pairs: list[str]) -> dict:
    """``["num_layers=4", ...]`` -> typed GaCConfig overrides."""
    from gac.model import GaCConfig

    types = {f.name: f.type for f in dataclasses.fields(GaCConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise TrainingError(f"--set {pair}: unknown GaCConfig field {key!r}")
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        if kind == "bool":
            out[key] = value.lower() in ("1", "true")
        elif kind == "str":
            out[key] = value
        else:
            out[key] = float(value) if kind == "float" else int(value)
    return out


# ---------------------------------------------------------------------------------------------- schedule, saving


def lr_at(step: int, args, total_steps: float) -> float:
    warm = min(1.0, (step + 1) / max(1, args.warmup))
    if args.lr_decay == "cosine" and math.isfinite(total_steps) and total_steps > args.warmup:
        progress = min(1.0, max(0.0, (step - args.warmup) / (total_steps - args.warmup)))
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))
    return args.lr * warm


@dataclasses.dataclass
class TrainContext:
    """What a save or a validation needs besides the model: the run's settings and where its data stands."""

    args: argparse.Namespace
    out: Path
    info: DistInfo
    data_cfg: DataConfig
    vae_dir: Path
    streams: list
    rng: np.random.Generator


def _stream_states(ctx: TrainContext) -> list[dict]:
    """Every stream's position, gathered from every rank (collective under torchrun)."""
    mine = [st.resume_state() for st in ctx.streams]
    if not ctx.info.distributed:
        return mine
    everyone: list = [None] * ctx.info.world
    torch.distributed.all_gather_object(everyone, mine)
    return [s for rank_states in everyone for s in rank_states]


def save_all(folder: Path, model, opt, ctx: TrainContext, step: int, final: bool = False,
             extra: dict | None = None) -> None:  # fmt: skip
    """``opt`` given: the resumable state (``OUT/last`` in one process; ``OUT/dcp`` sharded under torchrun, and at
    the end also ``OUT/last``). ``opt`` None: the weights alone (``OUT/best``). Collective under torchrun."""
    args, info = ctx.args, ctx.info
    meta = {"data": dataclasses.asdict(ctx.data_cfg), "vae": "vae", "step": step, "train_args": vars(args),
            "recipe": {"context_noise": args.context_noise, "geometry_dropout": args.geometry_dropout},
            **(extra or {})}  # fmt: skip
    data_state = {}
    if opt is not None:  # only the resumable state records where the data streams are (collective under torchrun)
        streams = _stream_states(ctx)
        data_state = {"streams": streams, "num_streams": len(streams)}
    if info.distributed and opt is not None:
        train_state = {**meta, "model": model.cfg.to_dict(), "vae_dir": str(ctx.vae_dir), **data_state}
        dist_ckpt.save_sharded(ctx.out / "dcp", step, model, opt, train_state, info)
        if not final:
            return
    state = dist_ckpt.full_state_dict(model) if info.distributed else None
    if not info.is_main:
        return
    save_checkpoint(folder, model, meta, state=state)
    if opt is not None and not info.distributed:
        save_optimizer(folder, opt, {"step": step, "rng": ctx.rng.bit_generator.state,
                                     "torch_seed": args.seed + step, **data_state})  # fmt: skip
    if not (folder / "vae").exists():
        shutil.copytree(ctx.vae_dir, folder / "vae", ignore=shutil.ignore_patterns("*.tmp"))


# ---------------------------------------------------------------------------------------------- health checks


class LossWatch:
    """Warns loudly when the loss leaves its expected range: the flow loss of unit-variance latents starts near
    1 + Var(x0) (about 2) and falls; far above that at the start means the VAE's scale/shift do not normalise
    the latents; a smoothed loss far above its best means training diverges."""

    def __init__(self, warmup: int):
        self.ema, self.best, self.warmup, self.last_warn = None, math.inf, warmup, -10**9

    def update(self, step: int, loss: float) -> None:
        if step == 1 and loss > 10.0:
            log.warning("WARNING: loss %.3g at step 1; about 2 is expected for unit-variance latents. Is the VAE's "
                        "scaling_factor/shift_factor right for it (python -m gac.train_vae sets them)?", loss)  # fmt: skip
        self.ema = loss if self.ema is None else 0.98 * self.ema + 0.02 * loss
        if step > max(self.warmup, 50):
            self.best = min(self.best, self.ema)
            if self.ema > 3.0 * self.best and step - self.last_warn >= 200:
                self.last_warn = step
                log.warning("WARNING: training diverges: smoothed loss %.3g at step %d, best %.3g; lower --lr",
                            self.ema, step, self.best)  # fmt: skip


def check_latents(maker: SampleMaker) -> None:
    mean, std = maker.latent_stats()
    log.info("VAE latents over the training frames: mean %.3f, std %.3f (normalised: about 0 and 1)", mean, std)
    if not (0.4 < std < 2.5) or abs(mean) > 0.5:
        log.warning("WARNING: the VAE's normalised latents have mean %.2f and std %.2f, far from 0 and 1: the flow "
                    "loss will be off its range; set the VAE's shift_factor/scaling_factor from its latent "
                    "statistics (python -m gac.train_vae does)", mean, std)  # fmt: skip


# ---------------------------------------------------------------------------------------------- main


def preset_config(args):
    """The preset with ``--set`` and ``--camera`` / ``--no-cga`` applied."""
    overrides = preset_overrides(args.set)
    camera = "none" if args.no_cga else args.camera
    if camera is not None:
        overrides["camera"] = camera
    return PRESETS[args.preset](**overrides)


def build_or_load_model(args, device, sharded: bool = False):
    """The model to train: ``OUT/last`` when resuming one process, else ``--init``, else fresh weights (a sharded
    resume loads its weights after sharding, see :mod:`gac.dist_checkpoint`)."""
    cfg = preset_config(args)
    resume_dir = Path(args.out) / "last"
    if args.resume and not sharded and (resume_dir / "config.json").is_file():
        model, _ = load_checkpoint(resume_dir, device)
    elif args.init:
        model, _ = load_checkpoint(Path(args.init), device)
    else:
        model = build_model(cfg, device)
    return model


def planned_model_config(args):
    """The model config this run will train, read without building the model."""
    from gac.checkpoint import read_config
    from gac.model import GaCConfig

    resume_dir = Path(args.out) / "last"
    for folder in ([resume_dir] if args.resume and (resume_dir / "config.json").is_file() else []) + (
        [Path(args.init)] if args.init else []
    ):
        return GaCConfig.from_dict(read_config(folder)["model"])
    return preset_config(args)


def check_vae_early(vae_dir: Path, args) -> None:
    """Latent channels and the VAE's training report, from its config files alone."""
    cfg_path = vae_dir / "config.json"
    if not cfg_path.is_file():
        raise TrainingError(f"VAE folder {vae_dir} has no config.json (a diffusers AutoencoderKL or GaCPatchVAE folder)")
    channels = int(json.loads(cfg_path.read_text()).get("latent_channels", 0))
    model_cfg = planned_model_config(args)
    if channels and channels != model_cfg.latent_channels:
        raise TrainingError(
            f"the VAE at {vae_dir} has {channels} latent channels but the model ({args.preset}) expects "
            f"{model_cfg.latent_channels}: add --set latent_channels={channels} or use a VAE with "
            f"{model_cfg.latent_channels} channels"
        )
    problem = vae_training_problem(vae_dir)
    if problem:
        raise TrainingError(problem)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return train(args)
    except TrainingError as exc:
        if argv is not None:  # called from Python (tests): let the caller see the exception
            raise
        print(f"gac.train: {exc}", file=sys.stderr)
        sys.exit(2)


def train(args) -> dict:
    for name in (args.split, args.val_split):
        if name in EVALUATION_SPLITS:
            raise TrainingError(f"{name} is an evaluation split and is never trained or validated on; use "
                                "synthroom-train (training) and synthroom-val (validation)")  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    info = init_distributed(device.type)
    if info.distributed and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    try:
        return _train(args, out, device, info)
    finally:
        close_distributed(info)


def _train(args, out: Path, device: torch.device, info: DistInfo) -> dict:
    if not info.is_main:  # one log for the job; warnings from every rank
        log.setLevel(logging.WARNING)
    torch.manual_seed(args.seed)  # the same initial weights on every rank, before sharding
    rng = np.random.default_rng(args.seed)  # --fixed-sample and validation draws
    data_cfg = data_config(args)
    check_vae_early(Path(args.vae), args)  # one-line errors before minutes of data loading
    num_clips = []  # every clip of the split, read once the loader knows the count

    def my_clips(n: int) -> list[int]:
        num_clips.append(n)
        return clips_to_load(n, info.world, info.rank, args.batch)

    try:
        clips = load_training_clips(args, select=my_clips)  # before CUDA starts: the loader forks
        streams = make_streams(num_clips[0], info.world, info.rank, args.batch, args.seed)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    val_clips = load_training_clips(args, args.val_split, args.val_clips) if args.val_split or args.val_clips else None
    model = build_or_load_model(args, device, sharded=info.distributed)
    cfg = model.cfg
    model.train()
    model.activation_checkpointing = args.activation_checkpointing
    frozen = freeze_understanding(model) if args.freeze_und else 0
    if info.distributed:
        apply_fsdp(model, torch.bfloat16 if device.type == "cuda" else None)

    vae_dir = Path(args.vae)
    try:
        codec = load_vae(vae_dir, device)
    except (FileNotFoundError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    try:
        maker = SampleMaker(clips, codec, cfg, data_cfg, device)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    check_latents(maker)
    validator = None
    if val_clips is not None:
        from gac.validate import ValConfig, Validator

        vcfg = ValConfig(samples=args.val_samples, psnr_clips=args.val_psnr_clips)
        validator = Validator(val_clips, codec, cfg, data_cfg, device, vcfg, args.pack_tokens)
    n_params = sum(p.numel() for p in model.parameters())  # DTensors report their full size
    log.info("model %s (camera %s): %.1fM parameters (%.1fM frozen); %d training clips on rank %d of %d",
             args.preset, cfg.camera, n_params / 1e6, frozen / 1e6, len(clips), info.rank, info.world)  # fmt: skip

    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.95), eps=1e-15, weight_decay=0.0)
    step = 0
    sharded_root = out / "dcp"
    if args.resume and info.distributed and dist_ckpt.latest(sharded_root) is not None:
        state = dist_ckpt.load_sharded(dist_ckpt.latest(sharded_root), model, opt)
        step = int(state["step"])
        _restore_streams(streams, state, info)
        log.info("resumed at step %d from %s (saved on %d ranks, now %d)", step, dist_ckpt.latest(sharded_root),
                 state["world"], info.world)  # fmt: skip
    elif args.resume and not info.distributed and (out / "last" / "optimizer.json").is_file():
        extra = load_optimizer(out / "last", opt)
        step = int(extra["step"])
        rng.bit_generator.state = extra["rng"]
        _restore_streams(streams, extra, info)
        log.info("resumed at step %d", step)
    # noise tensors are drawn where they are used, so the host never waits on a copy; host draws (plans, t, noise
    # levels) come from each stream's generator
    noise_gens = [torch.Generator(device=device) for _ in streams]  # reseeded per step: a resume is exact
    dropout = 0.0 if args.fixed_sample else args.geometry_dropout
    fixed_plan = maker.plan(rng, 0.0) if args.fixed_sample else None

    on_gpu = device.type == "cuda"
    use_flex = args.attention == "flex" or (args.attention == "auto" and on_gpu and args.pack_tokens > 0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)

    def samples(stream):
        """(plan, layout) of every training sample of one stream, endlessly."""
        while True:
            stream.mark()
            plan = maker.plan(stream.rng, dropout, clip=stream.next_clip())
            yield plan, maker.layout(plan, stream.rng, args.t_shift, args.context_noise)

    forwards = [group_by_budget(samples(st), args.pack_tokens) for st in streams]

    def next_forward(m: int):
        """Forward m of this step (:mod:`gac.batch_builder`): one sample, or whole samples up to --pack-tokens."""
        if fixed_plan is not None:  # the same sample, timesteps and noise at every step
            seq = maker.layout(fixed_plan, np.random.default_rng(args.seed + 12345), args.t_shift)
            return maker.build_forward([fixed_plan], [seq], torch.Generator(device=device).manual_seed(args.seed))
        try:
            group = next(forwards[m])
        except ValueError as exc:  # a sample longer than --pack-tokens
            raise TrainingError(str(exc)) from None
        return maker.build_forward([p for p, _ in group], [q for _, q in group], noise_gens[m],
                                   pad_to=args.pack_tokens if args.pack_tokens > 0 else None)  # fmt: skip

    ctx = TrainContext(args, out, info, data_cfg, vae_dir, streams, rng)
    history, val_history, t_start = [], [], time.perf_counter()
    log_path, val_path = out / "train_log.jsonl", out / "val_log.jsonl"
    watch, best_val = LossWatch(args.warmup), math.inf
    total_steps = float(args.steps)
    pending: list[tuple[dict, torch.Tensor, torch.Tensor]] = []  # step records whose loss is still on the device

    def flush() -> None:
        """Read the losses of the pending steps (one GPU sync per --log-every steps, not one per step)."""
        if not pending:
            return
        values = torch.stack([torch.cat([lt, g[None]]) for _, lt, g in pending]).double().cpu().tolist()
        with (log_path.open("a") if info.is_main else open(os.devnull, "w")) as f:
            for (rec, _, _), (loss_sum, tokens_sum, grad_v) in zip(pending, values):
                loss_v = loss_sum / info.world
                rec.update(tokens=int(round(tokens_sum)), loss=loss_v, grad_norm=grad_v)
                if not math.isfinite(loss_v):
                    raise TrainingError(f"loss is {loss_v} at step {rec['step']}; lower --lr or check the data and the VAE")
                watch.update(rec["step"], loss_v)
                history.append(rec)
                f.write(json.dumps(rec) + "\n")
        pending.clear()
        rec = history[-1]
        log.info("step %d loss %.4f grad %.3f tokens %d lr %.2e %.1f s", rec["step"], rec["loss"], rec["grad_norm"],
                 rec["tokens"], rec["lr"], rec["elapsed_s"])  # fmt: skip

    while step < args.steps:
        elapsed = time.perf_counter() - t_start
        if args.time_limit and step > 0 and _all_agree(elapsed > args.time_limit, info):  # the first step always runs
            log.info("time limit reached at step %d", step)
            break
        if args.time_limit and step > 20:  # the schedule ends where the time limit will stop training
            total_steps = min(float(args.steps), step * args.time_limit / max(elapsed, 1e-9))
        lr = lr_at(step, args, total_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        total_loss, tokens, t_step, host_s = torch.zeros((), device=device), 0, time.perf_counter(), 0.0
        for m in range(args.batch):
            noise_gens[m].manual_seed(args.seed * 1_000_003 + 7919 * streams[m].stream + step)
            t_host = time.perf_counter()
            pk = next_forward(m)
            host_s += time.perf_counter() - t_host
            flex = use_flex or (on_gpu and args.attention == "auto" and pk.inputs.length > 16384)
            total_loss += forward_backward(model, pk, flex, autocast, args.batch)
            tokens += pk.inputs.length
        grad_norm = local_norm(torch.nn.utils.clip_grad_norm_(trainable, args.grad_clip))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            if args.time_limit and time.perf_counter() - t_step > args.time_limit:
                raise TrainingError(
                    f"--time-limit {args.time_limit:g} s fits no training step here: the first took "
                    f"{time.perf_counter() - t_step:.0f} s on {device.type}; use a GPU, a smaller preset or a longer "
                    "limit"
                )
        # host_s: seconds making this step's batches; near the step's time, the host (not the GPU) is the bottleneck
        elapsed = time.perf_counter() - t_start
        rec = {"step": step, "lr": lr, "elapsed_s": round(elapsed, 3), "host_s": round(host_s, 4)}
        # loss (mean over ranks) and tokens (sum over ranks) in one reduction, read at the next flush
        loss_tokens = sum_across_ranks(torch.stack([total_loss, torch.tensor(float(tokens), device=device)]), info)
        pending.append((rec, loss_tokens, grad_norm.detach()))
        if step % args.log_every == 0 or step == 1:
            flush()
        if validator is not None and step % args.val_every == 0:
            flush()
            best_val = _validate(validator, model, step, rec, val_history, val_path, history, opt, ctx, best_val)
        if step % args.save_every == 0:
            save_all(out / "last", model, opt, ctx, step)
    flush()
    if validator is not None and (not val_history or val_history[-1]["step"] != step):
        best_val = _validate(validator, model, step, history[-1] if history else {}, val_history, val_path, history,
                             opt, ctx, best_val)  # fmt: skip
    save_all(out / "last", model, opt, ctx, step, final=True)
    return {"history": history, "val": val_history, "checkpoint": str(out / "last"), "step": step}


def _all_agree(flag: bool, info: DistInfo) -> bool:
    """True on every rank when any rank says True (the time limit must stop all ranks at the same step)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if torch.cuda.is_available() and torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def _restore_streams(streams, state: dict, info: DistInfo) -> None:
    """Each stream continues where it was saved; saved with another number of streams, streams restart their
    epoch from (seed, epoch, stream) (their clips changed with the rank count)."""
    saved = {int(s["stream"]): s for s in state.get("streams", [])}
    same_layout = int(state.get("num_streams", -1)) == len(streams) * info.world
    for st in streams:
        if same_layout and st.stream in saved:
            st.restore(saved[st.stream])
        elif saved:
            st.epoch = max(int(s["epoch"]) for s in saved.values())


def forward_backward(model, pk, flex: bool, autocast, batch: int) -> torch.Tensor:
    """One forward and backward of a packed sequence; returns the (detached) loss share of this forward."""
    mask = attention_mask(pk, flex)
    with autocast:
        v = model(pk.inputs, mask)
    loss = per_row_loss(v, pk).mean() / batch
    loss.backward()
    return loss.detach()


def _validate(validator, model, step, rec, val_history, val_path, history, opt, ctx: TrainContext, best_val) -> float:
    """Held-out measurements (every rank runs them on the same samples; rank 0 writes)."""
    from gac.validate import plot_curves

    t0 = time.perf_counter()
    val = {"step": step, "elapsed_s": rec.get("elapsed_s", 0.0), **validator.run(model)}
    val["val_seconds"] = round(time.perf_counter() - t0, 2)
    val_history.append(val)
    if ctx.info.is_main:
        with val_path.open("a") as f:
            f.write(json.dumps(val) + "\n")
        plot_curves(history, val_history, ctx.out / "curves.png")
    log.info("val step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in val.items() if k not in ("step",)))
    if val["val_loss_image"] < best_val:
        save_all(ctx.out / "best", model, None, ctx, step, extra={"val": val})
        return val["val_loss_image"]
    return best_val


if __name__ == "__main__":
    main()
