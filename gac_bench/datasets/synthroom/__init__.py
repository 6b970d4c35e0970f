"""``synthroom``: the embedded split of procedural indoor scenes with exact depth.

Furnished rooms (boxes, cylinders and spheres textured with the photos bundled in scikit-image and with
procedural patterns) are ray-cast along smooth RealEstate10K-like walkthroughs and written in the
RealEstate10K raw layout (see :mod:`.writer`), so :class:`gac_bench.datasets.re10k.Re10kRawReader` reads
them like any other clip. Rendering the default split (8 clips x 200 frames of 256x144) takes well under a
minute on two CPU cores and happens once: the result is cached under ``GAC_BENCH_HOME``.

World frame: right-handed, z up, floor at z = 0, metres. Poses: OpenCV camera-to-world. Depth: float32
z-depth along the optical axis at pixel centres. Same seed -> byte-identical frames and camera files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.synthroom.camera_path import FPS, FX_NORM, make_camera_path
from gac_bench.datasets.synthroom.raycast import render_depth, render_view
from gac_bench.datasets.synthroom.layout import make_scene
from gac_bench.datasets.synthroom.scene import Scene
from gac_bench.datasets.synthroom.writer import (
    GENERATOR,
    SynthroomConfig,
    is_complete,
    read_manifest,
    render_tree,
    write_manifest,
)
from gac_bench.paths import gac_bench_home

VERSION = "1"  # bump whenever the rendered pixels, depths or poses change
WIDTH = 256
HEIGHT = 144
NUM_FRAMES = 200
NUM_CLIPS = 8
STRIDE = 3
CLIP_IDS = tuple(f"room{i:02d}" for i in range(NUM_CLIPS))
DEFAULT_CONFIG = SynthroomConfig(seed=0, num_clips=NUM_CLIPS, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT)


@dataclass(frozen=True)
class RoomSet:
    """A named set of synthroom rooms: same generator, its own seed, so no room is shared between sets."""

    name: str
    seed: int
    num_clips: int
    prefix: str
    purpose: str

    @property
    def config(self) -> SynthroomConfig:
        return SynthroomConfig(self.seed, self.num_clips, NUM_FRAMES, WIDTH, HEIGHT, self.prefix)


# The evaluation split (seed 0) is for scoring only; GaC trains on seed 1 and selects models on seed 2.
ROOM_SETS = {
    "synthroom": RoomSet("synthroom", 0, NUM_CLIPS, "room", "evaluation (leaderboard); never trained on"),
    "synthroom-train": RoomSet("synthroom-train", 1, 240, "train", "GaC training rooms; never scored"),
    "synthroom-val": RoomSet("synthroom-val", 2, 32, "val", "held-out rooms for validation and ablations"),
}
_TREE_ENTRIES = ("cameras", "frames", "depth")
_INSTALL_MARKER = ".synthroom-installing"

__all__ = [
    "CLIP_IDS", "FPS", "FX_NORM", "HEIGHT", "NUM_CLIPS", "NUM_FRAMES", "ROOM_SETS", "STRIDE", "VERSION", "WIDTH",
    "RoomSet", "Scene", "SynthroomConfig", "cache_dir", "ensure_room_set", "ensure_synthroom", "make_camera_path",
    "make_scene", "render_depth", "render_view", "write_synthroom",
]  # fmt: skip


def _config(seed: int, num_clips: int, num_frames: int, width: int, height: int, prefix: str = "room") -> SynthroomConfig:
    cfg = SynthroomConfig(int(seed), int(num_clips), int(num_frames), int(width), int(height), str(prefix))
    if min(cfg.num_clips, cfg.num_frames, cfg.width, cfg.height) < 1:
        raise ValueError(f"synthroom sizes must be positive: {cfg}")
    return cfg


def cache_dir(data_root: Path | None = None, seed: int = 0, config: SynthroomConfig | None = None) -> Path:
    """Folder of the split: ``data_root`` when given, else ``GAC_BENCH_HOME/data/synthroom-v<V>-seed<S>``.

    A non-default size (tests, experiments) gets its own folder name so it never evicts the default cache.
    """
    if data_root is not None:
        return Path(data_root).expanduser()
    name = f"synthroom-v{VERSION}-seed{seed}"
    cfg = config or _config(seed, NUM_CLIPS, NUM_FRAMES, WIDTH, HEIGHT)
    if cfg.prefix != "room":
        name += f"-{cfg.prefix}"
    if (cfg.num_clips, cfg.num_frames, cfg.width, cfg.height) != (NUM_CLIPS, NUM_FRAMES, WIDTH, HEIGHT):
        name += f"-{cfg.num_clips}x{cfg.num_frames}-{cfg.width}x{cfg.height}"
    return gac_bench_home() / "data" / name


def ensure_synthroom(
    data_root: Path | None = None,
    seed: int = 0,
    progress: bool = True,
    *,
    num_clips: int = NUM_CLIPS,
    num_frames: int = NUM_FRAMES,
    width: int = WIDTH,
    height: int = HEIGHT,
    workers: int | None = None,
    prefix: str = "room",
) -> Path:
    """The folder holding the split, rendering it first unless a complete matching render is there.

    Rendering goes to a temporary sibling folder that is moved into place only when complete (the
    manifest is written last), so an interrupted render never leaves a tree that looks valid; leftovers
    of interrupted renders are removed by the next one. Concurrent callers (e.g. torchrun ranks) wait on a
    lock file and reuse the first one's result. ``workers``: render processes (default: one per available
    core; 0 renders in this process).
    """
    cfg = _config(seed, num_clips, num_frames, width, height, prefix)
    folder = cache_dir(data_root, cfg.seed, cfg)
    if is_complete(folder, cfg, VERSION):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        if is_complete(folder, cfg, VERSION):  # another process finished it while we waited
            return folder
        _check_replaceable(folder, is_cache=data_root is None)
        _remove_leftovers(folder)
        if progress:  # say where the render goes and how much it takes before it starts
            mb = cfg.num_clips * cfg.num_frames * cfg.width * cfg.height * 7 / 2**20  # png + float32 depth
            print(f"rendering {cfg.num_clips} synthroom rooms ({cfg.num_frames} frames each, about {mb:.0f} MB) "
                  f"into {folder}", file=sys.stderr)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            render_tree(cfg, VERSION, tmp, progress, workers)
            write_manifest(cfg, VERSION, tmp)
            _install(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_synthroom(
    out_dir: Path,
    seed: int = 0,
    num_clips: int = NUM_CLIPS,
    num_frames: int = NUM_FRAMES,
    width: int = WIDTH,
    height: int = HEIGHT,
    progress: bool = True,
    workers: int | None = None,
    prefix: str = "room",
) -> Path:
    """Write the split to ``out_dir`` (``gac-bench data synthroom --out DIR``); a complete copy is kept as is."""
    return ensure_synthroom(Path(out_dir), seed, progress, num_clips=num_clips, num_frames=num_frames,
                            width=width, height=height, workers=workers, prefix=prefix)  # fmt: skip


def ensure_room_set(name: str, data_root: Path | None = None, progress: bool = True, workers: int | None = None) -> Path:
    """Render (once) and return the folder of a named room set (``synthroom``, ``synthroom-train``, ...)."""
    rs = ROOM_SETS[name]
    return ensure_synthroom(data_root, rs.seed, progress, num_clips=rs.num_clips, workers=workers, prefix=rs.prefix)


# ---------------------------------------------------------------------------------------------- install


@contextlib.contextmanager
def _locked(folder: Path):
    """Exclusive lock on a hidden file beside ``folder`` (no-op where flock or the file is unavailable)."""
    try:
        import fcntl

        handle = open(folder.parent / f".{folder.name}.lock", "a+")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ours(folder: Path) -> bool:
    """True when ``folder``'s tree entries were written by synthroom (any version or size), even if its
    manifest is gone: an install was interrupted (marker), or every camera file has a synthroom URL."""
    manifest = read_manifest(folder)
    if (manifest is not None and manifest.get("generator") == GENERATOR) or (folder / _INSTALL_MARKER).exists():
        return True
    camera_files = list((folder / "cameras").glob("*.txt")) if (folder / "cameras").is_dir() else []
    return bool(camera_files) and all(_first_line(f).startswith("synthroom://") for f in camera_files)


def _first_line(path: Path) -> str:
    with open(path, errors="replace") as handle:
        return handle.readline()


def _check_replaceable(folder: Path, is_cache: bool) -> None:
    """Refuse to overwrite cameras/frames/depth folders that some other dataset put in a user's folder."""
    if is_cache or not folder.exists() or _ours(folder):
        return
    foreign = [e for e in _TREE_ENTRIES if (folder / e).exists() and any((folder / e).iterdir())]
    if foreign:
        raise ClipDataError(
            f"{folder} holds {', '.join(foreign)} that are not a synthroom render; point --data-root at an empty "
            f"folder or at one written by `gac-bench data synthroom --out DIR`"
        )


def _remove_leftovers(folder: Path) -> None:
    """Temporary trees of interrupted renders (we hold the lock, so none of them is in progress)."""
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _install(tmp: Path, folder: Path) -> None:
    """Move a finished tree into place; the manifest arrives last, so a crash never leaves a valid-looking tree."""
    if not folder.exists():
        os.replace(tmp, folder)
        return
    marker = folder / _INSTALL_MARKER
    marker.touch()
    (folder / "manifest.json").unlink(missing_ok=True)
    for entry in _TREE_ENTRIES:
        shutil.rmtree(folder / entry, ignore_errors=True)
        os.replace(tmp / entry, folder / entry)
    os.replace(tmp / "manifest.json", folder / "manifest.json")
    marker.unlink()
