"""GEN3C camera conversion, pure functions.

Native convention of ``Gen3cPersistentModel.inference_on_cameras`` (cosmos_predict1, GEN3C):

=================  =====================================================================================
world              the seeding (reference) camera is the identity
extrinsics         world-to-camera 4x4, OpenCV axes: Q_i = E_i E_0^-1 (Q_0 = I)
intrinsics         pixel 3x3 at the working resolution 1280x704, one per frame, with pixel centres at integer
                   coordinates (its unprojection grid is arange(W), arange(H)); the harness puts them at +0.5,
                   so cx and cy move by -0.5 at this boundary (:func:`K_to_gen3c`)
frame count        120k+1 (121, 241, ...): one call runs GEN3C's own autoregressive loop over 121-frame
                   windows with one overlapping frame, refreshing its 3D cache from its last frame
translation scale  MoGe's (scale-ambiguous) depth units; the worker applies the factor of the scale policy
=================  =====================================================================================
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

from baselines.upstream.conventions import scale_translations, w2c_relative_to_first

NATIVE_WH = (1280, 704)
WINDOW = 121  # frames per diffusion window; a call takes 120k+1 frames


def frame_count(num_frames: int) -> int:
    """Smallest 120k+1 >= num_frames (at least 121): GEN3C asserts (T-1) % 120 == 0."""
    k = max(1, -(-(num_frames - 1) // (WINDOW - 1)))
    return k * (WINDOW - 1) + 1


def K_to_gen3c(K: np.ndarray) -> np.ndarray:
    """Harness pixel K (centres at +0.5) -> GEN3C's (centres at integers): the principal point moves by -0.5."""
    return cameras.K_after_crop(K, 0.5, 0.5)


def gen3c_cameras(c2w_opencv: np.ndarray, K_native: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harness c2w (N,4,4) and pixel K -> (w2c relative to frame 0 (N,4,4), per-frame GEN3C pixel K (N,3,3)),
    harness units."""
    w2c = w2c_relative_to_first(c2w_opencv)
    return w2c, np.broadcast_to(K_to_gen3c(K_native), (len(w2c), 3, 3)).copy()


def harness_c2w_from_gen3c(w2c: np.ndarray, c2w_first: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Inverse of :func:`gen3c_cameras` (after the worker scaled translations by ``factor``)."""
    c2w_rel = cameras.w2c_to_c2w(scale_translations(w2c, 1.0 / factor))
    return np.asarray(c2w_first, dtype=np.float64)[None] @ c2w_rel
