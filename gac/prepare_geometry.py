"""Per-frame depth for training clips that ship none (RealEstate10K, DL3DV), so ``gac.train --data-root`` can read them.

    python -m gac.prepare_geometry --data-root RE10K_OR_DL3DV_DIR [--out DIR/depth] [--estimator vggt] \
        [--weights VGGT_FILE] [--shard 1/8] [--window 32]

For every clip of the data root (any RealEstate10K layout the harness reads: camera txt files with frame folders,
an npz or one mp4 per clip, pixelSplat chunks; or DL3DV scenes in their nerfstudio layout, one ``<hash>/transforms.json`` each) the
estimator predicts depth and cameras for windows of ``--window`` frames; each window's
depth is brought to the dataset's units by one scale, the median ratio of camera-centre distances from the window's
first frame, dataset over estimator (RealEstate10K's own scale is arbitrary per clip but consistent with its poses,
which is what training needs; DL3DV's scale comes from its COLMAP poses the same way). On-disk layout, read by
:class:`gac_bench.datasets.re10k.Re10kRawReader` and :class:`gac_bench.datasets.dl3dv.Dl3dvReader`:

    OUT/<clip_id>/<name>.npy              float32 z-depth at --width x --height, 0 = unknown; <name> is the
                                          frame's timestamp in microseconds (RealEstate10K) or its file stem (DL3DV)
    OUT/<clip_id>/confidence/<name>.npy   float32 confidence where the estimator gives one
    OUT/<clip_id>/geometry.json           estimator, scale per window, frame count (written last)

A clip with ``geometry.json`` is done and skipped, so a killed run resumes where it stopped; ``--shard k/n`` takes
clips k, k+n, ... (one process per GPU). ``--estimator vggt`` runs VGGT-1B (the ``vggt`` package and a local
weights file); ``--estimator module:factory`` loads any estimator with ``estimate(frames) -> DepthPrediction``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("gac.prepare_geometry")


@dataclass
class DepthPrediction:
    """An estimator's view of N frames: z-depth (N, H, W) at the frames' size in its own units (<= 0 or NaN:
    unknown),
    confidence (N, H, W) or None, and its cameras c2w (N, 4, 4) OpenCV in the same units."""

    depth: np.ndarray
    confidence: np.ndarray | None
    c2w: np.ndarray


class GeometryError(RuntimeError):
    """A clip or setting that cannot be prepared; the CLI prints it as one line."""


# ------------------------------------------------------------------------------------------------ estimators


class VggtDepth:
    """VGGT-1B's depth and camera heads (full forward), its "crop" preprocessing, depth mapped back to frame size."""

    name = "vggt"

    def __init__(self, device: str = "cuda", weights_path: str | None = None, dtype: str = "bf16"):
        from gac_bench.poses.vggt import VggtEstimator

        self._poses = VggtEstimator(device=device, dtype=dtype, weights_path=weights_path)
        problem = self._poses.check_available()
        if problem:
            raise GeometryError(problem)

    def estimate(self, frames: np.ndarray) -> DepthPrediction:
        import torch

        from gac_bench.cameras import invert_rigid
        from gac_bench.poses.vggt import pose_encoding_to_w2c_K, vggt_preprocess_crop

        images, plan = vggt_preprocess_crop(frames)
        model = self._poses._load()
        device = torch.device(self._poses.device)
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=self._poses.dtype == "bf16"):
            pred = model(torch.from_numpy(images).to(device)[None])
        w2c, _ = pose_encoding_to_w2c_K(pred["pose_enc"][0].double().cpu().numpy(), plan.out_hw)
        depth = uncrop_to_frames(pred["depth"][0, ..., 0].float().cpu().numpy(), plan)
        conf = uncrop_to_frames(pred["depth_conf"][0].float().cpu().numpy(), plan)
        return DepthPrediction(depth, conf, invert_rigid(w2c))


def uncrop_to_frames(maps_NHW: np.ndarray, plan) -> np.ndarray:
    """Maps at VGGT's input size back to the frames' size: un-crop (rows outside the crop are 0, unknown), then
    nearest resampling (depth edges stay sharp)."""
    import torch
    import torch.nn.functional as F

    n = maps_NHW.shape[0]
    full = np.zeros((n, *plan.resized_hw), np.float32)
    full[:, plan.top : plan.top + plan.out_hw[0]] = maps_NHW
    out = F.interpolate(torch.from_numpy(full)[:, None], size=plan.src_hw, mode="nearest")
    return out[:, 0].numpy()


def load_estimator(spec: str, device: str, weights: str | None):
    """``vggt`` or ``module:factory`` (called with device= and weights=)."""
    if spec == "vggt":
        return VggtDepth(device=device, weights_path=weights)
    module, _, attr = spec.partition(":")
    if not attr:
        raise GeometryError(f"unknown estimator {spec!r}: use vggt or module:factory")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise GeometryError(f"estimator {spec!r} cannot be loaded: {exc}") from None
    return factory(device=device, weights=weights)


# ------------------------------------------------------------------------------------------------ scale


def scale_to_dataset(c2w_est: np.ndarray, c2w_data: np.ndarray, min_motion: float = 1e-6) -> float:
    """Dataset units per estimator unit: the median ratio of camera-centre distances from the first frame."""
    d_est = np.linalg.norm(c2w_est[1:, :3, 3] - c2w_est[0, :3, 3], axis=1)
    d_data = np.linalg.norm(c2w_data[1:, :3, 3] - c2w_data[0, :3, 3], axis=1)
    ok = (d_est > min_motion * max(1.0, float(d_est.max(initial=0.0)))) & np.isfinite(d_est) & np.isfinite(d_data)
    if not ok.any():
        raise GeometryError("the camera barely moves in this window: no scale can be read from the dataset's poses")
    return float(np.median(d_data[ok] / d_est[ok]))


# ------------------------------------------------------------------------------------------------ clips


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array.astype(np.float32))
    os.replace(tmp, path)


def prepare_clip(clip, estimator, out: Path, frame_names: list[str], window: int = 32) -> dict:
    """Depth for every frame of ``clip`` (a harness Clip), window by window, saved as ``<frame name>.npy``;
    returns the clip's record."""
    folder = Path(out) / clip.clip_id
    (folder / "confidence").mkdir(parents=True, exist_ok=True)
    t0, scales = time.perf_counter(), []
    n = clip.num_frames
    for start in range(0, n, window):
        idx = list(range(start, min(n, start + window)))
        if len(idx) == 1 and start > 0:  # one frame cannot be scaled: estimate it with its predecessor
            idx = [start - 1, start]
        frames = np.stack([clip.frame(i) for i in idx])
        pred = estimator.estimate(frames)
        if pred.depth.shape != frames.shape[:3]:
            raise GeometryError(f"clip {clip.clip_id}: estimator returned depth {pred.depth.shape} for frames "
                                f"{frames.shape[:3]}")  # fmt: skip
        try:
            s = scale_to_dataset(pred.c2w, np.asarray(clip.c2w)[idx])
        except GeometryError as exc:
            raise GeometryError(f"clip {clip.clip_id}, frames {idx[0]}-{idx[-1]}: {exc}") from None
        scales.append({"frames": [idx[0], idx[-1]], "scale": s})
        for k, i in enumerate(idx):
            stem = frame_names[i]
            depth = np.where(np.isfinite(pred.depth[k]) & (pred.depth[k] > 0), pred.depth[k] * s, 0.0)
            _save(folder / f"{stem}.npy", depth)
            if pred.confidence is not None:
                _save(folder / "confidence" / f"{stem}.npy", pred.confidence[k])
    record = {"clip_id": clip.clip_id, "frames": n, "estimator": getattr(estimator, "name", type(estimator).__name__),
              "window": window, "scale": "median ratio of camera-centre distances from each window's first frame, "
              "dataset / estimator", "windows": scales, "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
    tmp = folder / "geometry.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, folder / "geometry.json")  # last: its presence means the clip is complete
    return record


def is_done(out: Path, clip_id: str) -> bool:
    return (Path(out) / clip_id / "geometry.json").is_file()


# ------------------------------------------------------------------------------------------------ CLI


def _clip_sources(data_root: Path, width: int, height: int):
    """(reader, clip ids) for the data under ``data_root``: any RealEstate10K layout the harness reads (raw camera
    files with frames, npz or mp4; pixelSplat chunks) or DL3DV scenes."""
    from gac_bench.datasets.dl3dv import Dl3dvReader, find_scenes
    from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout

    layout = detect_re10k_layout(data_root)
    if layout is not None:
        reader = Re10kDataRoot(layout, width, height)
        return reader, reader.clip_ids()
    if find_scenes(data_root):
        reader = Dl3dvReader(data_root, width, height)
        return reader, reader.scene_ids()
    raise GeometryError(f"no RealEstate10K layout (camera txt files and frames, or pixelSplat chunks) or DL3DV "
                        f"scenes (<hash>/transforms.json) under {data_root}")  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gac.prepare_geometry", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", default=None, help="default: DATA_ROOT/depth (where gac.train --data-root looks)")
    p.add_argument("--width", type=int, required=True, help="frames are read at this size (the training size)")
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--estimator", default="vggt", help="vggt, or module:factory")
    p.add_argument("--weights", default=None, help="the estimator's weights file (VGGT: model.pt or .safetensors)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--window", type=int, default=32, help="frames per estimator call")
    p.add_argument("--clips", default=None, help="comma-separated clip ids (default: all)")
    p.add_argument("--shard", default="1/1", help="K/N: clips K, K+N, ... (1-based)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return run(args)
    except GeometryError as exc:
        print(f"gac.prepare_geometry: {exc}", file=sys.stderr)
        return 2


def run(args) -> int:
    from gac_bench.datasets.clip import ClipDataError

    root = Path(args.data_root)
    out = Path(args.out) if args.out else root / "depth"
    reader, ids = _clip_sources(root, args.width, args.height)
    if args.clips:
        wanted = [c for c in args.clips.split(",") if c]
        unknown = sorted(set(wanted) - set(ids))
        if unknown:
            raise GeometryError(f"clips {unknown} are not under {root}")
        ids = wanted
    try:
        k, n = (int(v) for v in args.shard.split("/"))
        assert 1 <= k <= n
    except (ValueError, AssertionError):
        raise GeometryError(f"--shard {args.shard!r}: expected K/N with 1 <= K <= N") from None
    ids = ids[k - 1 :: n]
    todo = [c for c in ids if not is_done(out, c)]
    log.info("%d clips in this shard, %d already done, %d to prepare into %s", len(ids), len(ids) - len(todo),
             len(todo), out)  # fmt: skip
    estimator = load_estimator(args.estimator, args.device, args.weights) if todo else None
    failed = []
    for i, clip_id in enumerate(todo, 1):
        try:
            clip = reader.load_clip(clip_id)
            rec = prepare_clip(clip, estimator, out, clip.frame_file_names(), args.window)
            log.info("[%d/%d] %s: %d frames in %.1f s", i, len(todo), clip_id, rec["frames"], rec["seconds"])
        except (ClipDataError, GeometryError) as exc:  # one bad clip does not stop the others
            failed.append(clip_id)
            log.error("[%d/%d] %s failed: %s", i, len(todo), clip_id, exc)
    if failed:
        print(f"gac.prepare_geometry: {len(failed)} of {len(todo)} clips failed: {', '.join(failed[:5])}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
