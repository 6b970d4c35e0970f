"""Find a RealEstate10K copy under a data root and read its clips, whatever common layout it has.

Layouts detected, first match wins (``<r>`` is the data root itself, or its ``re10k``, ``realestate10k`` or
``RealEstate10K`` sub-folder, tried in that order):

``re10k-pixelsplat-chunks``
    ``<r>/test/index.json`` + ``<r>/test/*.torch`` (or ``<r>/index.json`` when the root is the stage folder).
``re10k-raw``
    official camera files ``<r>/test/<id>.txt`` or ``<r>/cameras/<id>.txt``; frames of a clip in the first
    existing folder of ``<b>/test/<id>``, ``<b>/frames/test/<id>``, ``<b>/frames/<id>``, ``<b>/dataset/test/<id>``
    for ``<b>`` = ``<r>`` then the data root. A frames folder holds images named by timestamp
    (``<timestamp_us>.png``, the downloaders' naming) or by index (``0000.jpg`` ...), png or jpg, or a
    ``data.npz`` whose keys are ``<timestamp_us>.jpg`` (the cross_attention_renderer / pixelSplat pipeline).
    Without a frames folder, one video per clip: ``<id>.mp4`` next to the camera file, or CameraCtrl's
    ``<b>/video_clips/<yt_id>/<id>.mp4`` (camera files in ``<b>/pose_files``), ``<b>/video_clips/<id>.mp4``,
    ``<b>/videos/<id>.mp4``; frame i is camera line i when the counts agree, else frames are matched by time
    (:func:`gac_bench.datasets.video.frame_indices_for_timestamps`), decoded sequentially (frame-exact).

Chunks are preferred when both exist, because they are self-contained. ``Clip.layout`` says which layout and
which frame naming were found for each clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.datasets.re10k import IMAGE_SUFFIXES, Re10kRawReader, evaluation_view, parse_camera_file
from gac_bench.datasets.re10k_chunks import Re10kChunkReader, decode_image_bytes
from gac_bench.datasets.video import frame_indices_for_timestamps, read_video_frames, video_info

ROOT_SUBDIRS = (".", "re10k", "realestate10k", "RealEstate10K")
CAMERA_DIRS = ("test", "cameras", "pose_files")
FRAME_DIRS = ("test/{id}", "frames/test/{id}", "frames/{id}", "dataset/test/{id}")
NPZ_NAME = "data.npz"
VIDEO_PATTERNS = ("video_clips/*/{id}.mp4", "video_clips/{id}.mp4", "videos/{id}.mp4")  # after <id>.mp4 beside the txt


@dataclass(frozen=True)
class Re10kLayout:
    kind: str  # "re10k-pixelsplat-chunks" or "re10k-raw"
    root: Path  # the data root the user gave
    base: Path  # the folder the layout was found in (root or one of ROOT_SUBDIRS)
    location: Path  # stage folder (chunks) or camera-file folder (raw)

    def describe(self) -> str:
        if self.kind == "re10k-pixelsplat-chunks":
            return f"pixelSplat chunks ({self.location / 'index.json'})"
        return f"raw camera txt files ({self.location}/<id>.txt) + extracted frames"


def _has_txt(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix == ".txt" for p in folder.iterdir())


def detect_re10k_layout(root: Path) -> Re10kLayout | None:
    """The first layout found under ``root`` (see the module docstring), or None."""
    root = Path(root)
    bases = [root / s if s != "." else root for s in ROOT_SUBDIRS]
    for base in (b for b in bases if b.is_dir()):
        for stage in (base / "test", base):
            if (stage / "index.json").is_file():
                return Re10kLayout("re10k-pixelsplat-chunks", root, base, stage)
    for base in (b for b in bases if b.is_dir()):
        for cams in CAMERA_DIRS:
            if _has_txt(base / cams):
                return Re10kLayout("re10k-raw", root, base, base / cams)
    return None


def _prefixed(clip_id: str, exc: Exception) -> ClipDataError:
    msg = str(exc)
    return ClipDataError(msg if f"clip {clip_id}" in msg else f"clip {clip_id}: {msg}")


@dataclass
class Re10kDataRoot:
    """Reads clips of a detected layout at ``width`` x ``height``."""

    layout: Re10kLayout
    width: int
    height: int
    _chunks: Re10kChunkReader | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.layout.kind == "re10k-pixelsplat-chunks":
            self._chunks = Re10kChunkReader(self.layout.location, self.width, self.height)

    def clip_ids(self) -> list[str]:
        """Every clip of this copy: the chunk index's keys, or the camera files' stems."""
        if self._chunks is not None:
            return sorted(self._chunks.index())
        return sorted(p.stem for p in self.layout.location.glob("*.txt"))

    def camera_file(self, clip_id: str) -> Path:
        return self.layout.location / f"{clip_id}.txt"

    def frame_dir_candidates(self, clip_id: str) -> list[Path]:
        bases = [self.layout.base] + ([self.layout.root] if self.layout.root != self.layout.base else [])
        return [b / pattern.format(id=clip_id) for b in bases for pattern in FRAME_DIRS]

    def frames_dir(self, clip_id: str) -> Path | None:
        return next((d for d in self.frame_dir_candidates(clip_id) if d.is_dir()), None)

    def video(self, clip_id: str) -> Path | None:
        """``<id>.mp4`` next to the camera file, else the first of :data:`VIDEO_PATTERNS` under base, then root."""
        beside = self.layout.location / f"{clip_id}.mp4"
        if beside.is_file():
            return beside
        bases = [self.layout.base] + ([self.layout.root] if self.layout.root != self.layout.base else [])
        for base in bases:
            for pattern in VIDEO_PATTERNS:
                rel = pattern.format(id=clip_id)
                hits = sorted(base.glob(rel)) if "*" in rel else [base / rel]
                hit = next((h for h in hits if h.is_file()), None)
                if hit is not None:
                    return hit
        return None

    def has_clip(self, clip_id: str) -> bool:
        """Cheap presence check (index entry, or camera file and frames folder or video); contents are not read."""
        if self._chunks is not None:
            return self._chunks.has_clip(clip_id)
        return self.camera_file(clip_id).is_file() and (
            self.frames_dir(clip_id) is not None or self.video(clip_id) is not None
        )

    def load_clip(self, clip_id: str) -> Clip:
        try:
            if self._chunks is not None:
                return self._chunks.load_clip(clip_id)
            return self._load_raw(clip_id)
        except ClipDataError as exc:
            raise _prefixed(clip_id, exc) from None

    def _load_raw(self, clip_id: str) -> Clip:
        cam_file = self.camera_file(clip_id)
        if not cam_file.is_file():
            raise ClipDataError(
                f"clip {clip_id}: camera file {cam_file} not found (raw layout under {self.layout.root})"
            )
        frames_dir = self.frames_dir(clip_id)
        if frames_dir is None and self.video(clip_id) is not None:
            return self._load_video(clip_id, cam_file, self.video(clip_id))
        if frames_dir is None:
            tried = ", ".join(str(d) for d in self.frame_dir_candidates(clip_id))
            raise ClipDataError(f"clip {clip_id}: no frames folder or <id>.mp4 for {cam_file}; looked in {tried}")
        has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in frames_dir.iterdir())
        if not has_images and (frames_dir / NPZ_NAME).is_file():
            return self._load_npz(clip_id, cam_file, frames_dir / NPZ_NAME)
        reader = Re10kRawReader(cam_file.parent, frames_dir.parent, width=self.width, height=self.height)
        clip = reader.load_clip(clip_id)
        suffix = clip.frame_paths[0].suffix.lower().lstrip(".") if clip.frame_paths else "?"
        naming = "timestamp" if "timestamp" in clip.layout else "index"
        clip.layout = f"re10k-raw (frames named by {naming}, {suffix}, in {frames_dir})"
        return clip

    def _load_video(self, clip_id: str, cam_file: Path, video: Path) -> Clip:
        cams = parse_camera_file(cam_file, unique_timestamps=True)
        count, fps = video_info(video, clip_id)
        # decoded once (evaluation_view reads frame 0 at once anyway); the container's count can be approximate,
        # so lines are mapped with the decoded count
        frames = read_video_frames(video, clip_id, stop=max(count, len(cams.timestamps_us)))
        idx = frame_indices_for_timestamps(cams.timestamps_us, len(frames), fps, video, clip_id)
        dst_wh = (self.width, self.height)
        K, frame = evaluation_view(cams, lambda i: frames[idx[i]], lambda i: f"frame for line {i} of {video}",
                                   clip_id, dst_wh)  # fmt: skip
        return Clip(clip_id=clip_id, K=K, c2w=cams.c2w, height=self.height, width=self.width, source=str(cam_file),
                    layout=f"re10k-raw (one video per clip: {video})", _frame_loader=frame,
                    timestamps_us=cams.timestamps_us)  # fmt: skip

    def _load_npz(self, clip_id: str, cam_file: Path, npz_path: Path) -> Clip:
        cams = parse_camera_file(cam_file, unique_timestamps=True)
        keys = [f"{int(t)}.jpg" for t in cams.timestamps_us]
        try:
            with np.load(npz_path, allow_pickle=False) as z:
                present = set(z.files)
        except (OSError, ValueError) as exc:
            raise ClipDataError(f"clip {clip_id}: cannot read {npz_path}: {exc}") from None
        missing = [k for k in keys if k not in present]
        if missing:
            raise ClipDataError(
                f"clip {clip_id}: {npz_path} lacks {len(missing)} frame(s) of {cam_file}, e.g. {missing[0]}"
            )

        def raw_frame(i: int) -> np.ndarray:
            try:
                with np.load(npz_path, allow_pickle=False) as z:
                    arr = z[keys[i]]
            except (OSError, ValueError) as exc:
                raise ClipDataError(f"clip {clip_id}: cannot read {keys[i]} from {npz_path}: {exc}") from None
            if arr.dtype == np.uint8 and arr.ndim == 1:  # encoded bytes
                return decode_image_bytes(arr.tobytes(), clip_id, f"{keys[i]} in {npz_path}")
            if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                raise ClipDataError(
                    f"clip {clip_id}: {keys[i]} in {npz_path} is {arr.dtype} {arr.shape}, not HxWx3 uint8"
                )
            return arr

        dst_wh = (self.width, self.height)
        K, frame = evaluation_view(cams, raw_frame, lambda i: f"{keys[i]} in {npz_path}", clip_id, dst_wh)

        return Clip(
            clip_id=clip_id,
            K=K,
            c2w=cams.c2w,
            height=self.height,
            width=self.width,
            source=str(cam_file),
            layout=f"re10k-raw (frames in {npz_path}, keyed by timestamp)",
            _frame_loader=frame,
            timestamps_us=cams.timestamps_us,
        )
