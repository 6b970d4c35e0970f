"""Scoring of one clip's frames (metrics.json) and of a whole split (split_metrics.json).

The metric *suite* (each metric's version, or why it is missing) is stored with every record: when it
changes (new version, weights installed) the clip is rescored; frames are never regenerated for that.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from gac_bench import records
from gac_bench.datasets.clip import Clip
from gac_bench.metrics.base import MetricUnavailable
from gac_bench.metrics.image import PSNR_VERSION, SSIM_VERSION, psnr_per_frame, ssim_per_frame
from gac_bench.metrics.lpips_metric import LPIPS_VERSION, LpipsMetric
from gac_bench.protocol import PAPER_V1, Protocol
from gac_bench.trajectories import Trajectory

PixelMetric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _missing(reason: str) -> dict:
    return {"status": "missing", "reason": reason}


class Scorer:
    """Holds the metric implementations (built once) and scores clips with them."""

    def __init__(self, device: str = "cpu", protocol: Protocol = PAPER_V1, lpips: LpipsMetric | None = None):
        self.device = device
        self.protocol = protocol
        self.unavailable: dict[str, str] = {}
        self._lpips = lpips
        if lpips is None:
            try:
                self._lpips = LpipsMetric.from_local_weights(device)
            except MetricUnavailable as exc:
                self.unavailable["lpips"] = str(exc)

    # ------------------------------------------------------------------ what a record must match
    def suite(self) -> dict[str, str]:
        versions = {"psnr": PSNR_VERSION, "ssim": SSIM_VERSION, "lpips": LPIPS_VERSION}
        return {k: ("missing" if k in self.unavailable else v) for k, v in versions.items()}

    def record_is_valid(self, metrics: dict | None, generation: dict) -> bool:
        return (
            metrics is not None
            and metrics.get("schema") == records.SCHEMA_VERSION
            and metrics.get("protocol") == self.protocol.name
            and metrics.get("generation_id") == generation.get("generation_id")
            and metrics.get("suite") == self.suite()
        )

    # ------------------------------------------------------------------ per clip
    def _pixel_metrics(self) -> dict[str, PixelMetric]:
        metrics: dict[str, PixelMetric] = {
            "psnr": lambda a, b: psnr_per_frame(a, b, self.device),
            "ssim": lambda a, b: ssim_per_frame(a, b, self.device),
        }
        if self._lpips is not None:
            metrics["lpips"] = self._lpips.per_frame
        return metrics

    def score_clip(self, clip: Clip, traj: Trajectory, folder: Path, generation: dict) -> dict:
        """Per-frame and per-clip values of every metric for one generated clip."""
        t0 = time.perf_counter()
        n = traj.num_frames
        scored = np.arange(self.protocol.scored_from, n)
        generated = records.read_frames(folder / "frames", n)
        ground_truth = clip.frames(traj.source_index)
        results: dict[str, dict] = {name: _missing(reason) for name, reason in self.unavailable.items()}
        for name, fn in self._pixel_metrics().items():
            results[name] = self._run_metric(fn, generated[scored], ground_truth[scored], scored, n)
        return {
            "schema": records.SCHEMA_VERSION,
            "protocol": self.protocol.name,
            "generation_id": generation["generation_id"],
            "suite": self.suite(),
            "clip_id": clip.clip_id,
            "trajectory": traj.kind,
            "method": generation["method"],
            "frames_scored": scored,
            "mirror_of": traj.mirror_of,
            "metrics": results,
            "device": self.device,
            "wall_time_s": time.perf_counter() - t0,
        }

    @staticmethod
    def _run_metric(fn: PixelMetric, pred: np.ndarray, target: np.ndarray, scored: np.ndarray, n: int) -> dict:
        try:
            values = np.asarray(fn(pred, target), dtype=np.float64)
        except Exception as exc:  # one broken metric must not lose the others
            return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        if not np.all(np.isfinite(values)):
            return {"status": "failed", "error": "metric returned non-finite values"}
        per_frame = np.full(n, np.nan)
        per_frame[scored] = values
        return {"status": "ok", "per_frame": per_frame, "mean": float(values.mean())}

    # ------------------------------------------------------------------ per split
    def finish_split(self, runs_dir: Path, split, method: str, trajectories: tuple[str, ...]) -> None:
        """Pooled metrics over the split (FID/KID): computed from the per-clip records that exist."""
