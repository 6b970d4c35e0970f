"""Methods used only by the tests: each one is clearly a test double, never reported."""

from __future__ import annotations

import os
import time

import numpy as np

from gac_bench.api import GenerationRequest, Method


class SlowIdentity(Method):
    """Identity with a pause per clip, so a test can kill the run mid-way."""

    name = "slow-identity"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        time.sleep(float(os.environ.get("SLOW_IDENTITY_SECONDS", "0.4")))
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)


class CrashOnClipB(Method):
    """Raises on clip ``clipb`` and copies the reference elsewhere."""

    name = "crash-on-clipb"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        if request.clip_id == "clipb":
            raise RuntimeError("simulated crash on clipb")
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)


class WrongShape(Method):
    name = "wrong-shape"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        return np.zeros((request.num_frames - 1, request.height, request.width, 3), np.uint8)


class FloatNaN(Method):
    name = "float-nan"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        return np.full((request.num_frames, request.height, request.width, 3), np.nan, np.float32)


class DeferEverything(Method):
    """Writes an input file and defers, like an adapter's dry run."""

    name = "defer-everything"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        from gac_bench.api import GenerationDeferred

        (request.scratch_dir / "upstream").mkdir(exist_ok=True)
        (request.scratch_dir / "upstream" / "inputs.txt").write_text(request.clip_id)
        raise GenerationDeferred(f"dry run: inputs in {request.scratch_dir / 'upstream'}")
