"""Small real-format fixtures shared by the tests (no network, no weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from gac_bench import cameras
from gac_bench.datasets.re10k import Re10kRawReader, write_camera_file
from gac_bench.splits import ClipSpec, Split, _SPLITS


# torch.compile on the CPU (inductor) builds its kernels with a C++ compiler
needs_cpu_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="torch.compile on CPU needs a C++ compiler"
)


def plane_texture() -> np.ndarray:
    """A real photo (scikit-image's astronaut) used as the texture of a fronto-parallel plane."""
    return skdata.astronaut()


def render_plane_view(texture: np.ndarray, K: np.ndarray, c2w: np.ndarray, height: int, width: int,
                      plane_z: float = 4.0, texels_per_unit: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact render of the plane z = plane_z (texture centred on the origin) from a camera looking along +z.

    Only translations and small rotations are supported; returns uint8 RGB and float32 z-depth.
    """
    rays = cameras.pixel_rays_camera(K, height, width) @ c2w[:3, :3].T  # world directions
    o = c2w[:3, 3]
    t = (plane_z - o[2]) / rays[..., 2]
    pts = o + t[..., None] * rays
    th, tw = texture.shape[:2]
    map_x = (pts[..., 0] * texels_per_unit + tw / 2 - 0.5).astype(np.float32)
    map_y = (pts[..., 1] * texels_per_unit + th / 2 - 0.5).astype(np.float32)
    rgb = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    p_cam = (pts - o) @ c2w[:3, :3]
    return rgb, p_cam[..., 2].astype(np.float32)


def write_plane_clip(root: Path, clip_id: str, num_frames: int, width: int = 64, height: int = 36,
                     step: float = 0.01) -> None:
    """A RealEstate10K-form clip (camera txt + PNG frames by timestamp + depth .npy) sliding along x."""
    K_norm = np.array([[0.6, 0, 0.5], [0, 0.6 * width / height, 0.5], [0, 0, 1]])
    K = cameras.K_norm_to_pixels(K_norm, width, height)
    texture = plane_texture()
    seed = sum(map(ord, clip_id))
    c2ws, stamps = [], []
    for i in range(num_frames):
        c2w = np.eye(4)
        c2w[:3, 3] = [step * i + 0.05 * (seed % 7), 0.002 * i, 0.004 * i]
        c2w[:3, :3] = cameras.rotation_about_axis([0, 1, 0], 0.002 * i)
        c2ws.append(c2w)
        stamps.append(int(round(i * 1e6 / 30)))
        rgb, depth = render_plane_view(texture, K, c2w, height, width)
        (root / "frames" / clip_id).mkdir(parents=True, exist_ok=True)
        (root / "depth" / clip_id).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "frames" / clip_id / f"{stamps[-1]}.png"), rgb[..., ::-1])
        np.save(root / "depth" / clip_id / f"{stamps[-1]}.npy", depth)
    (root / "cameras").mkdir(parents=True, exist_ok=True)
    w2c = cameras.c2w_to_w2c(np.stack(c2ws))
    write_camera_file(root / "cameras" / f"{clip_id}.txt", f"fixture://{clip_id}", np.array(stamps),
                      np.repeat(K_norm[None], num_frames, 0), w2c)


def register_plane_split(root: Path, name: str = "plane-fixture", clip_ids=("clipa", "clipb", "clipc"),
                         num_frames: int = 64, width: int = 64, height: int = 36) -> str:
    """Write the clips (once) and register a split over them; returns the split name."""
    for cid in clip_ids:
        if not (root / "cameras" / f"{cid}.txt").exists():
            write_plane_clip(root, cid, num_frames, width, height)
    reader = Re10kRawReader(root / "cameras", root / "frames", width, height, depth_dir=root / "depth")

    def factory(data_root):
        return Split(name, width, height, [ClipSpec(c, 0, 1, num_frames) for c in clip_ids], "test fixture",
                     lambda spec: reader.load_clip(spec.clip_id), str(root))

    _SPLITS[name] = factory
    return name
