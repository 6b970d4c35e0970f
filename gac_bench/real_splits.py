"""The fixed splits over real datasets (re10k-test-150, tanks-150). Registered on import by gac_bench.splits.

Clip lists come from the committed split files ``splits/<name>.csv`` (see their headers and
``tools/make_splits.py`` for how they were made). Data location, in order of precedence:

=================  ===================================  ===============================================
split              data root                            layouts read (see the dataset modules)
=================  ===================================  ===============================================
re10k-test-150     ``--data-root`` or ``$GAC_BENCH_RE10K``  pixelSplat chunks, or raw camera txt + frames
tanks-150          ``--data-root`` or ``$GAC_BENCH_TANKS``  per scene ``images/`` + COLMAP model
=================  ===================================  ===============================================

Both are evaluated at 640x352 (resize to cover, centre crop, K updated). A clip whose data is absent or bad
raises :class:`ClipDataError` naming the clip and the file when it is loaded; the runner records it as
failed and goes on. ``describe_splits`` reports, without reading any image, which data each split finds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench import split_files
from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.splits import ClipSpec, Split, get_split, known_splits, register_split
from gac_bench.trajectories import source_frames_needed

EVAL_WIDTH, EVAL_HEIGHT = 640, 352
RE10K_ENV = "GAC_BENCH_RE10K"
TANKS_ENV = "GAC_BENCH_TANKS"


@dataclass(frozen=True)
class DataRoot:
    path: Path | None
    origin: str  # "--data-root", "$GAC_BENCH_RE10K", ... or "not set"

    def __str__(self) -> str:
        return f"{self.path} (from {self.origin})" if self.path else "not set"


def resolve_data_root(data_root: Path | None, env_var: str) -> DataRoot:
    """``--data-root`` wins over the dataset's environment variable."""
    if data_root is not None:
        return DataRoot(Path(data_root).expanduser(), "--data-root")
    if os.environ.get(env_var):
        return DataRoot(Path(os.environ[env_var]).expanduser(), f"${env_var}")
    return DataRoot(None, "not set")


def _no_root_error(clip_id: str, dataset: str, env_var: str) -> ClipDataError:
    return ClipDataError(f"clip {clip_id}: no {dataset} data root: pass --data-root DIR or set {env_var}")


# ---------------------------------------------------------------------------------------------- re10k-test-150


def _re10k_reader(root: DataRoot):
    from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout

    if root.path is None:
        return None
    layout = detect_re10k_layout(root.path)
    return Re10kDataRoot(layout, EVAL_WIDTH, EVAL_HEIGHT) if layout is not None else None


@register_split("re10k-test-150")
def re10k_test_150(data_root: Path | None = None) -> Split:
    sf = split_files.load_split_file("re10k-test-150")
    root = resolve_data_root(data_root, RE10K_ENV)
    state: dict = {}

    def load(spec: ClipSpec) -> Clip:
        if root.path is None:
            raise _no_root_error(spec.clip_id, "RealEstate10K", RE10K_ENV)
        if "reader" not in state:  # detect the layout once, on first use
            state["reader"] = _re10k_reader(root)
        if state["reader"] is None:
            raise ClipDataError(
                f"clip {spec.clip_id}: no RealEstate10K layout under {root.path}: expected test/index.json + *.torch "
                "(pixelSplat chunks) or test/<id>.txt with frames in test/<id>/ (raw)"
            )
        return state["reader"].load_clip(spec.clip_id)

    return Split(
        name="re10k-test-150",
        width=EVAL_WIDTH,
        height=EVAL_HEIGHT,
        clips=list(sf.clips),
        description="150 RealEstate10K test clips (hash-ranked from DepthSplat's 1,600 long clips), stride 3",
        loader=load,
        data_location=str(root),
    )


# ---------------------------------------------------------------------------------------------- tanks-150


def segment_indices(spec: ClipSpec) -> np.ndarray:
    """Source frames every paper-v1 trajectory of ``spec`` uses: start, start+stride, ..."""
    return np.arange(spec.start, source_frames_needed(spec.start, spec.stride), spec.stride)


@register_split("tanks-150")
def tanks_150(data_root: Path | None = None) -> Split:
    from gac_bench.datasets.tanks import TanksReader

    sf = split_files.load_split_file("tanks-150")
    root = resolve_data_root(data_root, TANKS_ENV)
    reader = TanksReader(root.path, EVAL_WIDTH, EVAL_HEIGHT) if root.path is not None else None

    def load(spec: ClipSpec) -> Clip:
        if reader is None:
            raise _no_root_error(spec.clip_id, "Tanks-and-Temples", TANKS_ENV)
        return reader.load_clip(spec.clip_id, spec.scene or "", segment_indices(spec))

    return Split(
        name="tanks-150",
        width=EVAL_WIDTH,
        height=EVAL_HEIGHT,
        clips=list(sf.clips),
        description="150 segments over the 21 Tanks-and-Temples scenes (images + COLMAP model), stride 1",
        loader=load,
        data_location=str(root),
    )


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class SplitStatus:
    """One row of ``gac-bench splits``."""

    name: str
    size: int
    data_location: str
    found: bool
    detail: str


def _re10k_status(split: Split, data_root: Path | None) -> tuple[str, bool, str]:
    root = resolve_data_root(data_root, RE10K_ENV)
    if root.path is None:
        return str(root), False, f"no data root: pass --data-root DIR or set {RE10K_ENV}"
    reader = _re10k_reader(root)
    if reader is None:
        return str(root), False, f"no RealEstate10K layout found under {root.path}"
    try:
        present = [c.clip_id for c in split.clips if reader.has_clip(c.clip_id)]
    except ClipDataError as exc:
        return str(root), False, str(exc)
    return str(root), bool(present), _count_detail(reader.layout.describe(), split, present)


def _tanks_status(split: Split, data_root: Path | None) -> tuple[str, bool, str]:
    from gac_bench.datasets.tanks import find_scene

    root = resolve_data_root(data_root, TANKS_ENV)
    if root.path is None:
        return str(root), False, f"no data root: pass --data-root DIR or set {TANKS_ENV}"
    scenes = sorted({c.scene for c in split.clips if c.scene})
    usable = {s for s in scenes if (f := find_scene(root.path, s)) is not None and f.model_dir is not None}
    present = [c.clip_id for c in split.clips if c.scene in usable]
    what = f"{len(usable)}/{len(scenes)} scenes with images + COLMAP model"
    return str(root), bool(present), _count_detail(what, split, present)


def _count_detail(what: str, split: Split, present: list[str]) -> str:
    detail = f"{what}; {len(present)}/{len(split.clips)} clips present"
    missing = [c.clip_id for c in split.clips if c.clip_id not in set(present)]
    if missing:
        detail += f" (missing e.g. {', '.join(missing[:3])})"
    return detail


_STATUS_PROBES = {"re10k-test-150": _re10k_status, "tanks-150": _tanks_status}


def describe_splits(data_root: Path | None = None) -> list[SplitStatus]:
    """Every registered split: size, where its data is looked for, and whether it is found.

    Presence is checked from file names only (index entries, camera files, scene folders); reading a clip
    can still fail, which the run then records per clip.
    """
    rows = []
    for name in known_splits():
        try:
            split = get_split(name, data_root)
        except Exception as exc:  # a listing must show every split, even one that cannot be built here
            rows.append(SplitStatus(name, 0, "", False, f"split unavailable: {type(exc).__name__}: {exc}"))
            continue
        probe = _STATUS_PROBES.get(name)
        if probe is None:
            rows.append(SplitStatus(name, len(split.clips), split.data_location, True, split.description))
            continue
        location, found, detail = probe(split, data_root)
        rows.append(SplitStatus(name, len(split.clips), location, found, detail))
    return rows
