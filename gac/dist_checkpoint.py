"""Sharded training checkpoints for FSDP2 runs (``torch.distributed.checkpoint``), and their export.

Layout under ``OUT/dcp/``: ``step_000123/`` (DCP files written by every rank: model and AdamW state, resharded on
load, so a run saved on 8 ranks resumes on 4), ``step_000123/train_state.json`` (step, world size, every data
stream's position and generator state, the run's config) and ``latest`` (the name of the newest complete step,
written last, so a kill while saving leaves the previous one in use). Only the two newest steps are kept.

``python -m gac.dist_checkpoint OUT/dcp/step_000123 EXPORT_DIR`` (one process, no GPU) writes the single-folder
safetensors checkpoint that ``gac-bench run --method gac`` and ``gac.train --init`` read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from gac.checkpoint import save_checkpoint
from gac.model import GaCConfig, build_model
from gac.parallel import DistInfo, barrier

KEEP = 2


def _step_dir(root: Path, step: int) -> Path:
    return root / f"step_{step:06d}"


def latest(root: Path) -> Path | None:
    """The newest complete sharded checkpoint under ``root`` (OUT/dcp), or None."""
    pointer = Path(root) / "latest"
    if not pointer.is_file():
        return None
    folder = Path(root) / pointer.read_text().strip()
    return folder if (folder / "train_state.json").is_file() else None


def save_sharded(root: Path, step: int, model, opt, train_state: dict, info: DistInfo) -> Path:
    """Every rank writes its shards; rank 0 writes the train state, then moves ``latest`` (collective)."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    folder = _step_dir(Path(root), step)
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(folder))
    barrier(info)
    if info.is_main:
        tmp = folder / "train_state.json.tmp"
        tmp.write_text(json.dumps({**train_state, "step": step, "world": info.world}, indent=1))
        os.replace(tmp, folder / "train_state.json")
        pointer = Path(root) / "latest.tmp"
        pointer.write_text(folder.name)
        os.replace(pointer, Path(root) / "latest")
        steps = sorted(p for p in Path(root).glob("step_*") if p.is_dir())
        for old in steps[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(info)
    return folder


def load_sharded(folder: Path, model, opt) -> dict:
    """Restore model and AdamW state into the (sharded) model and optimizer; returns the train state."""
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from torch.distributed.checkpoint import DefaultLoadPlanner

    model_sd, optim_sd = get_state_dict(model, opt)
    model_state, optim_state = {"model": model_sd}, {"optim": optim_sd}
    dcp.load(model_state, checkpoint_id=str(folder))  # every weight must be there
    # AdamW has no state for parameters that never had a gradient (e.g. the last layer's und expert, whose outputs
    # no loss reads); they keep the fresh zeros
    dcp.load(optim_state, checkpoint_id=str(folder), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(model, opt, model_state_dict=model_state["model"], optim_state_dict=optim_state["optim"])
    return json.loads((Path(folder) / "train_state.json").read_text())


def full_state_dict(model) -> dict[str, torch.Tensor]:
    """All parameters gathered to full tensors on the CPU (collective under FSDP; plain state dict otherwise)."""
    if not (dist.is_available() and dist.is_initialized()):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def export(folder: Path, out: Path, dtype: torch.dtype | None = None) -> Path:
    """A sharded checkpoint -> the single-folder checkpoint (``model.safetensors`` + ``config.json``), one process."""
    folder = Path(folder)
    state_path = folder / "train_state.json"
    if not state_path.is_file():
        raise FileNotFoundError(f"{folder} is not a sharded GaC checkpoint: {state_path} is missing")
    train_state = json.loads(state_path.read_text())
    model = build_model(GaCConfig.from_dict(train_state["model"]))
    model_sd = model.state_dict()
    dcp.load({"model": model_sd}, checkpoint_id=str(folder))
    model.load_state_dict(model_sd)
    meta = {k: train_state[k] for k in ("data", "vae", "step", "train_args", "recipe") if k in train_state}
    save_checkpoint(Path(out), model, meta, dtype=dtype)
    vae = train_state.get("vae_dir")
    if vae and Path(vae).is_dir() and not (Path(out) / "vae").exists():
        shutil.copytree(vae, Path(out) / "vae", ignore=shutil.ignore_patterns("*.tmp"))
    return Path(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Export a sharded GaC training checkpoint to one safetensors folder.")
    p.add_argument("folder", help="OUT/dcp/step_NNNNNN, or OUT/dcp for the newest")
    p.add_argument("out")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    if not (folder / "train_state.json").is_file() and latest(folder) is not None:
        folder = latest(folder)
    try:
        out = export(folder, Path(args.out), torch.bfloat16 if args.dtype == "bf16" else None)
    except (FileNotFoundError, ValueError) as exc:
        print(f"gac.dist_checkpoint: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
