"""``identity``: every frame is the reference image. The lower bound any method must beat."""

from __future__ import annotations

import numpy as np

from gac_bench.api import GenerationRequest, Method
from gac_bench.registry import register_method


@register_method("identity")
class IdentityMethod(Method):
    summary = "Every frame is the reference image (lower bound)."
    version = "1"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)
