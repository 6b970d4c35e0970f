"""Pose estimator interface: frames of one clip in, one camera per frame out.

An estimator sees all N frames of a clip in one call (DESIGN.md, protocol ``paper-v1``, "Pose errors") and
returns OpenCV camera-to-world poses in a world frame and scale of its own choosing; :mod:`gac_bench.poses.errors`
removes both before comparing with the ground truth. A frame the estimator could not place is kept, marked
``registered=False``, and its pose row is NaN: frames are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


class EstimatorUnavailable(RuntimeError):
    """An estimator cannot run here: a package or weight file is missing. The message says which and where."""


@dataclass
class PoseEstimate:
    """Cameras of one clip as an estimator sees them.

    Attributes:
        c2w: (N, 4, 4) float64 OpenCV camera-to-world, world frame and scale arbitrary. NaN rows where
            ``registered`` is False.
        K: (N, 3, 3) float64 pixel intrinsics at the resolution of the frames given to ``estimate`` (not the
            estimator's internal resolution). NaN where ``registered`` is False.
        registered: (N,) bool; False = the estimator failed on that frame.
        confidence: (N,) float64 estimator-specific confidence (documented by each estimator), or None.
        estimator: the estimator's name.
        info: provenance (version, dtype, preprocessing, package versions, timing in seconds).
    """

    c2w: np.ndarray
    K: np.ndarray
    registered: np.ndarray
    confidence: np.ndarray | None = None
    estimator: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.c2w = np.asarray(self.c2w, dtype=np.float64)
        self.K = np.asarray(self.K, dtype=np.float64)
        self.registered = np.asarray(self.registered, dtype=bool)
        n = len(self.registered)
        if self.c2w.shape != (n, 4, 4) or self.K.shape != (n, 3, 3) or self.registered.shape != (n,):
            raise ValueError(
                f"PoseEstimate shapes disagree: c2w {self.c2w.shape}, K {self.K.shape}, "
                f"registered {self.registered.shape} (want (N,4,4), (N,3,3), (N,))"
            )
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, dtype=np.float64)
            if self.confidence.shape != (n,):
                raise ValueError(f"confidence has shape {self.confidence.shape}, want ({n},)")
        if not np.isfinite(self.c2w[self.registered]).all():
            raise ValueError("a registered frame has a non-finite pose")

    @property
    def num_frames(self) -> int:
        return int(len(self.registered))

    @property
    def num_registered(self) -> int:
        return int(self.registered.sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (NaN rows become None)."""

        def rows(a: np.ndarray) -> list:
            return [x.tolist() if np.isfinite(x).all() else None for x in a]

        return {
            "estimator": self.estimator,
            "c2w": rows(self.c2w),
            "K": rows(self.K),
            "registered": self.registered.tolist(),
            "confidence": None if self.confidence is None else self.confidence.tolist(),
            "info": self.info,
        }


def nan_poses(num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) c2w and (N, 3, 3) K filled with NaN, for estimators to fill registered rows into."""
    return np.full((num_frames, 4, 4), np.nan), np.full((num_frames, 3, 3), np.nan)


def check_frames(frames: np.ndarray, K: np.ndarray | None) -> None:
    """Raise ValueError unless ``frames`` is uint8 (N, H, W, 3) with N >= 2 and ``K`` is None or (3, 3) finite."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3) RGB, got {frames.dtype} {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"pose estimation needs at least 2 frames, got {len(frames)}")
    if K is not None:
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all():
            raise ValueError(f"K must be a finite (3, 3) pixel intrinsics matrix, got shape {K.shape}")


class PoseEstimator:
    """Base class. Subclasses set ``name`` and ``version`` and implement ``estimate`` and ``check_available``.

    ``version`` changes whenever an option default or the algorithm changes, so stored pose records can tell
    whether they are still valid.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""

    def __init__(self, device: str = "cpu", **options: Any) -> None:
        if options:
            raise TypeError(f"estimator {self.name!r} got unknown options {sorted(options)}")
        self.device = device

    def check_available(self) -> str | None:
        """None when the estimator can run here, else one line saying exactly what to install or put where."""
        return None

    def require_available(self) -> None:
        """Raise :class:`EstimatorUnavailable` with :meth:`check_available`'s message when it is not None."""
        problem = self.check_available()
        if problem is not None:
            raise EstimatorUnavailable(problem)

    def estimate(self, frames: np.ndarray, K: np.ndarray | None = None) -> PoseEstimate:
        """Cameras of all ``frames`` (uint8 (N, H, W, 3)) in one call; ``K`` = the request's (3, 3) pixel K or None."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, version and options, for records."""
        return {"name": self.name, "version": self.version, "device": self.device}
