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


class FixturePoseEstimator:
    """A test double of a pose estimator: returns the plane fixture's own poses for frames 0..N-1 (dataset
    trajectory, stride 1) with a 0.1 rad rotation about y added to every frame after the first."""

    name = "fixture-poses"
    version = "test"
    OFFSET_RAD = 0.1

    def __init__(self, device="cpu"):
        self.device = device

    def check_available(self):
        return None

    def estimate(self, frames, K=None):
        from gac_bench import cameras
        from gac_bench.poses.base import PoseEstimate

        n = len(frames)
        c2w = np.tile(np.eye(4), (n, 1, 1))
        seed = sum(map(ord, "clipa"))
        for i in range(n):
            c2w[i, :3, 3] = [0.01 * i + 0.05 * (seed % 7), 0.002 * i, 0.004 * i]
            c2w[i, :3, :3] = cameras.rotation_about_axis([0, 1, 0], 0.002 * i)
            if i:
                c2w[i, :3, :3] = c2w[i, :3, :3] @ cameras.rotation_about_axis([0, 1, 0], self.OFFSET_RAD)
        return PoseEstimate(c2w=c2w, K=np.tile(K, (n, 1, 1)), registered=np.ones(n, bool),
                            estimator=self.name)


class Shifted(Method):
    """The reference shifted right by ``pixels`` (an option, so variants of one method differ)."""

    name = "shifted"

    from dataclasses import dataclass as _dc

    @_dc
    class Config:
        pixels: int = 1

    def generate(self, request: GenerationRequest) -> np.ndarray:
        frame = np.roll(request.reference_image, self.config.pixels, axis=1)
        return np.repeat(frame[None], request.num_frames, axis=0)


class ExitsOnClipB(Method):
    """A plugin that calls sys.exit on one clip."""

    name = "exits-on-clipb"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        if request.clip_id == "clipb":
            raise SystemExit(3)
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)


class Hangs(Method):
    """Sleeps far longer than any test's --timeout."""

    name = "hangs"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        time.sleep(60)
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)


class WarnEachClip(Method):
    """Identity that logs a warning from inside generate(), as a slow method announcing its expected time does."""

    name = "warn-each-clip"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        import logging

        logging.getLogger("tests.warn_each_clip").warning("simulated warning for %s", request.clip_id)
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)


class ReportEveryFrame(Method):
    """Identity that reports each frame as done, as a slow autoregressive method does."""

    name = "report-every-frame"

    def generate(self, request: GenerationRequest) -> np.ndarray:
        for done in range(1, request.num_frames + 1):
            if request.report_progress is not None:
                request.report_progress(done, request.num_frames)
        return np.repeat(request.reference_image[None], request.num_frames, axis=0)
