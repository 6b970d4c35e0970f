"""Committed split files (``splits/<name>.csv``): format, validation and loading.

A split file is human-readable CSV preceded by a header of ``# key: value`` comment lines that says what the
split is and how it was made (``tools/make_splits.py`` writes them; the header quotes its rule and salt)::

    # gac-bench split file, format 1
    # name: re10k-test-150
    # ...
    clip_id,start,stride,length
    5aca87f95a9412c6,12,3,279

Columns: ``clip_id`` (required), ``start`` and ``stride`` (required; frame i of the dataset trajectory is
source frame ``start + i * stride``), ``length`` (source frames in the clip, where known), ``scene`` (the scene a
clip belongs to, where the dataset has scenes). Every file is validated on load: ids match the dataset's
pattern and contain no path characters, no id appears twice, numbers are integers in range, and the
segment fits the recorded clip length.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from gac_bench.paths import repo_root
from gac_bench.splits import ClipSpec
from gac_bench.trajectories import source_frames_needed

FORMAT_LINE = "gac-bench split file, format 1"
REQUIRED_COLUMNS = ("clip_id", "start", "stride")
OPTIONAL_COLUMNS = ("length", "scene")

# Clip id patterns per split; a split file is only accepted for a name listed here.
ID_PATTERNS: dict[str, str] = {
    "re10k-test-150": r"[0-9a-f]{16}",  # RealEstate10K clip id: the stem of the official test/<id>.txt
    "tanks-150": r"[A-Z][A-Za-z0-9]*-[0-9]{4}",  # <Scene>-<start, 4 digits>, e.g. Truck-0014
}
_PATH_CHARACTERS = set("/\\:\0") | {".."}
_HEADER_LINE = re.compile(r"# ([A-Za-z0-9_-]+): ?(.*)")


class SplitFileError(ValueError):
    """A split file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class SplitFile:
    name: str
    path: Path
    header: dict[str, str]  # the `# key: value` lines, in order
    clips: tuple[ClipSpec, ...]

    def __len__(self) -> int:
        return len(self.clips)


def splits_dir() -> Path:
    return repo_root() / "splits"


def split_file_path(name: str) -> Path:
    return splits_dir() / f"{name}.csv"


def load_split_file(name: str, path: Path | None = None) -> SplitFile:
    """Read and validate ``splits/<name>.csv`` (or ``path``)."""
    path = Path(path) if path is not None else split_file_path(name)
    if not path.is_file():
        raise SplitFileError(f"split file for {name!r} not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SplitFileError(f"{path}: not a UTF-8 text split file (bad byte at offset {exc.start})") from None
    return parse_split_text(text, name, path)


def parse_split_text(text: str, name: str, path: Path) -> SplitFile:
    if name not in ID_PATTERNS:
        raise SplitFileError(f"{path}: no clip id pattern is defined for split {name!r}")
    lines = text.splitlines()
    header, body_start = _parse_header(lines, path)
    if header.get("name") != name:
        raise SplitFileError(f"{path}: header says name {header.get('name')!r}, expected {name!r}")
    rows = list(csv.reader(io.StringIO("\n".join(lines[body_start:]))))
    if not rows:
        raise SplitFileError(f"{path}: no column line after the header")
    columns = _check_columns(rows[0], path, body_start + 1)
    clips = []
    seen: dict[str, int] = {}
    for offset, row in enumerate(rows[1:], start=body_start + 2):
        where = f"{path}:{offset}"
        if not row or not "".join(row).strip():
            continue
        spec = _parse_row(row, columns, where)
        validate_clip_spec(spec, name, where)
        if spec.clip_id in seen:
            raise SplitFileError(f"{where}: clip id {spec.clip_id} already listed on line {seen[spec.clip_id]}")
        seen[spec.clip_id] = offset
        clips.append(spec)
    if not clips:
        raise SplitFileError(f"{path}: the split lists no clips")
    declared = header.get("clips")
    if declared is not None and declared != str(len(clips)):
        raise SplitFileError(f"{path}: header says {declared} clips, the file lists {len(clips)}")
    return SplitFile(name=name, path=path, header=header, clips=tuple(clips))


def _parse_header(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    if not lines or lines[0].strip() != f"# {FORMAT_LINE}":
        raise SplitFileError(f"{path}:1: expected the line '# {FORMAT_LINE}'")
    header: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i].startswith("#"):
        match = _HEADER_LINE.fullmatch(lines[i].rstrip())
        if match:  # free comment lines ("#   text") are kept in the file but carry no key
            header.setdefault(match.group(1), match.group(2).strip())
        i += 1
    return header, i


def _check_columns(columns: list[str], path: Path, line: int) -> list[str]:
    columns = [c.strip() for c in columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown or len(set(columns)) != len(columns):
        raise SplitFileError(
            f"{path}:{line}: bad column line {','.join(columns)!r}: needs {', '.join(REQUIRED_COLUMNS)}, "
            f"may have {', '.join(OPTIONAL_COLUMNS)}, each once"
        )
    return columns


def _parse_row(row: list[str], columns: list[str], where: str) -> ClipSpec:
    if len(row) != len(columns):
        raise SplitFileError(f"{where}: {len(row)} fields for {len(columns)} columns")
    values = {c: v.strip() for c, v in zip(columns, row)}

    def integer(key: str) -> int:
        text = values[key]
        if not re.fullmatch(r"[0-9]+", text):
            raise SplitFileError(f"{where}: {key} must be a non-negative integer, got {text!r}")
        return int(text)

    start, stride = integer("start"), integer("stride")
    length = integer("length") if values.get("length") else None
    try:
        return ClipSpec(clip_id=values["clip_id"], start=start, stride=stride, length=length,
                        scene=values.get("scene") or None)  # fmt: skip
    except ValueError:  # ClipSpec refuses ids that are paths
        raise SplitFileError(f"{where}: clip id {values['clip_id']!r} contains path characters") from None


def validate_clip_id(clip_id: str, split_name: str, where: str) -> None:
    """Ids are used as folder names under the runs dir: they must match the split's pattern exactly."""
    if any(ch in clip_id for ch in _PATH_CHARACTERS) or clip_id.startswith(".") or clip_id != clip_id.strip():
        raise SplitFileError(f"{where}: clip id {clip_id!r} contains path characters")
    if not re.fullmatch(ID_PATTERNS[split_name], clip_id):
        raise SplitFileError(f"{where}: clip id {clip_id!r} does not match {ID_PATTERNS[split_name]!r}")


def validate_clip_spec(spec: ClipSpec, split_name: str, where: str) -> None:
    validate_clip_id(spec.clip_id, split_name, where)
    if spec.stride < 1:
        raise SplitFileError(f"{where}: stride must be at least 1, got {spec.stride}")
    needed = source_frames_needed(spec.start, spec.stride)
    if spec.length is not None and spec.length < needed:
        raise SplitFileError(
            f"{where}: clip {spec.clip_id} has {spec.length} frames; "
            f"start {spec.start} stride {spec.stride} needs {needed}"
        )
    if spec.scene is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", spec.scene):
            raise SplitFileError(f"{where}: scene {spec.scene!r} must be letters, digits, '_' or '-'")
        if split_name == "tanks-150" and spec.clip_id != tanks_clip_id(spec.scene, spec.start):
            raise SplitFileError(
                f"{where}: clip id {spec.clip_id!r} must be {tanks_clip_id(spec.scene, spec.start)!r} (scene-start)"
            )


def tanks_clip_id(scene: str, start: int) -> str:
    return f"{scene}-{start:04d}"


def format_split_file(name: str, header: dict[str, str], comments: list[str], clips: list[ClipSpec]) -> str:
    """Text of a split file: format line, ``key: value`` header, free comment lines, then the CSV body."""
    columns = list(REQUIRED_COLUMNS)
    if any(c.scene is not None for c in clips):
        columns.insert(1, "scene")
    if any(c.length is not None for c in clips):
        columns.append("length")
    lines = [f"# {FORMAT_LINE}", f"# name: {name}", f"# clips: {len(clips)}"]
    lines += [f"# {k}: {v}" for k, v in header.items() if k not in ("name", "clips")]
    lines += ["#"] + [f"#   {c}" if c else "#" for c in comments]
    lines.append(",".join(columns))
    for c in clips:
        values = {"clip_id": c.clip_id, "scene": c.scene, "start": c.start, "stride": c.stride, "length": c.length}
        lines.append(",".join(str(values[col]) for col in columns))
    return "\n".join(lines) + "\n"
