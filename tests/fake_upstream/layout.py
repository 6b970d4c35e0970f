"""Test helpers: a fake installation of an upstream method (marker files only) and known requests.

Nothing here is an upstream model; the worker the adapters start in the tests is ``fake_worker.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gac_bench import cameras
from gac_bench.api import GenerationRequest

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")


def fake_installation(root: Path, method_cls) -> dict[str, str]:
    """Options pointing every requirement of ``method_cls`` at a fake file or folder, and the fake worker."""
    options = {"worker": str(FAKE_WORKER)}
    for req in method_cls.requirements():
        if req.kind == "executable":
            options[req.key] = sys.executable
            continue
        path = root / method_cls.name / req.key
        if req.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            if req.marker:
                (path / req.marker).parent.mkdir(parents=True, exist_ok=True)
                (path / req.marker).write_text("fake")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("fake")
        options[req.key] = str(path)
    return options


def known_trajectory(num_frames: int = 64) -> np.ndarray:
    """OpenCV c2w (N,4,4): forward then back (forth-and-back), with rotation, in a world where frame 0 is not I."""
    half = num_frames // 2
    t = np.concatenate([np.arange(half), np.arange(num_frames - half)[::-1] + (half - (num_frames - half))])
    world = np.eye(4)
    world[:3, :3] = cameras.rotation_about_axis([0.3, 1.0, -0.2], 0.7)
    world[:3, 3] = [1.5, -0.4, 2.0]
    poses = []
    for k in t:
        c2w = np.eye(4)
        c2w[:3, :3] = cameras.rotation_about_axis([0.1, 1.0, 0.05], 0.012 * k)
        c2w[:3, 3] = [0.03 * k, -0.005 * k, 0.04 * k]
        poses.append(world @ c2w)
    return np.stack(poses)


def make_request(scratch: Path, clip_id: str = "clip0", num_frames: int = 64, size=(640, 352), depth: bool = True):
    """A request at the protocol resolution with a textured reference image and, optionally, a depth map."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 77)], axis=-1).astype(np.uint8)
    K = cameras.intrinsics_matrix(0.9 * w, 0.9 * w, w / 2, h / 2)
    ref_depth = (2.0 + 0.5 * yy / h).astype(np.float32) if depth else None
    return GenerationRequest(clip_id, image, K, known_trajectory(num_frames), h, w, 7, "forth-and-back",
                             Path(scratch) / clip_id, ref_depth)
