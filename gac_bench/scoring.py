"""Scoring of one clip's frames (metrics.json) and of a whole split (split_metrics.json).

The metric *suite* (each metric's version, or why it is missing) is stored with every record: when it
changes (new version, weights installed) the clip is rescored; frames are never regenerated for that.
"""

from __future__ import annotations

import re
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
from gac_bench.weights import WeightsMissing

FID_FEATURES = "fid_features.npy"  # generated frames 1..N-1, one row per scored frame
FID_REFERENCE_FEATURES = "fid_features_gt.npy"  # their ground truth, same rows

PixelMetric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _missing(reason: str) -> dict:
    return {"status": "missing", "reason": reason}


class FeatureNet:
    """The FID feature extractor with its identity (name and weights hash), which keys every cache."""

    def __init__(self, model, extractor_id: str, weights_id: str):
        self.model, self.extractor_id, self.weights_id = model, extractor_id, weights_id

    def features(self, frames: np.ndarray, device: str) -> np.ndarray:
        from gac_bench.metrics.fid import inception_features

        return inception_features(self.model, frames, device)


class Scorer:
    """Holds the metric implementations (built once) and scores clips with them."""

    def __init__(self, device: str = "cpu", protocol: Protocol = PAPER_V1, lpips: LpipsMetric | None = None,
                 fid_net: "FeatureNet | None" = None, estimator: str | None = None, split_name: str = ""):
        self.device = device
        self.protocol = protocol
        self.split_name = split_name
        self.unavailable: dict[str, str] = {}
        self._lpips = lpips
        if lpips is None:
            try:
                self._lpips = LpipsMetric.from_local_weights(device)
            except MetricUnavailable as exc:
                self.unavailable["lpips"] = str(exc)
        self._fid = fid_net or self._load_inception()
        self.estimator_name = estimator
        self._estimator = self._load_estimator(estimator) if estimator else None
        if estimator is None:
            self.unavailable["r_err"] = self.unavailable["t_err"] = "no pose estimator selected (--estimator)"

    def _load_inception(self) -> "FeatureNet | None":
        from gac_bench.metrics import fid

        try:
            model = fid.load_inception(self.device)
        except (WeightsMissing, MetricUnavailable) as exc:
            self.unavailable["fid"] = str(exc)
            return None
        return FeatureNet(model, fid.inception_extractor_id(), fid.inception_weights_sha256())

    def _load_estimator(self, name: str):
        from gac_bench.poses.registry import get_estimator

        estimator = get_estimator(name, device=self.device)
        missing = estimator.check_available()
        if missing:  # the pose columns say so; nothing falls back to another estimator
            self.unavailable["r_err"] = self.unavailable["t_err"] = f"pose estimator {name}: {missing}"
            return None
        return estimator

    # ------------------------------------------------------------------ what a record must match
    def suite(self) -> dict[str, str]:
        versions = {"psnr": PSNR_VERSION, "ssim": SSIM_VERSION, "lpips": LPIPS_VERSION}
        versions["fid"] = self._fid.extractor_id if self._fid else "missing"
        if self._estimator is not None:
            versions["pose"] = f"{self.estimator_name}-v{self._estimator.version}/errors-paper-v1.1"
        else:
            versions["pose"] = f"missing({self.estimator_name})"
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
        if self._fid is not None:
            results["fid"] = self._fid_features(clip, traj, folder, generated[scored], ground_truth[scored])
        pose: dict = {}
        if self._estimator is not None:
            pose = self._pose(clip, traj, generated, results)
        return self._record(clip, traj, generation, results, pose, t0)

    def failed_record(self, clip: Clip | None, clip_id: str, traj: Trajectory, generation: dict, error: str) -> dict:
        """The metrics.json of a clip that could not be scored at all (unreadable frames or ground truth): every
        metric of the suite failed with ``error``, recorded like any result so the run goes on."""
        names = ["psnr", "ssim", *(["lpips"] if self._lpips is not None else []), *(["fid"] if self._fid else [])]
        results = {name: _missing(reason) for name, reason in self.unavailable.items()}
        results.update({name: {"status": "failed", "error": error} for name in names})
        if self._estimator is not None:
            results["r_err"] = results["t_err"] = {"status": "failed", "error": error}
        stub = clip if clip is not None else type("ClipId", (), {"clip_id": clip_id})()
        return self._record(stub, traj, generation, results, {}, time.perf_counter())

    def _record(self, clip: Clip, traj: Trajectory, generation: dict, results: dict, pose: dict, t0: float) -> dict:
        """The metrics.json of one clip: values plus what they are valid for (generation id, suite, protocol)."""
        return {
            "schema": records.SCHEMA_VERSION,
            "protocol": self.protocol.name,
            "generation_id": generation["generation_id"],
            "suite": self.suite(),
            "clip_id": clip.clip_id,
            "trajectory": traj.kind,
            "method": generation["method"],
            "frames_scored": np.arange(self.protocol.scored_from, traj.num_frames),
            "mirror_of": traj.mirror_of,
            "metrics": results,
            "pose": pose,
            "device": self.device,
            "wall_time_s": time.perf_counter() - t0,
            "provenance": records.provenance(self.device),
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

    def _fid_features(self, clip: Clip, traj: Trajectory, folder: Path, gen: np.ndarray, gt: np.ndarray) -> dict:
        """Inception features of the scored frames, kept per clip so FID can be pooled over any set of clips."""
        from gac_bench.metrics import fid, fid_reference

        try:
            fid.save_features(folder / FID_FEATURES, self._fid.features(gen, self.device))
            scored = traj.source_index[self.protocol.scored_from :]
            key = fid_reference.reference_key(
                self.protocol.name, self.split_name or "unknown", traj.kind, clip.height, clip.width,
                f"source frames {[int(i) for i in scored]}", [clip.clip_id], self._fid.weights_id,
                self._fid.extractor_id)
            ref = fid_reference.reference_features(key["split"], key, lambda: self._fid.features(gt, self.device))
            fid.save_features(folder / FID_REFERENCE_FEATURES, ref)
        except Exception as exc:
            return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "ok", "pooled": True, "features": FID_FEATURES, "reference": FID_REFERENCE_FEATURES,
                "extractor": self._fid.extractor_id}

    def _pose(self, clip: Clip, traj: Trajectory, generated: np.ndarray, results: dict) -> dict:
        """Estimate cameras from all N generated frames in one call and compare with the trajectory's poses."""
        from gac_bench.poses.errors import loop_closure, pose_errors

        try:
            estimate = self._estimator.estimate(generated, clip.K)
            gt_c2w = clip.c2w[traj.source_index]
            depth0 = float(np.median(clip.depth(int(traj.source_index[0])))) if clip.has_depth else None
            errors = pose_errors(gt_c2w, estimate.c2w, estimate.registered, scene_depth=depth0)
        except Exception as exc:
            results["r_err"] = results["t_err"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            return {"estimator": self.estimator_name, "error": f"{type(exc).__name__}: {exc}"}
        for name, per_frame, mean in (("r_err", errors.r_err_rad_per_frame, errors.r_err_rad),
                                      ("t_err", errors.t_err_per_frame, errors.t_err)):
            if errors.failure:  # e.g. nothing registered: a failure of the clip's pose columns, never a number
                results[name] = {"status": "failed", "error": f"{self.estimator_name}: {errors.failure}"}
                continue
            results[name] = {"status": "ok", "per_frame": per_frame, "mean": mean, "unit": "rad" if name == "r_err" else ""}
        out = {"estimator": self.estimator_name, "errors": errors.to_dict(), "estimate": estimate.to_dict()}
        if traj.kind == "forth-and-back":
            out["loop_closure"] = loop_closure(gt_c2w, estimate.c2w, estimate.registered).to_dict()
        return out

    def pose_suite_missing(self) -> bool:
        return self._estimator is None

    def score_ground_truth(self, clip: Clip, traj: Trajectory, generation: dict) -> dict:
        """The noise-floor record: the pose estimator on the ground-truth frames; pixel metrics do not apply."""
        t0 = time.perf_counter()
        reason = "not applicable: this row is the pose estimator on the ground-truth frames"
        results: dict[str, dict] = {k: {"status": "n/a", "reason": reason} for k in ("psnr", "ssim", "lpips", "fid")}
        pose = self._pose(clip, traj, clip.frames(traj.source_index), results)
        return self._record(clip, traj, generation, results, pose, t0)

    # ------------------------------------------------------------------ per split
    def finish_split(self, runs_dir: Path, split, method: str, trajectories: tuple[str, ...]) -> None:
        """Write ``split_metrics.json``: FID/KID pooled over the clip records that exist, per frame subset.

        The same function the leaderboard uses computes the values, so the file and the table always agree.
        """
        from gac_bench import leaderboard

        for trajectory in trajectories:
            folder = records.method_dir(runs_dir, split.name, trajectory, method)
            if not folder.is_dir():
                continue
            ok = [c for c in leaderboard.read_method_records(folder) if c.ok]
            pooled = {}
            for subset in leaderboard.subsets_for(trajectory):
                frames = leaderboard.subset_frames(trajectory, subset, self.protocol)
                num_scored = len(leaderboard.subset_frames(trajectory, "all", self.protocol))
                cell, extra, note = leaderboard.pooled_fid(ok, frames, num_scored)
                pooled[subset] = {"fid": cell.mean if cell else None, **extra, "note": note}
            records.write_json_atomic(folder / "split_metrics.json", {
                "schema": records.SCHEMA_VERSION, "protocol": self.protocol.name, "split": split.name,
                "trajectory": trajectory, "method": method, "clips": [c.clip_id for c in ok],
                "fid_unavailable": self.unavailable.get("fid"), "pooled": pooled,
            })


_METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "fid": "FID", "r_err": "R_err", "t_err": "T_err"}
_WEIGHT_FILE = re.compile(r"([\w.-]+\.(?:pth|pt|safetensors|bin|ckpt|npz))\b[^;]*?not found")


def short_reason(reason: str) -> str:
    """One short clause for a start-of-run note: the absent weight file and where to read more, else the first
    sentence of the reason (the tables' footnotes keep the whole text)."""
    match = _WEIGHT_FILE.search(reason)
    if match:
        return f"{match.group(1)} absent (see `gac-bench weights`)"
    first = reason.split("; ")[0]
    return first if len(first) <= 120 else first[:117] + "..."


def missing_notes(unavailable: dict[str, str]) -> list[str]:
    """One line per cause of missing columns, e.g. 'R_err, T_err will be missing: no pose estimator selected'."""
    by_reason: dict[str, list[str]] = {}
    for metric, reason in unavailable.items():
        by_reason.setdefault(short_reason(reason), []).append(_METRIC_LABELS.get(metric, metric))
    return [f"{', '.join(metrics)} will be missing: {why}" for why, metrics in by_reason.items()]
