"""Small file helpers shared by the adapters: PNG frames, JSON, npy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench.records import jsonable


def write_png(path: Path, image: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(path, compress_level=1)  # scratch files: favour speed
    return path


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_frames(folder: Path, count: int, pattern: str = "frame_{:04d}.png") -> np.ndarray:
    """``count`` frames named by ``pattern`` from ``folder``, as uint8 (count, H, W, 3)."""
    paths = [Path(folder) / pattern.format(i) for i in range(count)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: upstream output is missing {len(missing)} frame(s), e.g. {missing[0]}")
    frames = [read_png(p) for p in paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: upstream frames have different sizes {sorted(shapes)}")
    return np.stack(frames)


def write_json(path: Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    return path


def write_npy(path: Path, array: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(array), allow_pickle=False)
    return path
