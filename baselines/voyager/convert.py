"""Voyager (HunyuanWorld-Voyager) camera conversion, pure functions.

The diffusion model sees no matrices: cameras enter only through the partial RGB-D renders (see render.py).
The geometry of those renders, as in ``data_engine/create_input.py``:

=================  =====================================================================================
world              the reference camera is the identity
extrinsics         world-to-camera 4x4, OpenCV axes: Q_i = E_i E_0^-1
intrinsics         pixel K, any (create_input hard-codes f=256 at 1280x720; we use the harness K at 768x512)
resolution         512x768 (H x W, 3:2), 49 condition frames per call
translation scale  units of the reference depth: harness units with the dataset depth, MoGe's otherwise
=================  =====================================================================================
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

from baselines.upstream.conventions import scale_translations, w2c_relative_to_first

NATIVE_WH = (768, 512)
FRAMES_PER_CALL = 49
# HunyuanVideoPipeline.__call__ (i2v_mode, i2v_condition_type "latent_concat", Voyager's default) returns
# image[:, :, 4:]: decoded frames 4..48 of the 49 condition poses, so 45 frames per call
UPSTREAM_DROPPED_FRAMES = 4


def voyager_cameras(c2w_opencv: np.ndarray, factor: float) -> np.ndarray:
    """Harness c2w (N,4,4) -> render w2c relative to frame 0 with translations times ``factor``."""
    return scale_translations(w2c_relative_to_first(c2w_opencv), factor)


def harness_c2w_from_voyager(w2c: np.ndarray, c2w_first: np.ndarray, factor: float) -> np.ndarray:
    """Inverse of :func:`voyager_cameras`."""
    c2w_rel = cameras.w2c_to_c2w(scale_translations(w2c, 1.0 / factor))
    return np.asarray(c2w_first, dtype=np.float64)[None] @ c2w_rel
