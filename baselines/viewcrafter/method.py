"""``viewcrafter``: ViewCrafter_25 (Drexubery/ViewCrafter) through a resident worker.

Per clip: the reference is brought to 1024x576 (K follows), the poses are expressed relative to frame 0 and
converted to PyTorch3D cameras; chunks of 25 poses are chained with one shared pose (last chunk padded by
repeating pose N-1). The worker reconstructs the reference once with DUSt3R, renders each chunk's cameras
and replaces render 0 with the chunk's conditioning image (the reference, or the frame the previous chunk
generated at the shared pose). See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.api import GenerationRequest
from gac_bench.registry import register_method

from baselines.upstream import files
from baselines.upstream.chunking import Chunk, plan_chained
from baselines.upstream.method import ClipContext, UpstreamConfig, UpstreamInfo, UpstreamMethod
from baselines.upstream.requirements import Requirement
from baselines.upstream.scale import scale_spec
from baselines.upstream.transforms import NativeResolution
from baselines.viewcrafter import convert

INTRINSICS_MODES = ("harness", "dust3r")


@dataclass
class ViewCrafterConfig(UpstreamConfig):
    dust3r: Path | None = None  # DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth, else $GAC_BENCH_VIEWCRAFTER_DUST3R
    scale_policy: str = "auto"  # auto | fixed | depth-median (see baselines/upstream/scale.py)
    translation_scale: float = 1.0  # used by scale_policy=fixed
    intrinsics: str = "harness"  # harness: DUSt3R depth re-unprojected with the harness K; dust3r: DUSt3R's focal
    ddim_steps: int = 50
    ddim_eta: float = 1.0
    guidance: float = 7.5


@register_method("viewcrafter")
class ViewCrafterMethod(UpstreamMethod):
    summary = "ViewCrafter_25 (DUSt3R point-cloud renders + video diffusion) via its official code"
    version = "1"
    uses_dataset_depth = True  # only for the depth-median translation scale
    Config = ViewCrafterConfig
    upstream = UpstreamInfo(
        name="ViewCrafter",
        repository="https://github.com/Drexubery/ViewCrafter",
        branch="main",
        commit="19196985d671e3fe7b633844202b534530780469",
        licence="Apache-2.0 (code, ViewCrafter weights); bundled DUSt3R is CC BY-NC-SA 4.0 (non-commercial)",
    )
    env_prefix = "GAC_BENCH_VIEWCRAFTER"
    repo_marker = "viewcrafter.py"
    ckpt_what = "ViewCrafter_25 checkpoint (model.ckpt)"
    extra_requirements = (
        Requirement(
            "dust3r", "GAC_BENCH_VIEWCRAFTER_DUST3R", "file", "DUSt3R weights (DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth)"
        ),
    )
    worker_script = Path(__file__).with_name("upstream_worker.py")

    def worker_args(self) -> list[str]:
        return ["--dust3r", self._path_arg("dust3r")]

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        if self.config.intrinsics not in INTRINSICS_MODES:
            raise ValueError(f"intrinsics={self.config.intrinsics!r}: expected one of {', '.join(INTRINSICS_MODES)}")
        native = NativeResolution((request.width, request.height), convert.NATIVE_WH, self.config.frames_back)
        K_native = native.to_native.K(request.K)
        c2w_rel, R_p3d, T_p3d = convert.render_cameras(request.c2w)
        image_native = native.to_native.image(request.reference_image)
        return ClipContext(
            request=request,
            up_dir=up_dir,
            native=native,
            image_native=image_native,
            K_native=K_native,
            chunks=plan_chained(request.num_frames, convert.FRAMES_PER_CALL, overlap=1),
            scale=scale_spec(self.config.scale_policy, self.config.translation_scale, request.reference_depth),
            record={"K_dust3r_512x288": convert.dust3r_intrinsics(K_native), "intrinsics": self.config.intrinsics},
            data={"c2w_rel": c2w_rel, "R_p3d": R_p3d, "T_p3d": T_p3d,
                  "reference": files.write_png(up_dir / "reference_1024x576.png", image_native)},
        )

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        folder = ctx.chunk_dir(chunk)
        idx = np.asarray(chunk.pose_index)
        image = self.write_condition(ctx, chunk, condition)
        K = convert.dust3r_intrinsics(ctx.K_native)
        upstream = {
            "reference_image": str(ctx.data["reference"]),  # DUSt3R reconstructs the clip's reference, once
            "R_p3d": str(files.write_npy(folder / "R_p3d.npy", ctx.data["R_p3d"][idx])),
            "T_p3d": str(files.write_npy(folder / "T_p3d.npy", ctx.data["T_p3d"][idx])),
            "c2w_opencv_rel": str(files.write_npy(folder / "c2w_opencv_rel.npy", ctx.data["c2w_rel"][idx])),
            "translations": "harness units; the worker multiplies T_p3d by the factor of harness.scale",
            "focal_px": [K[0, 0], K[1, 1]],
            "principal_point_px": [K[0, 2], K[1, 2]],
            "render_hw": [convert.DUST3R_WH[1], convert.DUST3R_WH[0]],
            "video_hw": [convert.NATIVE_WH[1], convert.NATIVE_WH[0]],
            "intrinsics": self.config.intrinsics,
            "video_length": convert.FRAMES_PER_CALL,
            "ddim_steps": self.config.ddim_steps,
            "ddim_eta": self.config.ddim_eta,
            "unconditional_guidance_scale": self.config.guidance,
            "prompt": convert.PROMPT,
        }
        job = {"harness": self.harness_section(ctx, chunk, image), "upstream": upstream}
        return files.write_json(folder / "job.json", job)
