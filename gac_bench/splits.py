"""Splits: a fixed list of clip segments plus the reader that loads them.

A split is a name, an evaluation resolution and a list of :class:`ClipSpec` (clip id, start frame, stride).
``get_split(name, data_root)`` returns a :class:`Split` whose ``load_clip`` yields :class:`Clip` objects.
The embedded ``synthroom`` split is rendered by the package itself (and cached), so it needs no data root.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.trajectories import source_frames_needed


@dataclass(frozen=True)
class ClipSpec:
    """One evaluated segment: frames ``start + i * stride`` of clip ``clip_id``."""

    clip_id: str
    start: int = 0
    stride: int = 1
    length: int | None = None  # source frames in the clip, where the split file records it
    scene: str | None = None

    def __post_init__(self):
        check_clip_id(self.clip_id)


def check_clip_id(clip_id: str) -> str:
    """A clip id names a folder under the runs dir: a plain name, never a path (``../x``, ``/abs``, ``a/b``)."""
    bad = (
        not isinstance(clip_id, str) or not clip_id or clip_id in (".", "..") or clip_id.startswith(".")
        or any(c in clip_id for c in "/\\\0") or Path(clip_id).is_absolute()
    )  # fmt: skip
    if bad:
        raise ValueError(f"clip id {clip_id!r} is not a plain name (no path separators, no leading dot): it names a "
                         "folder under the runs dir")  # fmt: skip
    return clip_id


@dataclass
class Split:
    name: str
    width: int
    height: int
    clips: list[ClipSpec]
    description: str
    loader: Callable[[ClipSpec], Clip] = field(repr=False)
    data_location: str = ""
    default_estimator: str = "vggt"  # the paper's pose estimator; synthroom uses the weight-free colmap

    def load_clip(self, spec: ClipSpec) -> Clip:
        clip = self.loader(spec)
        needed = source_frames_needed(spec.start, spec.stride)
        if clip.num_frames < needed:
            raise ClipDataError(
                f"clip {spec.clip_id}: {clip.num_frames} frames, but start {spec.start} with stride {spec.stride} "
                f"needs {needed} ({clip.source})"
            )
        return clip

    def select(self, limit: int | None = None, shard: tuple[int, int] | None = None) -> list[ClipSpec]:
        """The first ``limit`` clips in split order, then shard k of n of those, round-robin (1-based): N shards of
        ``--limit L`` cover exactly the L clips one process would."""
        clips = list(self.clips)
        if limit is not None:
            clips = clips[:limit]
        if shard is not None:
            k, n = shard
            clips = clips[k - 1 :: n]
        return clips


SplitFactory = Callable[[Path | None], Split]
_SPLITS: dict[str, SplitFactory] = {}


def register_split(name: str):
    def wrap(factory: SplitFactory) -> SplitFactory:
        _SPLITS[name] = factory
        return factory

    return wrap


def known_splits() -> list[str]:
    return sorted(_SPLITS)


def get_split(name: str, data_root: Path | None = None) -> Split:
    if name not in _SPLITS:
        close = difflib.get_close_matches(name, known_splits(), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown split {name!r}.{hint} Known splits: {', '.join(known_splits())}")
    return _SPLITS[name](data_root)


def _room_set_split(name: str, data_root: Path | None = None) -> Split:
    """A named synthroom room set as a split (rendered on first use and cached)."""
    from gac_bench.datasets import synthroom
    from gac_bench.datasets.re10k import Re10kRawReader

    room_set = synthroom.ROOM_SETS[name]
    root_holder: dict[str, Path] = {}

    def load(spec: ClipSpec) -> Clip:
        # render on first use only, so listing the split costs nothing
        if "root" not in root_holder:
            root_holder["root"] = synthroom.ensure_room_set(name, data_root)
        root = root_holder["root"]
        reader = Re10kRawReader(
            cameras_dir=root / "cameras",
            frames_dir=root / "frames",
            depth_dir=root / "depth",
            width=synthroom.WIDTH,
            height=synthroom.HEIGHT,
        )
        return reader.load_clip(spec.clip_id)

    cfg = room_set.config
    return Split(
        name=name,
        width=synthroom.WIDTH,
        height=synthroom.HEIGHT,
        clips=[ClipSpec(cid, start=0, stride=synthroom.STRIDE, length=synthroom.NUM_FRAMES) for cid in cfg.clip_ids],
        description=f"procedural indoor scenes rendered by gac-bench (exact depth), seed {room_set.seed}: "
        f"{room_set.purpose}",
        loader=load,
        data_location=str(synthroom.cache_dir(data_root, room_set.seed, cfg)),
        default_estimator="colmap",
    )


@register_split("synthroom")
def synthroom_split(data_root: Path | None = None) -> Split:
    return _room_set_split("synthroom", data_root)


@register_split("synthroom-val")
def synthroom_val_split(data_root: Path | None = None) -> Split:
    return _room_set_split("synthroom-val", data_root)


@register_split("synthroom-train")
def synthroom_train_split(data_root: Path | None = None) -> Split:
    return _room_set_split("synthroom-train", data_root)


# The real-data splits register themselves; imported last so they can use the names above.
from gac_bench import real_splits  # noqa: E402,F401
