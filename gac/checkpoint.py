"""GaC checkpoints: a folder with ``model.safetensors`` + ``config.json`` (never pickle).

config.json::

    {"format": "gac-checkpoint-v1", "model": {GaCConfig fields}, "data": {DataConfig fields},
     "vae": "vae" (a folder relative to the checkpoint, or an absolute path), "step": 1234, ...}

Training state for resume sits beside it: ``optimizer.safetensors`` (AdamW moments flattened as
``state.{param_index}.{exp_avg|exp_avg_sq|step}``) and ``optimizer.json`` (param groups, RNG seeds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gac.model import GaCConfig, GaCModel

FORMAT = "gac-checkpoint-v1"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_checkpoint(folder: Path, model: GaCModel, meta: dict, dtype: torch.dtype | None = None,
                    state: dict[str, torch.Tensor] | None = None) -> Path:  # fmt: skip
    """Write the model's weights (optionally cast to ``dtype``) and config; ``meta`` joins config.json.
    ``state``: the full weights when the model itself holds shards (FSDP2)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if state is None else state
    state = {k: (v.to(dtype) if dtype is not None else v).detach().contiguous().cpu() for k, v in state.items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, folder / "model.safetensors")
    config = {"format": FORMAT, "model": model.cfg.to_dict(), **meta}
    _atomic_write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True))
    return folder


def read_config(folder: Path) -> dict:
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"GaC checkpoint folder not found: {folder}")
    if not cfg_path.is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"GaC checkpoint {folder} must contain config.json and model.safetensors "
            "(written by python -m gac.train or python -m gac.convert_bagel)"
        )
    config = json.loads(cfg_path.read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: format {config.get('format')!r}, expected {FORMAT!r}")
    return config


def load_checkpoint(folder: Path, device="cpu", dtype: torch.dtype = torch.float32) -> tuple[GaCModel, dict]:
    """Build the model on the meta device from config.json and load the weights; mismatches raise ValueError."""
    config = read_config(folder)
    cfg = GaCConfig.from_dict(config["model"])
    with torch.device("meta"):
        model = GaCModel(cfg)
    weights = Path(folder) / "model.safetensors"
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as exc:  # truncated, zero-byte or foreign files
        raise ValueError(f"{weights} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with the wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {expected[k]})")
        raise ValueError(f"checkpoint {folder} does not match its config.json model: " + "; ".join(parts))
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
    return model.to(device), config


def resolve_vae_path(folder: Path, config: dict, override: str | None = None) -> Path:
    """The VAE folder: an explicit override, else config's "vae" (relative to the checkpoint when not absolute)."""
    if override:
        return Path(override).expanduser()
    vae = config.get("vae")
    if not vae:
        raise FileNotFoundError(f"checkpoint {folder} names no VAE folder; pass --option vae=PATH")
    path = Path(vae)
    return path if path.is_absolute() else Path(folder) / path


# ---------------------------------------------------------------------------------------------- optimizer state


def save_optimizer(folder: Path, optimizer: torch.optim.Optimizer, extra: dict) -> None:
    sd = optimizer.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            tensors[f"state.{pid}.{name}"] = (val if torch.is_tensor(val) else torch.tensor(val)).contiguous().cpu()
    save_file(tensors, str(Path(folder) / "optimizer.safetensors.tmp"))
    os.replace(Path(folder) / "optimizer.safetensors.tmp", Path(folder) / "optimizer.safetensors")
    _atomic_write_text(Path(folder) / "optimizer.json", json.dumps({"param_groups": sd["param_groups"], **extra}))


def load_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore AdamW state saved by :func:`save_optimizer`; returns the extra fields (step, RNG seeds)."""
    meta = json.loads((Path(folder) / "optimizer.json").read_text())
    flat = load_file(str(Path(folder) / "optimizer.safetensors"))
    state: dict[int, dict] = {}
    for key, val in flat.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = val
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    return meta
