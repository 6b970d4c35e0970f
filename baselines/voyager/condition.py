"""Writing one Voyager call's condition folder in the layout ``sample_image2video.py`` reads.

    <input>/ref_image.png            the conditioning image (reference, or the previous call's frame)
    <input>/ref_depth.npy            normalised depth of render 0 (create_input writes this as ref_depth.exr)
    <input>/depth_range.json         per-frame (p2, p98) of the inverse depth, to de-normalise
    <input>/video_input/render_XXXX.png, mask_XXXX.png (255 = covered), depth_XXXX.npy

Depth maps are written as float32 .npy here (no EXR writer in the harness environment); the worker
converts each to the ``.exr`` Voyager reads, with pyexr, next to it, before calling the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from baselines.upstream import files
from baselines.voyager import render


def write_condition_folder(folder: Path, ref_image: np.ndarray, points, colors, w2cs, K_native, native_wh) -> list:
    """Render every camera of ``w2cs`` and write the folder; return the per-frame (p2, p98) ranges."""
    video = Path(folder) / "video_input"
    ranges = []
    for i, w2c in enumerate(w2cs):
        rendered = render.render_half(points, colors, w2c, K_native, native_wh)
        rgb, mask, d_norm, depth_range = render.encode_frame(*rendered, native_wh)
        files.write_png(video / f"render_{i:04d}.png", rgb)
        files.write_png(video / f"mask_{i:04d}.png", mask)  # single channel, as create_input writes it
        files.write_npy(video / f"depth_{i:04d}.npy", d_norm)
        if i == 0:
            files.write_npy(Path(folder) / "ref_depth.npy", d_norm)
        ranges.append(depth_range)
    files.write_png(Path(folder) / "ref_image.png", ref_image)
    (Path(folder) / "depth_range.json").write_text(json.dumps([list(r) for r in ranges]))  # create_input's format
    return ranges
