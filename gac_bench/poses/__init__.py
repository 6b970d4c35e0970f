"""Camera pose estimation on generated frames and the pose errors of protocol ``paper-v1``.

- :mod:`gac_bench.poses.base`: ``PoseEstimate``, ``PoseEstimator``, ``EstimatorUnavailable``.
- :mod:`gac_bench.poses.registry`: ``get_estimator(name, device, **options)``; names ``colmap``, ``vggt``.
- :mod:`gac_bench.poses.colmap`: weight-free SfM with pycolmap (SIFT, known K held fixed).
- :mod:`gac_bench.poses.vggt`: VGGT-1B, one forward pass per clip (package and weights installed separately).
- :mod:`gac_bench.poses.errors`: R_err / T_err (paper-v1), sums, Sim(3) ATE, loop closure, frame subsets.
"""

from gac_bench.poses.base import EstimatorUnavailable, PoseEstimate, PoseEstimator
from gac_bench.poses.errors import (
    LoopClosure,
    PoseErrors,
    forth_and_back_subsets,
    frame_subsets,
    loop_closure,
    pose_errors,
    pose_errors_by_subset,
    pose_errors_for_frames,
)
from gac_bench.poses.registry import UnknownEstimatorError, get_estimator, known_estimators

__all__ = [
    "EstimatorUnavailable",
    "LoopClosure",
    "PoseErrors",
    "PoseEstimate",
    "PoseEstimator",
    "UnknownEstimatorError",
    "forth_and_back_subsets",
    "frame_subsets",
    "get_estimator",
    "known_estimators",
    "loop_closure",
    "pose_errors",
    "pose_errors_by_subset",
    "pose_errors_for_frames",
]
