"""Scoring frames produced elsewhere (``gac-bench score --frames-dir DIR``).

Frames are taken, per clip, from ``DIR/<clip_id>/`` (PNG/JPG files in natural name order) or from
``DIR/<clip_id>.mp4``. A folder holds either all N frames or the N-1 target frames (then frame 0 is the
reference). Frames at another resolution are brought to the evaluation resolution by the declared transform
(resize to cover, bicubic, centre crop) and the original size is recorded; a wrong frame count is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.api import GenerationRequest, Method
from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.re10k import IMAGE_SUFFIXES, load_image, resize_crop_image
from gac_bench.datasets.video import read_video_frames


def precomputed_method_spec() -> str:
    return f"{__name__}:PrecomputedFrames"


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def read_clip_frames(frames_dir: Path, clip_id: str) -> np.ndarray:
    folder, video = frames_dir / clip_id, frames_dir / f"{clip_id}.mp4"
    if folder.is_dir():
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise ClipDataError(f"clip {clip_id}: no PNG/JPG frames in {folder}")
        frames = [load_image(p, clip_id) for p in files]
        if len({f.shape for f in frames}) != 1:
            raise ClipDataError(f"clip {clip_id}: frames in {folder} have different sizes")
        return np.stack(frames)
    if video.is_file():
        return read_video_frames(video, clip_id)
    raise ClipDataError(f"clip {clip_id}: neither {folder}/ nor {video} exists")


@dataclass
class PrecomputedConfig:
    frames_dir: str = ""
    name: str = "precomputed"


class PrecomputedFrames(Method):
    summary = "Frames generated elsewhere, read from a folder (gac-bench score)."
    version = "imported-1"
    Config = PrecomputedConfig

    @property
    def record_name(self) -> str:
        return self.config.name

    def generate(self, request: GenerationRequest) -> np.ndarray:
        frames = read_clip_frames(Path(self.config.frames_dir), request.clip_id)
        n = request.num_frames
        if len(frames) not in (n, n - 1):
            raise ClipDataError(f"clip {request.clip_id}: {len(frames)} frames in {self.config.frames_dir}, expected {n} "
                                f"(or {n - 1} target frames without the reference)")
        h, w = frames.shape[1:3]
        self.info["source_resolution"] = [int(w), int(h)]
        if (h, w) != (request.height, request.width):
            self.info["resized"] = "resize to cover, bicubic, centre crop"
            frames = np.stack([resize_crop_image(f, (request.width, request.height)) for f in frames])
        if len(frames) == n - 1:
            self.info["frame0"] = "reference image prepended (folder held target frames only)"
            frames = np.concatenate([request.reference_image[None], frames])
        return frames
