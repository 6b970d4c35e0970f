"""Small real-format dataset fixtures (RealEstate10K raw / npz / pixelSplat chunks, Tanks-and-Temples + COLMAP).

Frames are tiny (64x36, 16:9 like the real data): a window sliding over a smooth random image (fast, for the
reader tests) or a ``synthroom`` walkthrough (the end-to-end test). They are encoded once as JPEG; every layout stores the same
decoded pixels (raw jpg files and chunks keep the JPEG bytes, png and npz keep the decoded array), so the
same clip read through two layouts must give identical frames and hence identical metrics.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.colmap_model import ColmapCamera, ColmapImage, rotation_to_quaternion, write_model_text
from gac_bench.datasets.re10k import write_camera_file
from gac_bench.datasets.re10k_chunks import make_example, write_chunk

WIDTH, HEIGHT = 64, 36
FRAME_US = 33_367


@dataclass(frozen=True)
class FixtureClip:
    clip_id: str
    timestamps_us: np.ndarray
    K_norm: np.ndarray  # (N, 3, 3)
    w2c: np.ndarray  # (N, 4, 4)
    jpeg: list[bytes]

    @property
    def num_frames(self) -> int:
        return len(self.jpeg)

    def decoded(self, i: int) -> np.ndarray:
        with Image.open(io.BytesIO(self.jpeg[i])) as im:
            return np.asarray(im.convert("RGB"))


def _panorama(seed: int, width: int, height: int) -> np.ndarray:
    """A smooth random colour image to slide a camera window over."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    big = Image.fromarray(coarse).resize((width + 16, height + 16), Image.BICUBIC)
    return np.asarray(big)[8 : 8 + height, 8 : 8 + width]


def make_frames(num_frames: int, seed: int) -> list[bytes]:
    pano = _panorama(seed, WIDTH + num_frames, HEIGHT + 8)
    out = []
    for i in range(num_frames):
        crop = pano[(i // 7) % 8 : (i // 7) % 8 + HEIGHT, i : i + WIDTH]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def make_clip(clip_id: str, num_frames: int, seed: int = 0) -> FixtureClip:
    """A camera sliding right and yawing slowly, with its frames."""
    c2w = np.stack(
        [
            cameras.to_homogeneous(
                np.concatenate([cameras.rotation_about_axis([0, 1, 0], 0.002 * i), [[0.01 * i], [0.0], [0.0]]], axis=1)
            )
            for i in range(num_frames)
        ]
    )
    K_norm = np.broadcast_to(cameras.intrinsics_matrix(0.5, 0.5 * WIDTH / HEIGHT, 0.5, 0.5), (num_frames, 3, 3)).copy()
    timestamps = 1_000_000 + FRAME_US * np.arange(num_frames, dtype=np.int64)
    return FixtureClip(clip_id, timestamps, K_norm, cameras.c2w_to_w2c(c2w), make_frames(num_frames, seed))


def make_synthroom_clip(clip_id: str, num_frames: int, seed: int = 0) -> FixtureClip:
    """A walkthrough of a procedural ``synthroom`` scene, rendered at 64x36 by the package's own ray caster."""
    from gac_bench.datasets.synthroom import make_camera_path, make_scene, render_view

    scene = make_scene(seed)
    c2w, K = make_camera_path(scene, num_frames, seed, width=WIDTH, height=HEIGHT)
    jpeg = []
    for pose in c2w:
        rgb, _depth = render_view(scene, K, pose, HEIGHT, WIDTH, supersample=1)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
        jpeg.append(buf.getvalue())
    K_norm = np.broadcast_to(cameras.K_pixels_to_norm(K, WIDTH, HEIGHT), (num_frames, 3, 3)).copy()
    timestamps = 1_000_000 + FRAME_US * np.arange(num_frames, dtype=np.int64)
    return FixtureClip(clip_id, timestamps, K_norm, cameras.c2w_to_w2c(c2w), jpeg)


def url(clip: FixtureClip) -> str:
    return f"https://www.youtube.com/watch?v=fixture{clip.clip_id[:4]}"


def write_raw(root: Path, clip: FixtureClip, naming: str = "timestamp", ext: str = "jpg",
              cameras_dir: str = "test", frames_dir: str = "test") -> Path:
    """Raw layout: ``<root>/<cameras_dir>/<id>.txt`` and ``<root>/<frames_dir>/<id>/<frames>``."""
    (root / cameras_dir).mkdir(parents=True, exist_ok=True)
    write_camera_file(root / cameras_dir / f"{clip.clip_id}.txt", url(clip), clip.timestamps_us, clip.K_norm, clip.w2c)
    folder = root / frames_dir / clip.clip_id
    folder.mkdir(parents=True, exist_ok=True)
    for i, ts in enumerate(clip.timestamps_us):
        stem = str(int(ts)) if naming == "timestamp" else f"{i:04d}"
        if ext == "jpg":
            (folder / f"{stem}.jpg").write_bytes(clip.jpeg[i])
        else:
            Image.fromarray(clip.decoded(i)).save(folder / f"{stem}.png")
    return folder


def write_npz(root: Path, clip: FixtureClip) -> Path:
    """Layout B: ``<root>/test/<id>.txt`` + ``<root>/test/<id>/data.npz`` with ``<timestamp>.jpg`` keys."""
    (root / "test" / clip.clip_id).mkdir(parents=True, exist_ok=True)
    write_camera_file(root / "test" / f"{clip.clip_id}.txt", url(clip), clip.timestamps_us, clip.K_norm, clip.w2c)
    arrays = {f"{int(ts)}.jpg": clip.decoded(i) for i, ts in enumerate(clip.timestamps_us)}
    path = root / "test" / clip.clip_id / "data.npz"
    np.savez(path, **arrays)
    return path


def write_chunks(root: Path, clips: list[FixtureClip], per_chunk: int = 1) -> Path:
    """pixelSplat layout: ``<root>/test/NNNNNN.torch`` + ``index.json``."""
    stage = root / "test"
    stage.mkdir(parents=True, exist_ok=True)
    index = {}
    for k in range(0, len(clips), per_chunk):
        name = f"{k // per_chunk:06d}.torch"
        group = clips[k : k + per_chunk]
        examples = [make_example(c.clip_id, url(c), c.timestamps_us, c.K_norm, c.w2c, c.jpeg) for c in group]
        write_chunk(stage / name, examples)
        index.update({c.clip_id: name for c in group})
    (stage / "index.json").write_text(json.dumps(index))
    return stage


def write_tanks_scene(root: Path, scene: str, num_images: int, seed: int = 0, model: str = "text",
                      drop: tuple[str, ...] = (), camera_scale: int = 2) -> Path:
    """``<root>/<scene>/images/000001.jpg ...`` + ``sparse/0`` (COLMAP text, or binary written by pycolmap).

    The COLMAP camera is ``camera_scale`` times the image size (as in the half-size 3DGS copy). Image ids are
    deliberately not in name order, and images named in ``drop`` are left out of the model.
    """
    clip = make_clip(f"{scene}", num_images, seed)
    scene_dir = root / scene
    (scene_dir / "images").mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(num_images)]
    for name, data in zip(names, clip.jpeg):
        (scene_dir / "images" / name).write_bytes(data)
    w, h = WIDTH * camera_scale, HEIGHT * camera_scale
    cam = ColmapCamera(1, "PINHOLE", w, h, (0.5 * w, 0.5 * w, 0.5 * w, 0.5 * h))
    images = [
        ColmapImage(1000 - i, name, rotation_to_quaternion(clip.w2c[i][:3, :3]), tuple(clip.w2c[i][:3, 3]), 1)
        for i, name in enumerate(names)
        if name not in drop
    ]
    text_dir = scene_dir / "sparse" / "0" if model == "text" else scene_dir / "sparse_text"
    write_model_text(text_dir, [cam], images)
    if model == "binary":
        import pycolmap

        (scene_dir / "sparse" / "0").mkdir(parents=True, exist_ok=True)
        pycolmap.Reconstruction(str(text_dir)).write_binary(str(scene_dir / "sparse" / "0"))
    return scene_dir


# ---------------------------------------------------------------------------------------------- self-checks


def test_fixture_frames_are_deterministic_and_move():
    a, b = make_clip("x", 5, seed=3), make_clip("x", 5, seed=3)
    assert a.jpeg == b.jpeg
    assert not np.array_equal(a.decoded(0), a.decoded(4))
    assert a.decoded(0).shape == (HEIGHT, WIDTH, 3)
    assert cameras.is_rigid(a.w2c)
