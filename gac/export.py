"""Export a trained GaC checkpoint for inference: model and VAE weights in bf16 (or fp32), no optimizer state.

    python -m gac.export runs/gac/best OUT_DIR [--dtype bf16]

OUT_DIR holds ``config.json`` + ``model.safetensors`` and ``vae/`` (diffusers layout plus the VAE's
``train_report.json``), loadable by the ``gac`` method (``--option checkpoint=OUT_DIR``). Halving the weights to
bf16 changes sampled frames only at bf16 rounding (the GPU samples in bf16 anyway).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from gac.checkpoint import load_checkpoint, resolve_vae_path, save_checkpoint
from gac.vae import load_vae, save_vae

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def export(src: Path, dst: Path, dtype: str = "bf16") -> Path:
    src, dst = Path(src), Path(dst)
    model, config = load_checkpoint(src, "cpu")
    meta = {k: v for k, v in config.items() if k not in ("format", "model")}
    meta["vae"] = "vae"
    meta["exported_from"] = str(src)
    meta["dtype"] = dtype
    save_checkpoint(dst, model, meta, dtype=DTYPES[dtype])
    vae_src = resolve_vae_path(src, config)
    codec = load_vae(vae_src, "cpu")
    if (dst / "vae").exists():
        shutil.rmtree(dst / "vae")
    save_vae(codec.vae.to(DTYPES[dtype]), dst / "vae")
    report = vae_src / "train_report.json"
    if report.is_file():
        shutil.copy(report, dst / "vae" / "train_report.json")
    return dst


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors")) / 2**20


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m gac.export", description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    args = p.parse_args(argv)
    dst = export(Path(args.src), Path(args.dst), args.dtype)
    print(json.dumps({"exported": str(dst), "weights_mb": round(size_mb(dst), 2)}))


if __name__ == "__main__":
    main()
