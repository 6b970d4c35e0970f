"""COLMAP sparse models (``cameras`` + ``images``, text or binary): only what a pose reader needs.

Conventions (COLMAP ``doc/format.rst``): an image's quaternion (Hamilton, w first) and translation map world
points into the camera, i.e. they form ``w2c``; camera axes are OpenCV's. Camera parameters are pixels of the
camera's ``width`` x ``height``. ``points3D`` and the newer ``rigs``/``frames`` files are not read (models
with and without them have the same ``cameras``/``images`` records). Where both ``.bin`` and ``.txt`` exist,
the binary files are read, as COLMAP itself does.

Only pinhole cameras are usable by the harness: SIMPLE_PINHOLE and PINHOLE, and distortion models whose
distortion coefficients are all exactly zero. Anything else must be undistorted first
(``colmap image_undistorter`` writes a PINHOLE model and undistorted images).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench import cameras

# model id -> (name, number of parameters, index of fx, fy, cx, cy in params (fy=fx for one focal), first distortion)
CAMERA_MODELS: dict[int, tuple[str, int, tuple[int, int, int, int], int]] = {
    0: ("SIMPLE_PINHOLE", 3, (0, 0, 1, 2), 3),
    1: ("PINHOLE", 4, (0, 1, 2, 3), 4),
    2: ("SIMPLE_RADIAL", 4, (0, 0, 1, 2), 3),
    3: ("RADIAL", 5, (0, 0, 1, 2), 3),
    4: ("OPENCV", 8, (0, 1, 2, 3), 4),
    5: ("OPENCV_FISHEYE", 8, (0, 1, 2, 3), 4),
    6: ("FULL_OPENCV", 12, (0, 1, 2, 3), 4),
    7: ("FOV", 5, (0, 1, 2, 3), 4),
    8: ("SIMPLE_RADIAL_FISHEYE", 4, (0, 0, 1, 2), 3),
    9: ("RADIAL_FISHEYE", 5, (0, 0, 1, 2), 3),
    10: ("THIN_PRISM_FISHEYE", 12, (0, 1, 2, 3), 4),
}
MODEL_IDS = {name: model_id for model_id, (name, *_rest) in CAMERA_MODELS.items()}
# Fisheye models project differently even with zero coefficients; only these may pass with zero distortion.
_PERSPECTIVE_WITH_DISTORTION = {"SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"}


class ColmapModelError(ValueError):
    """A COLMAP model is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class ColmapCamera:
    camera_id: int
    model: str
    width: int
    height: int
    params: tuple[float, ...]

    def K(self) -> np.ndarray:
        """Pixel intrinsics for a ``width`` x ``height`` image; refuses cameras that are not pinhole."""
        model_id = MODEL_IDS[self.model]
        _, _, (ifx, ify, icx, icy), first_dist = CAMERA_MODELS[model_id]
        distortion = self.params[first_dist:]
        pinhole = self.model in ("SIMPLE_PINHOLE", "PINHOLE")
        zero_distortion = self.model in _PERSPECTIVE_WITH_DISTORTION and not any(distortion)
        if not (pinhole or zero_distortion):
            raise ColmapModelError(
                f"camera {self.camera_id} is {self.model} with distortion {list(distortion)}; the harness needs a "
                "pinhole model: undistort the images first (colmap image_undistorter writes a PINHOLE model)"
            )
        p = self.params
        return cameras.intrinsics_matrix(p[ifx], p[ify], p[icx], p[icy])


@dataclass(frozen=True)
class ColmapImage:
    image_id: int
    name: str
    qvec_wxyz: tuple[float, float, float, float]
    tvec: tuple[float, float, float]
    camera_id: int

    @property
    def w2c(self) -> np.ndarray:
        w2c = np.eye(4)
        w2c[:3, :3] = quaternion_to_rotation(np.array(self.qvec_wxyz))
        w2c[:3, 3] = self.tvec
        return w2c

    @property
    def c2w(self) -> np.ndarray:
        return cameras.w2c_to_c2w(self.w2c)


@dataclass(frozen=True)
class ColmapModel:
    path: Path
    format: str  # "binary" or "text"
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]

    def images_by_name(self) -> dict[str, ColmapImage]:
        return {im.name: im for im in self.images.values()}


def quaternion_to_rotation(q_wxyz: np.ndarray) -> np.ndarray:
    """Unit Hamilton quaternion (w, x, y, z) to a 3x3 rotation; the quaternion is normalised first."""
    norm = np.linalg.norm(q_wxyz)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ColmapModelError(f"invalid quaternion {list(q_wxyz)}")
    w, x, y, z = np.asarray(q_wxyz, dtype=np.float64) / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def find_model_files(model_dir: Path) -> str | None:
    """``"binary"`` or ``"text"`` when ``model_dir`` holds cameras and images of that form, else None."""
    model_dir = Path(model_dir)
    if (model_dir / "cameras.bin").is_file() and (model_dir / "images.bin").is_file():
        return "binary"
    if (model_dir / "cameras.txt").is_file() and (model_dir / "images.txt").is_file():
        return "text"
    return None


def read_model(model_dir: Path) -> ColmapModel:
    """Cameras and images of the model in ``model_dir`` (binary preferred over text)."""
    model_dir = Path(model_dir)
    form = find_model_files(model_dir)
    if form == "binary":
        cams = read_cameras_binary(model_dir / "cameras.bin")
        images = read_images_binary(model_dir / "images.bin")
    elif form == "text":
        cams = read_cameras_text(model_dir / "cameras.txt")
        images = read_images_text(model_dir / "images.txt")
    else:
        raise ColmapModelError(
            f"no COLMAP model in {model_dir}: needs cameras.bin + images.bin or cameras.txt + images.txt"
        )
    for im in images.values():
        if im.camera_id not in cams:
            raise ColmapModelError(f"{model_dir}: image {im.name!r} uses camera {im.camera_id}, which the model lacks")
    return ColmapModel(path=model_dir, format=form, cameras=cams, images=images)


# ---------------------------------------------------------------------------------------------- text


def _data_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ColmapModelError(f"cannot read {path}: {exc}") from None
    return list(enumerate(text.splitlines(), start=1))


def read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    out: dict[int, ColmapCamera] = {}
    for number, line in _data_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        try:
            camera_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
            params = tuple(float(p) for p in parts[4:])
        except (IndexError, ValueError):
            raise ColmapModelError(f"{path}:{number}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'") from None
        out[camera_id] = _make_camera(camera_id, model, width, height, params, f"{path}:{number}")
    return out


def read_images_text(path: Path) -> dict[int, ColmapImage]:
    """Two lines per image: the pose line, then the (possibly empty) 2-D points line, which is skipped."""
    out: dict[int, ColmapImage] = {}
    lines = _data_lines(path)
    i = 0
    while i < len(lines):
        number, line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        parts = line.split()
        try:
            image_id = int(parts[0])
            q = tuple(float(v) for v in parts[1:5])
            t = tuple(float(v) for v in parts[5:8])
            camera_id = int(parts[8])
            name = " ".join(parts[9:])
            if len(q) != 4 or len(t) != 3 or not name:
                raise ValueError
        except (IndexError, ValueError):
            expected = "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME"
            raise ColmapModelError(f"{path}:{number}: expected '{expected}'") from None
        out[image_id] = ColmapImage(image_id, name, q, t, camera_id)
        i += 2  # the points line belongs to this image even when it is empty
    return out


# ---------------------------------------------------------------------------------------------- binary


class _Reader:
    def __init__(self, path: Path):
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise ColmapModelError(f"cannot read {path}: {exc}") from None
        self.path = path
        self.pos = 0

    def read(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ColmapModelError(f"{self.path}: truncated at byte {self.pos} (file has {len(self.data)} bytes)")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise ColmapModelError(f"{self.path}: truncated at byte {self.pos} (file has {len(self.data)} bytes)")
        self.pos += size

    def read_cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ColmapModelError(f"{self.path}: unterminated image name at byte {self.pos}")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ColmapModelError(f"{self.path}: image name at byte {self.pos} is not UTF-8") from None


def read_cameras_binary(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(path)
    (count,) = r.read("Q")
    out: dict[int, ColmapCamera] = {}
    for _ in range(count):
        camera_id, model_id, width, height = r.read("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise ColmapModelError(f"{path}: camera {camera_id} has unknown model id {model_id}")
        name, num_params, _, _ = CAMERA_MODELS[model_id]
        params = r.read("d" * num_params)
        out[camera_id] = _make_camera(camera_id, name, width, height, params, str(path))
    return out


def read_images_binary(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(path)
    (count,) = r.read("Q")
    out: dict[int, ColmapImage] = {}
    for _ in range(count):
        image_id, qw, qx, qy, qz, tx, ty, tz, camera_id = r.read("idddddddi")
        name = r.read_cstring()
        (num_points,) = r.read("Q")
        r.skip(24 * num_points)  # x, y (float64) and point3D_id (int64) per 2-D point
        out[image_id] = ColmapImage(image_id, name, (qw, qx, qy, qz), (tx, ty, tz), camera_id)
    if r.pos != len(r.data):
        raise ColmapModelError(f"{path}: {len(r.data) - r.pos} unexpected trailing bytes")
    return out


def _make_camera(camera_id: int, model: str, width: int, height: int, params: tuple, where: str) -> ColmapCamera:
    if model not in MODEL_IDS:
        raise ColmapModelError(f"{where}: unknown camera model {model!r}")
    expected = CAMERA_MODELS[MODEL_IDS[model]][1]
    if len(params) != expected:
        raise ColmapModelError(f"{where}: {model} has {expected} parameters, found {len(params)}")
    if width <= 0 or height <= 0 or not all(np.isfinite(params)):
        raise ColmapModelError(f"{where}: camera {camera_id} has an invalid size or parameters")
    return ColmapCamera(camera_id, model, int(width), int(height), tuple(float(p) for p in params))


# ---------------------------------------------------------------------------------------------- writing (text)


def write_model_text(model_dir: Path, cams: list[ColmapCamera], images: list[ColmapImage]) -> None:
    """Write ``cameras.txt``, ``images.txt`` (empty points lines) and an empty ``points3D.txt``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    cam_lines = ["# Camera list with one line of data per camera:"]
    cam_lines += [f"{c.camera_id} {c.model} {c.width} {c.height} " + " ".join(repr(p) for p in c.params) for c in cams]
    img_lines = ["# Image list with two lines of data per image:"]
    for im in images:
        values = " ".join(repr(float(v)) for v in (*im.qvec_wxyz, *im.tvec))
        img_lines += [f"{im.image_id} {values} {im.camera_id} {im.name}", ""]
    (model_dir / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (model_dir / "images.txt").write_text("\n".join(img_lines) + "\n")
    (model_dir / "points3D.txt").write_text("# 3D point list\n")


def rotation_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """3x3 rotation to a unit Hamilton quaternion (w, x, y, z) with w >= 0 (Shepperd's method)."""
    R = np.asarray(R, dtype=np.float64)
    trace = np.trace(R)
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.array(q) / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return tuple(float(v) for v in q)
