"""RealEstate10K in its raw form: one camera txt per clip plus the frames a user extracted.

Camera file (official release, one per clip)::

    https://www.youtube.com/watch?v=<video id>
    <timestamp_us> fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3
    ...

Intrinsics are normalised (fx, cx by the width; fy, cy by the height); the 3x4 is world-to-camera in OpenCV
axes. Frames live in one folder per clip, named by timestamp (``<timestamp_us>.png``, the layout of the common
downloaders) or by index (``0000.png`` ...); png or jpg. The timestamp is the join key where it is available.
An optional depth folder mirrors the frames folder with float32 ``.npy`` z-depth maps (loaded without pickle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.clip import Clip, ClipDataError

NUMBERS_PER_LINE = 19
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Re10kCameras:
    url: str
    timestamps_us: np.ndarray  # (N,) int64
    K_norm: np.ndarray  # (N, 3, 3)
    w2c: np.ndarray  # (N, 4, 4) OpenCV

    @property
    def c2w(self) -> np.ndarray:
        return cameras.w2c_to_c2w(self.w2c)


def parse_camera_line(line: str, where: str) -> tuple[int, np.ndarray, np.ndarray]:
    """One 19-number line -> (timestamp_us, K_norm (3,3), w2c (4,4)). ``where`` names file:line in errors."""
    parts = line.split()
    if len(parts) != NUMBERS_PER_LINE:
        raise ClipDataError(f"{where}: expected {NUMBERS_PER_LINE} numbers, found {len(parts)}: {line.strip()[:80]!r}")
    try:
        timestamp = int(parts[0])
        values = np.array([float(p) for p in parts[1:]])
    except ValueError:
        raise ClipDataError(f"{where}: not a number in {line.strip()[:80]!r}") from None
    if not np.all(np.isfinite(values)):
        raise ClipDataError(f"{where}: non-finite value in {line.strip()[:80]!r}")
    fx, fy, cx, cy = values[:4]
    w2c = cameras.to_homogeneous(values[6:].reshape(3, 4))
    if not cameras.is_rigid(w2c, atol=1e-3):
        raise ClipDataError(f"{where}: the 3x4 pose is not a rotation and translation")
    return timestamp, cameras.intrinsics_matrix(fx, fy, cx, cy), w2c


def parse_camera_file(path: Path, unique_timestamps: bool = False) -> Re10kCameras:
    """Read an official RealEstate10K camera txt; malformed lines raise ClipDataError naming file and line.
    ``unique_timestamps``: a dataset's file, whose frames are matched by timestamp (a repeated one would score a
    frame against another frame's image); pose files of methods may repeat poses."""
    path = Path(path)
    if not path.is_file():
        raise ClipDataError(f"camera file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ClipDataError(f"{path}: not a text camera file (not UTF-8 at byte {exc.start})") from None
    if not lines:
        raise ClipDataError(f"{path}: empty camera file")
    # The official files start with the video URL; a file without it starts with a camera line, which must not be
    # taken for the URL (every frame would be read one pose off).
    first_is_camera = len(lines[0].split()) == NUMBERS_PER_LINE and _numeric(lines[0])
    url = "" if first_is_camera else lines[0].strip()
    stamps, Ks, w2cs, seen = [], [], [], {}
    for number, line in enumerate(lines, start=1):
        if (number == 1 and not first_is_camera) or not line.strip():
            continue
        ts, K_norm, w2c = parse_camera_line(line, f"{path}:{number}")
        if unique_timestamps and ts in seen:
            raise ClipDataError(f"{path}:{number}: timestamp {ts} repeats line {seen[ts]} (frames are matched by "
                                "timestamp, so each must be unique)")  # fmt: skip
        seen[ts] = number
        stamps.append(ts)
        Ks.append(K_norm)
        w2cs.append(w2c)
    if not stamps:
        raise ClipDataError(f"{path}: no camera lines after the URL line")
    return Re10kCameras(url, np.array(stamps, dtype=np.int64), np.stack(Ks), np.stack(w2cs))


def _numeric(line: str) -> bool:
    try:
        [float(p) for p in line.split()]
    except ValueError:
        return False
    return True


def format_camera_line(timestamp_us: int, K_norm: np.ndarray, w2c: np.ndarray) -> str:
    """Inverse of :func:`parse_camera_line`; 9 significant digits keep rotations orthonormal to 1e-8."""
    values = [K_norm[0, 0], K_norm[1, 1], K_norm[0, 2], K_norm[1, 2], 0.0, 0.0, *np.asarray(w2c)[:3, :4].reshape(-1)]
    return " ".join([str(int(timestamp_us))] + [f"{v:.9g}" for v in values])


def write_camera_file(path: Path, url: str, timestamps_us: np.ndarray, K_norm: np.ndarray, w2c: np.ndarray) -> None:
    lines = [url] + [format_camera_line(t, k, p) for t, k, p in zip(timestamps_us, K_norm, w2c)]
    Path(path).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- frames


def _stem_number(path: Path) -> int | None:
    m = re.search(r"(\d+)$", path.stem)
    return int(m.group(1)) if m else None


def match_frames(frames_dir: Path, timestamps_us: np.ndarray, clip_id: str) -> tuple[list[Path], str]:
    """Frame path per camera line, and the detected naming ("timestamp" or "index")."""
    if not frames_dir.is_dir():
        raise ClipDataError(f"clip {clip_id}: frames folder not found: {frames_dir}")
    files = [p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    by_number: dict[int, Path] = {}
    for p in files:
        n = _stem_number(p)
        if n is not None:
            by_number.setdefault(n, p)
    if by_number and all(int(t) in by_number for t in timestamps_us):
        return [by_number[int(t)] for t in timestamps_us], "timestamp"
    n = len(timestamps_us)
    for first in (0, 1):
        if all(i in by_number for i in range(first, first + n)) and not any(int(t) in by_number for t in timestamps_us):
            return [by_number[i] for i in range(first, first + n)], "index"
    missing = [int(t) for t in timestamps_us if int(t) not in by_number]
    raise ClipDataError(
        f"clip {clip_id}: {frames_dir} has {len(files)} image(s) for {n} camera lines; frames are matched by "
        f"timestamp (<timestamp_us>.png) or by index (0000.png); missing e.g. timestamp {missing[0]}"
    )


EIGHT_BIT_MODES = ("RGB", "RGBA", "L", "P", "LA")


def load_image(path: Path, clip_id: str) -> np.ndarray:
    """uint8 HxWx3 RGB. Images of more than 8 bits per channel (16-bit PNGs, float TIFFs) are refused, not
    silently cut to 8 bits: their conversion is a choice the benchmark will not make for a dataset."""
    try:
        with Image.open(path) as im:
            if im.mode not in EIGHT_BIT_MODES:
                raise ClipDataError(f"clip {clip_id}: image {path} has mode {im.mode} (not 8-bit RGB or grey); "
                                    "convert the frames to 8-bit RGB")  # fmt: skip
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ClipDataError):
            raise
        raise ClipDataError(f"clip {clip_id}: cannot decode image {path}: {exc}") from None


def resize_crop_image(img: np.ndarray, dst_wh: tuple[int, int], resample=Image.BICUBIC) -> np.ndarray:
    """The declared evaluation transform: resize to cover ``dst_wh`` (bicubic), then centre-crop."""
    h, w = img.shape[:2]
    if (w, h) == tuple(dst_wh):
        return img
    (rw, rh), (left, top) = cameras.resize_crop_plan((w, h), dst_wh)
    mode = "F" if img.dtype == np.float32 else None
    pil = Image.fromarray(img, mode=mode) if mode else Image.fromarray(img)
    out = np.asarray(pil.resize((rw, rh), resample=resample))
    return np.ascontiguousarray(out[top : top + dst_wh[1], left : left + dst_wh[0]])


def load_depth(path: Path, clip_id: str) -> np.ndarray:
    try:
        depth = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ClipDataError(f"clip {clip_id}: cannot read depth {path}: {exc}") from None
    if depth.ndim != 2 or not np.all(np.isfinite(depth)):
        raise ClipDataError(f"clip {clip_id}: depth {path} must be a finite 2-D array, got shape {depth.shape}")
    return depth.astype(np.float32)


def evaluation_view(cams: Re10kCameras, raw_frame, where, clip_id: str, dst_wh: tuple[int, int]):
    """K at the evaluation size and the frame loader of a clip, shared by every RealEstate10K layout.

    ``raw_frame(i)`` decodes frame i at its stored size and ``where(i)`` names it in errors. RealEstate10K intrinsics
    are constant along a clip, so frame 0's size defines K; every frame must have that size and is then resized to
    cover ``dst_wh`` and centre-cropped. Returns (K (3, 3) pixels, loader i -> uint8 (H, W, 3)).
    """
    first = raw_frame(0)
    src_wh = (first.shape[1], first.shape[0])
    K = cameras.K_after_resize_crop(cameras.K_norm_to_pixels(cams.K_norm[0], *src_wh), src_wh, dst_wh)

    def frame(i: int) -> np.ndarray:
        img = raw_frame(i)
        if (img.shape[1], img.shape[0]) != src_wh:
            raise ClipDataError(
                f"clip {clip_id}: {where(i)} is {img.shape[1]}x{img.shape[0]}, frame 0 is {src_wh[0]}x{src_wh[1]}"
            )
        return resize_crop_image(img, dst_wh)

    return K, frame


@dataclass(frozen=True)
class Re10kRawReader:
    """Clips in the raw layout: ``cameras_dir/<id>.txt``, ``frames_dir/<id>/<frames>``, ``depth_dir/<id>/<stem>.npy``."""

    cameras_dir: Path
    frames_dir: Path
    width: int
    height: int
    depth_dir: Path | None = None

    def load_clip(self, clip_id: str) -> Clip:
        cams = parse_camera_file(Path(self.cameras_dir) / f"{clip_id}.txt", unique_timestamps=True)
        paths, naming = match_frames(Path(self.frames_dir) / clip_id, cams.timestamps_us, clip_id)
        dst_wh = (self.width, self.height)
        K, frame = evaluation_view(cams, lambda i: load_image(paths[i], clip_id), lambda i: paths[i], clip_id, dst_wh)

        depth = None
        if self.depth_dir is not None and (Path(self.depth_dir) / clip_id).is_dir():
            depth_root = Path(self.depth_dir) / clip_id

            def depth(i: int) -> np.ndarray:
                path = depth_root / f"{paths[i].stem}.npy"  # named like the frame, or by its timestamp
                if not path.is_file() and (depth_root / f"{int(cams.timestamps_us[i])}.npy").is_file():
                    path = depth_root / f"{int(cams.timestamps_us[i])}.npy"
                d = load_depth(path, clip_id)
                # nearest keeps depth edges sharp; never average depths across an occlusion boundary
                return resize_crop_image(d, dst_wh, resample=Image.NEAREST)

        return Clip(
            clip_id=clip_id,
            K=K,
            c2w=cams.c2w,
            height=self.height,
            width=self.width,
            source=str(Path(self.cameras_dir) / f"{clip_id}.txt"),
            layout=f"re10k-raw (frames named by {naming})",
            _frame_loader=frame,
            _depth_loader=depth,
            frame_paths=paths,
            timestamps_us=cams.timestamps_us,
        )


def with_prepared_depth(clip: Clip, depth_dir: Path | None) -> Clip:
    """``clip`` reading depth from ``depth_dir/<clip_id>/<name>.npy`` (``gac.prepare_geometry``'s layout, names from
    :meth:`Clip.frame_file_names`) when that folder exists and the clip has no depth of its own; else ``clip``."""
    import dataclasses

    folder = Path(depth_dir) / clip.clip_id if depth_dir is not None else None
    if clip.has_depth or folder is None or not folder.is_dir():
        return clip
    names, dst_wh = clip.frame_file_names(), (clip.width, clip.height)

    def depth(i: int) -> np.ndarray:
        path = folder / f"{names[i]}.npy"
        if not path.is_file() and clip.frame_paths is not None:  # depth named like the frame file instead
            path = folder / f"{Path(clip.frame_paths[i]).stem}.npy"
        d = load_depth(path, clip.clip_id)
        return resize_crop_image(d, dst_wh, resample=Image.NEAREST)  # never average across an occlusion edge

    return dataclasses.replace(clip, _depth_loader=depth)
