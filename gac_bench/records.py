"""Per-clip records on disk (runs layout of DESIGN.md), written atomically.

    <runs>/<split>/<trajectory>/<method>/<clip_id>/frames/0000.png ...
    <runs>/<split>/<trajectory>/<method>/<clip_id>/generation.json
    <runs>/<split>/<trajectory>/<method>/<clip_id>/metrics.json
    <runs>/<split>/<trajectory>/<method>/split_metrics.json

A JSON record is written to a temporary file in the same folder and renamed over the target, so a killed run
leaves either the old record or the new one, never half of one. Frames are written to a temporary folder that
is renamed to ``frames`` before generation.json (which lists them) is written: generation.json with status
"ok" therefore implies complete frames.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SCHEMA_VERSION = 1


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None  # JSON has no NaN; missing values are null
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path, record: dict) -> None:
    write_text_atomic(path, json.dumps(jsonable(record), indent=1, sort_keys=True, allow_nan=False))


def write_text_atomic(path: Path, text: str) -> None:
    """Text through a uniquely named temporary file in the same folder, renamed over ``path`` (concurrent writers
    never share a temporary name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    """The record, or None when absent or unreadable (an unreadable record is treated as not written)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def frame_name(i: int) -> str:
    return f"{i:04d}.png"


def write_frames_atomic(frames_dir: Path, frames: np.ndarray) -> None:
    """Write uint8 (N, H, W, 3) frames as lossless PNGs into ``frames_dir``, replacing it as a whole."""
    frames_dir = Path(frames_dir)
    frames_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".frames.", dir=frames_dir.parent))
    try:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(tmp / frame_name(i), compress_level=1)
        if frames_dir.exists():
            shutil.rmtree(frames_dir)
        os.replace(tmp, frames_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_frames(frames_dir: Path, num_frames: int) -> np.ndarray:
    """Stored frames 0..num_frames-1; an unreadable one raises ValueError naming its file."""
    frames = []
    for i in range(num_frames):
        path = Path(frames_dir) / frame_name(i)
        try:
            with Image.open(path) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (OSError, ValueError) as exc:
            raise ValueError(f"stored frame {path} is unreadable ({type(exc).__name__}: {exc})") from None
    return np.stack(frames)


def frames_complete(frames_dir: Path, num_frames: int) -> bool:
    return all((Path(frames_dir) / frame_name(i)).is_file() for i in range(num_frames))


@contextlib.contextmanager
def clip_lock(folder: Path):
    """Exclusive lock on one clip's folder (``.lock`` inside it) for as long as a run generates or scores it, so
    two runs on one runs dir never clean up each other's temporaries; the second waits, then finds the records
    valid and reuses them. A no-op where the OS has no flock."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_stale_temporaries(folder: Path) -> None:
    """Remove temporaries a killed run left behind (never a finished record)."""
    if not Path(folder).is_dir():
        return
    for p in Path(folder).glob(".frames.*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in Path(folder).glob(".*.tmp"):
        p.unlink(missing_ok=True)


def clip_dir(runs_dir: Path, split: str, trajectory: str, method: str, clip_id: str) -> Path:
    return Path(runs_dir) / split / trajectory / method / clip_id


def method_dir(runs_dir: Path, split: str, trajectory: str, method: str) -> Path:
    return Path(runs_dir) / split / trajectory / method


def provenance(device: str) -> dict:
    """Where a record came from: time, command line, gac-bench version and commit, packages, device."""
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"created_utc": now, **_static_provenance(device)}


@functools.lru_cache(maxsize=None)
def _static_provenance(device: str) -> dict:
    """The parts that do not change within a process (the git call runs once)."""
    import platform
    import subprocess
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from gac_bench import __version__

    packages = {}
    for name in ("torch", "numpy", "torchmetrics", "diffusers", "pycolmap"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    commit = None
    try:
        repo = Path(__file__).resolve().parents[1]
        proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)  # fmt: skip
        commit = proc.stdout.strip() or None if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"command_line": list(sys.argv), "gac_bench_version": __version__, "gac_bench_commit": commit,
            "python": platform.python_version(), "packages": packages, "device": device}  # fmt: skip
