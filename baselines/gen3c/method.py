"""``gen3c``: GEN3C (nv-tlabs/GEN3C, Cosmos-Predict1 7B) through a resident worker.

Per clip: the reference is brought to 1280x704 (K follows), the poses become w2c relative to frame 0, padded
to 120k+1 frames (121 for 64 poses) by repeating pose N-1; one call, in which GEN3C runs its own
autoregressive 121-frame windows. Frames 0..N-1 of its output are kept. See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.api import GenerationRequest
from gac_bench.registry import register_method

from baselines.gen3c import convert
from baselines.upstream import files
from baselines.upstream.chunking import Chunk, plan_single
from baselines.upstream.method import ClipContext, UpstreamConfig, UpstreamInfo, UpstreamMethod
from baselines.upstream.scale import scale_spec
from baselines.upstream.transforms import NativeResolution

INTRINSICS_MODES = ("harness", "moge")


@dataclass
class Gen3cConfig(UpstreamConfig):
    scale_policy: str = "auto"  # auto | fixed | depth-median (see baselines/upstream/scale.py)
    translation_scale: float = 1.0  # used by scale_policy=fixed
    intrinsics: str = "harness"  # harness: cache built from MoGe depth with the harness K; moge: MoGe's K throughout
    num_steps: int = 35
    guidance: float = 1.0
    fps: int = 24
    prompt: str = ""
    offload: bool = True  # all of GEN3C's --offload_* flags (peak ~43 GB instead of ~60 GB)
    disable_prompt_encoder: bool = False  # skip loading T5-11B (the prompt is then not encoded)


@register_method("gen3c")
class Gen3cMethod(UpstreamMethod):
    summary = "GEN3C (Cosmos 7B + 3D cache from MoGe depth) via its official code"
    version = "1"
    uses_dataset_depth = True  # only for the depth-median translation scale
    Config = Gen3cConfig
    upstream = UpstreamInfo(
        name="GEN3C",
        repository="https://github.com/nv-tlabs/GEN3C",
        branch="main",
        commit="2b50e0b497f76ace046636398dfab23edf4c43de",
        licence="Apache-2.0 (code); GEN3C-Cosmos-7B weights under the NVIDIA Open Model License",
    )
    env_prefix = "GAC_BENCH_GEN3C"
    repo_marker = "cosmos_predict1/diffusion/inference/gen3c_single_image.py"
    ckpt_kind = "dir"
    ckpt_what = "checkpoints folder (scripts/download_gen3c_checkpoints.py output)"
    ckpt_marker = "Gen3C-Cosmos-7B"
    worker_script = Path(__file__).with_name("upstream_worker.py")

    def worker_args(self) -> list[str]:
        c = self.config
        args = ["--num-steps", str(c.num_steps), "--guidance", str(c.guidance), "--fps", str(c.fps)]
        args += ["--offload"] if c.offload else []
        return args + (["--disable-prompt-encoder"] if c.disable_prompt_encoder else [])

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        if self.config.intrinsics not in INTRINSICS_MODES:
            raise ValueError(f"intrinsics={self.config.intrinsics!r}: expected one of {', '.join(INTRINSICS_MODES)}")
        native = NativeResolution((request.width, request.height), convert.NATIVE_WH, self.config.frames_back)
        K_native = native.to_native.K(request.K)
        w2c, Ks = convert.gen3c_cameras(request.c2w, K_native)
        count = convert.frame_count(request.num_frames)
        return ClipContext(
            request=request,
            up_dir=up_dir,
            native=native,
            image_native=native.to_native.image(request.reference_image),
            K_native=K_native,
            chunks=plan_single(request.num_frames, count),
            scale=scale_spec(self.config.scale_policy, self.config.translation_scale, request.reference_depth),
            record={
                "frame_rule": f"{request.num_frames} poses padded to {count} (120k+1)",
                "intrinsics": self.config.intrinsics,
            },
            data={"w2c": w2c, "K": Ks},
        )

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        folder = ctx.chunk_dir(chunk)
        idx = np.asarray(chunk.pose_index)
        image = self.write_condition(ctx, chunk, condition)
        upstream = {
            "image": str(image) if image else None,
            "w2c": str(files.write_npy(folder / "w2c_opencv_rel.npy", ctx.data["w2c"][idx])),
            "K": str(files.write_npy(folder / "K_1280x704.npy", ctx.data["K"][idx])),
            "translations": "harness units; the worker multiplies them by the factor of harness.scale",
            "height": convert.NATIVE_WH[1],
            "width": convert.NATIVE_WH[0],
            "num_video_frames": chunk.frames_per_call,
            "intrinsics": self.config.intrinsics,
            "fps": self.config.fps,
            "prompt": self.config.prompt,
        }
        job = {"harness": self.harness_section(ctx, chunk, image), "upstream": upstream}
        return files.write_json(folder / "job.json", job)
