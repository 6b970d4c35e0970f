"""Tiny fixtures for CPU tests and smoke runs: a ray-cast clip in the RealEstate10K raw layout, a tiny VAE.

The clip is a camera sliding and panning in front of two textured planes (a wall and a closer panel), rendered
exactly (images and z-depth agree), written as ``cameras/<id>.txt`` (19-number lines), ``frames/<id>/<ts>.png``
and ``depth/<id>/<ts>.npy`` like the synthroom split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.re10k import write_camera_file


def _pattern(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.uniform(1.5, 5.0, size=(3, 2))
    ph = rng.uniform(0, 2 * np.pi, size=3)
    rgb = [0.5 + 0.4 * np.sin(f[c, 0] * x + ph[c]) * np.cos(f[c, 1] * y + ph[c] / 2) for c in range(3)]
    checker = ((np.floor(x * 2) + np.floor(y * 2)) % 2) * 0.15
    return np.clip(np.stack(rgb, -1) + checker[..., None], 0, 1)


def render_planes(K: np.ndarray, c2w: np.ndarray, height: int, width: int, seed: int = 0):
    """(uint8 image, float32 z-depth) of a wall z = 4 and a panel z = 2.5 (x in [-1, 0.3]) seen from ``c2w``."""
    d_cam = cameras.pixel_rays_camera(K, height, width)
    d = d_cam @ c2w[:3, :3].T
    o = c2w[:3, 3]
    best_t = np.full((height, width), np.inf)
    color = np.zeros((height, width, 3))
    for z_plane, x_range, s in ((4.0, (-np.inf, np.inf), seed), (2.5, (-1.0, 0.3), seed + 1)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (z_plane - o[2]) / d[..., 2]
        p = o + t[..., None] * d
        hit = (t > 0) & (p[..., 0] >= x_range[0]) & (p[..., 0] <= x_range[1]) & (t < best_t)
        best_t = np.where(hit, t, best_t)
        color = np.where(hit[..., None], _pattern(p[..., 0], p[..., 1], s), color)
    depth = (best_t * d_cam[..., 2]).astype(np.float32)  # ray length x cos = z in the camera frame
    return (color * 255).round().astype(np.uint8), depth


def fixture_trajectory(n: int, step: float = 0.04, yaw_deg: float = 0.5) -> np.ndarray:
    """c2w (n, 4, 4): sideways slide with a slow pan, OpenCV axes, starting at the origin."""
    c2w = np.repeat(np.eye(4)[None], n, axis=0)
    for i in range(n):
        c2w[i, :3, :3] = cameras.rotation_about_axis([0, 1, 0], np.deg2rad(yaw_deg * i))
        c2w[i, :3, 3] = [step * i, 0.0, 0.02 * i]
    return c2w


def write_fixture_clip(
    root: Path, clip_id: str = "fix00", n: int = 24, height: int = 32, width: int = 64, seed: int = 0
) -> Path:
    """Write one clip in the RealEstate10K raw layout under ``root``; returns ``root``."""
    root = Path(root)
    K = cameras.intrinsics_matrix(0.8 * width, 0.8 * width, width / 2, height / 2)
    c2w = fixture_trajectory(n)
    ts = 1_000_000 + 33_333 * np.arange(n)
    (root / "cameras").mkdir(parents=True, exist_ok=True)
    (root / "frames" / clip_id).mkdir(parents=True, exist_ok=True)
    (root / "depth" / clip_id).mkdir(parents=True, exist_ok=True)
    K_norm = cameras.K_pixels_to_norm(K, width, height)
    write_camera_file(root / "cameras" / f"{clip_id}.txt", "https://example.invalid/fixture", ts,
                      np.repeat(K_norm[None], n, 0), cameras.invert_rigid(c2w))  # fmt: skip
    for i in range(n):
        img, depth = render_planes(K, c2w[i], height, width, seed)
        Image.fromarray(img).save(root / "frames" / clip_id / f"{ts[i]}.png")
        np.save(root / "depth" / clip_id / f"{ts[i]}.npy", depth)
    return root


def write_fixture_dl3dv_scene(root: Path, scene_id: str = "a" * 64, n: int = 12, height: int = 32, width: int = 64,
                              seed: int = 0, stored_scale: int = 4, nested: bool = False) -> tuple[Path, np.ndarray]:
    """One DL3DV-style scene (nerfstudio transforms.json, frames in images_4/ at 1/``stored_scale`` of the size the
    json's intrinsics describe, frames listed out of order) under ``root``; returns (scene folder, OpenCV c2w)."""
    import json

    K = cameras.intrinsics_matrix(0.8 * width, 0.8 * width, width / 2, height / 2)
    c2w = fixture_trajectory(n)
    scene = Path(root) / scene_id / ("nerfstudio" if nested else "")
    (scene / "images_4").mkdir(parents=True, exist_ok=True)
    stored_wh = (width * stored_scale, height * stored_scale)
    K_stored = cameras.K_after_resize(K, (width, height), stored_wh)
    frames = []
    for i in range(n):
        img, _ = render_planes(K, c2w[i], height, width, seed)
        Image.fromarray(img).save(scene / "images_4" / f"frame_{i + 1:05d}.png")
        frames.append({"file_path": f"images/frame_{i + 1:05d}.png",
                       "transform_matrix": cameras.opencv_to_opengl(c2w[i]).tolist()})  # fmt: skip
    order = np.random.default_rng(seed).permutation(n)  # the reader sorts by running number
    meta = {"w": stored_wh[0], "h": stored_wh[1], "fl_x": K_stored[0, 0], "fl_y": K_stored[1, 1],
            "cx": K_stored[0, 2], "cy": K_stored[1, 2], "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
            "frames": [frames[i] for i in order]}  # fmt: skip
    (scene / "transforms.json").write_text(json.dumps(meta))
    return scene, c2w


def fixture_clip_and_codec(root: Path, n: int = 16, height: int = 32, width: int = 64):
    """The fixture clip written under ``root/data`` and read back as :func:`gac.data.load_clip_arrays` arrays, and
    a tiny seeded codec written under ``root/vae``: the parts GaC's CPU tests sample and train on."""
    from gac.data import load_clip_arrays
    from gac.vae import load_vae
    from gac_bench.datasets.re10k import Re10kRawReader

    data = Path(root) / "data"
    write_fixture_clip(data, n=n, height=height, width=width)
    reader = Re10kRawReader(data / "cameras", data / "frames", width, height, data / "depth")
    return load_clip_arrays(reader.load_clip("fix00")), load_vae(write_tiny_vae(Path(root) / "vae"))


def write_tiny_vae(folder: Path, latent_channels: int = 4, seed: int = 0) -> Path:
    """A seeded random tiny AutoencoderKL in diffusers layout (plumbing tests only)."""
    from gac.vae import random_vae, save_vae, tiny_vae_config

    return save_vae(random_vae(tiny_vae_config(latent_channels), seed), folder)
