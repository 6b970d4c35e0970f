"""DL3DV-10K scenes in their nerfstudio layout, as training clips (GaC) with optional prepared depth.

One scene per folder, as the DL3DV downloads unpack (``<root>/<batch>/<hash>/`` or ``<root>/<hash>/``; benchmark
scenes nest the same files under ``<hash>/nerfstudio/``)::

    transforms.json          nerfstudio: fl_x fl_y cx cy w h (pixels of w x h), frames[].file_path, transform_matrix
    images_4/frame_00001.png (960P) or images_8/ (480P) or images/: the frames, numbered after the last underscore
    DEPTH/<hash>/<frame stem>.npy   float32 z-depth (``python -m gac.prepare_geometry``; optional)

``transform_matrix`` is camera-to-world in OpenGL axes (x right, y up, z backwards); the reader returns OpenCV
``c2w`` (x right, y down, z forwards) by flipping the camera's y and z axes, as DepthSplat's converter does. The
intrinsics are in pixels of the stored ``w`` x ``h`` and are rescaled to the image folder actually read, then to the
requested size by the benchmark's resize-to-cover and centre crop. Frames are ordered by their running number.
Lens distortion (``k1 k2 p1 p2``, where present) is ignored: DL3DV's frames are treated as pinhole, as the
video-generation literature does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.datasets.re10k import load_image, resize_crop_image, with_prepared_depth

IMAGE_FOLDERS = ("images_4", "images_8", "images_2", "images")  # 960P first: the training sizes are below it
_NUMBER = re.compile(r"_(\d+)$")


@dataclass(frozen=True)
class Dl3dvTransforms:
    """A scene's ``transforms.json``: frame file paths in running-number order, OpenCV c2w, K in pixels of wh."""

    file_paths: list[str]
    c2w: np.ndarray  # (N, 4, 4) OpenCV camera-to-world
    K: np.ndarray  # (3, 3) pixels of stored_wh
    stored_wh: tuple[int, int]


def frame_number(file_path: str) -> int:
    """The running number after the last underscore of the file's stem (``frame_00012.png`` -> 12)."""
    match = _NUMBER.search(Path(file_path).stem)
    if match is None:
        raise ValueError(f"frame file {file_path!r} has no running number after its last underscore")
    return int(match.group(1))


def parse_transforms(path: Path) -> Dl3dvTransforms:
    """Read and check a nerfstudio ``transforms.json``; every problem names the file."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        intr = [float(meta[k]) for k in ("fl_x", "fl_y", "cx", "cy")]
        stored_wh = (int(meta["w"]), int(meta["h"]))
        frames = sorted(meta["frames"], key=lambda f: frame_number(f["file_path"]))
        c2w_gl = np.array([f["transform_matrix"] for f in frames], dtype=np.float64)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ClipDataError(f"{path}: not a readable nerfstudio transforms.json ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise ClipDataError(f"{path}: no frames")
    if c2w_gl.shape != (len(frames), 4, 4) or not all(cameras.is_rigid(T, atol=1e-4) for T in c2w_gl):
        raise ClipDataError(f"{path}: every transform_matrix must be a rigid 4x4 camera-to-world")
    return Dl3dvTransforms(
        file_paths=[f["file_path"] for f in frames],
        c2w=cameras.opengl_to_opencv(c2w_gl),
        K=cameras.intrinsics_matrix(*intr),
        stored_wh=stored_wh,
    )


def find_scenes(root: Path) -> dict[str, Path]:
    """Scene id (the hash folder's name) -> the folder holding its ``transforms.json``, up to three levels down."""
    scenes: dict[str, Path] = {}
    for pattern in ("*/transforms.json", "*/*/transforms.json", "*/*/*/transforms.json"):
        for meta in sorted(Path(root).glob(pattern)):
            folder = meta.parent
            scene_id = folder.parent.name if folder.name == "nerfstudio" else folder.name
            scenes.setdefault(scene_id, folder)
    return scenes


def resolve_frames(scene_dir: Path, file_paths: list[str], scene_id: str, image_folder: str | None) -> list[Path]:
    """The image files to read: ``file_path`` as written, or the same names in the first image folder present
    (DL3DV's json names ``images/...`` while a 960P download holds ``images_4/``)."""
    folders = [image_folder] if image_folder else list(IMAGE_FOLDERS)
    names = [Path(p).name for p in file_paths]
    for folder in folders:
        candidate = [scene_dir / folder / n for n in names]
        if candidate[0].is_file():
            missing = [p for p in candidate if not p.is_file()]
            if missing:
                raise ClipDataError(f"clip {scene_id}: {len(missing)} of {len(candidate)} frames missing in "
                                    f"{scene_dir / folder}, e.g. {missing[0].name}")  # fmt: skip
            return candidate
    as_written = [scene_dir / p for p in file_paths]
    if all(p.is_file() for p in as_written):
        return as_written
    raise ClipDataError(f"clip {scene_id}: no frames under {scene_dir} in {', '.join(folders)} "
                        f"(transforms.json names {file_paths[0]})")  # fmt: skip


@dataclass(frozen=True)
class Dl3dvReader:
    """DL3DV scenes under ``root`` at ``width`` x ``height``; depth from ``depth_dir/<id>/<frame stem>.npy``."""

    root: Path
    width: int
    height: int
    depth_dir: Path | None = None
    image_folder: str | None = None  # e.g. "images_8"; default: the first of IMAGE_FOLDERS present

    @cached_property
    def _scenes(self) -> dict[str, Path]:
        return find_scenes(self.root)  # walks three folder levels: once per reader, not once per clip

    def scene_ids(self) -> list[str]:
        return sorted(self._scenes)

    def _scene_dir(self, scene_id: str) -> Path:
        if scene_id not in self._scenes:
            raise ClipDataError(f"clip {scene_id}: no DL3DV scene of that id under {self.root}")
        return self._scenes[scene_id]

    def load_clip(self, scene_id: str) -> Clip:
        scene_dir = self._scene_dir(scene_id)
        meta = parse_transforms(scene_dir / "transforms.json")
        paths = resolve_frames(scene_dir, meta.file_paths, scene_id, self.image_folder)
        with Image.open(paths[0]) as im:
            image_wh = im.size
        dst_wh = (self.width, self.height)
        K = cameras.K_after_resize_crop(cameras.K_after_resize(meta.K, meta.stored_wh, image_wh), image_wh, dst_wh)

        def frame(i: int) -> np.ndarray:
            img = load_image(paths[i], scene_id)
            if (img.shape[1], img.shape[0]) != image_wh:
                raise ClipDataError(f"clip {scene_id}: {paths[i]} is {img.shape[1]}x{img.shape[0]}, the first frame "
                                    f"is {image_wh[0]}x{image_wh[1]}")  # fmt: skip
            return resize_crop_image(img, dst_wh)

        clip = Clip(clip_id=scene_id, K=K, c2w=meta.c2w, height=self.height, width=self.width,
                    source=str(scene_dir / "transforms.json"), layout=f"dl3dv-nerfstudio ({paths[0].parent.name})",
                    _frame_loader=frame, frame_paths=paths)  # fmt: skip
        return with_prepared_depth(clip, self.depth_dir)  # <frame stem>.npy, as gac.prepare_geometry names it
