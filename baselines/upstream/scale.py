"""Translation-scale policies: how harness translations are brought into a method's units.

None of the five methods receives metric scale. Harness units are the dataset's (RealEstate10K: SLAM units
of each clip; synthroom: metres). Policies:

==============  ===========================================================================================
``fixed``       multiply translations by ``translation_scale`` (default 1.0: harness units unchanged)
``depth-median``  s = median(method's own depth of the reference) / median(dataset depth of the reference);
                computed where the method's depth exists (inside the worker for DUSt3R/MoGe), so the camera
                moves as far, relative to the scene, as in the dataset. Needs the dataset depth.
``auto``        ``depth-median`` when the request carries a reference depth, else ``fixed``
==============  ===========================================================================================

The spec written into each job says which policy applies; the worker reports the factor it used and the
adapter stores it in ``upstream/scale.json`` and ``generation.json`` (``info.translation_scale``).
"""

from __future__ import annotations

import numpy as np

from gac_bench.api import UnsupportedRequest

from baselines.upstream.conventions import median_positive

POLICIES = ("auto", "fixed", "depth-median")


def scale_spec(policy: str, translation_scale: float, reference_depth: np.ndarray | None) -> dict:
    """The scale spec of one clip (JSON-ready)."""
    if policy not in POLICIES:
        raise ValueError(f"scale_policy={policy!r}: expected one of {', '.join(POLICIES)}")
    if policy == "auto":
        policy = "depth-median" if reference_depth is not None else "fixed"
    if policy == "fixed":
        return {"policy": "fixed", "factor": float(translation_scale)}
    if reference_depth is None:
        raise UnsupportedRequest(
            "scale_policy=depth-median needs the dataset depth of the reference view, and this clip has none; "
            "use scale_policy=fixed (with translation_scale=...) for this split"
        )
    return {
        "policy": "depth-median",
        "harness_median_depth": median_positive(reference_depth),
        "rule": "factor = median(method depth of the reference view) / harness_median_depth",
    }


def resolve_factor(spec: dict, method_median_depth: float | None = None) -> float:
    """The factor a spec gives, once the method's own median depth is known (for ``depth-median``)."""
    if spec["policy"] == "fixed":
        return float(spec["factor"])
    if method_median_depth is None:
        raise ValueError("depth-median scale needs the method's median depth")
    return float(method_median_depth) / float(spec["harness_median_depth"])
