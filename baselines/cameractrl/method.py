"""``cameractrl``: CameraCtrl on Stable Video Diffusion (hehao13/CameraCtrl, svd branch) through a resident worker.

Per clip: centre-crop/resize the reference to 576x320 (K follows), write one RealEstate10K-style pose txt per
chunk of 25 poses (14 for ``variant=svd``), chained with one shared pose, the last chunk padded by repeating
pose N-1; chunk k>0 is conditioned on the frame chunk k-1 generated at that shared pose. See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.api import GenerationRequest
from gac_bench.datasets.re10k import write_camera_file
from gac_bench.registry import register_method

from baselines.cameractrl import convert
from baselines.upstream import files
from baselines.upstream.chunking import Chunk, plan_chained
from baselines.upstream.method import ClipContext, UpstreamConfig, UpstreamInfo, UpstreamMethod
from baselines.upstream.requirements import Requirement
from baselines.upstream.transforms import NativeResolution

MODEL_CONFIGS = {
    "svdxt": "configs/train_cameractrl/svdxt_320_576_cameractrl.yaml",
    "svd": "configs/train_cameractrl/svd_320_576_cameractrl.yaml",
}


@dataclass
class CameraCtrlConfig(UpstreamConfig):
    svd: Path | None = None  # SVD(-xt) diffusers folder, else $GAC_BENCH_CAMERACTRL_SVD
    variant: str = "svdxt"  # svdxt: 25 frames per call (CameraCtrl_svdxt.ckpt); svd: 14 (CameraCtrl_svd.ckpt)
    translation_scale: float = 1.0  # harness units -> pose-file units (1.0 keeps RealEstate10K units)
    steps: int = 25
    min_guidance: float = 1.0
    max_guidance: float = 3.0
    xformers: bool = True


@register_method("cameractrl")
class CameraCtrlMethod(UpstreamMethod):
    summary = "CameraCtrl (SVD-xt, svd branch) via its official code in its own environment"
    version = "1"
    Config = CameraCtrlConfig
    upstream = UpstreamInfo(
        name="CameraCtrl",
        repository="https://github.com/hehao13/CameraCtrl",
        branch="svd",
        commit="1f9d8baeff66f6c60bb9848dfafcc667b3a22a28",
        licence="Apache-2.0 (code); SVD / SVD-xt weights under Stability AI's model licence",
    )
    env_prefix = "GAC_BENCH_CAMERACTRL"
    repo_marker = "inference.py"
    ckpt_what = "pose-adaptor checkpoint (CameraCtrl_svdxt.ckpt or CameraCtrl_svd.ckpt)"
    extra_requirements = (
        Requirement("svd", "GAC_BENCH_CAMERACTRL_SVD", "dir", "SVD(-xt) diffusers folder", "model_index.json"),
    )
    worker_script = Path(__file__).with_name("upstream_worker.py")

    @property
    def frames_per_call(self) -> int:
        if self.config.variant not in convert.FRAMES_PER_CALL:
            raise ValueError(f"variant={self.config.variant!r}: expected one of {', '.join(convert.FRAMES_PER_CALL)}")
        return convert.FRAMES_PER_CALL[self.config.variant]

    def worker_args(self) -> list[str]:
        args = ["--svd", self._path_arg("svd"), "--model-config", MODEL_CONFIGS[self.config.variant]]
        return args + (["--xformers"] if self.config.xformers else [])

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        native = NativeResolution((request.width, request.height), convert.NATIVE_WH, self.config.frames_back)
        K_native = native.to_native.K(request.K)
        K_norm, w2c = convert.pose_file_rows(request.c2w, K_native, convert.NATIVE_WH, self.config.translation_scale)
        ctx = ClipContext(
            request=request,
            up_dir=up_dir,
            native=native,
            image_native=native.to_native.image(request.reference_image),
            K_native=K_native,
            chunks=plan_chained(request.num_frames, self.frames_per_call, overlap=1),
            scale={"policy": "fixed", "factor": float(self.config.translation_scale)},
            record={"pose_file": "w2c relative to clip frame 0, translations x factor; K normalised at 576x320"},
            data={"K_norm": K_norm, "w2c": w2c},
        )
        return ctx

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        folder = ctx.chunk_dir(chunk)
        K_norm, w2c = ctx.data["K_norm"], ctx.data["w2c"]
        idx = np.asarray(chunk.pose_index)
        pose_file = folder / "pose.txt"
        folder.mkdir(parents=True, exist_ok=True)
        header = f"gac-bench {ctx.request.clip_id} chunk {chunk.index} (CameraCtrl ignores this line)"
        write_camera_file(pose_file, header, idx, K_norm[idx], w2c[idx])
        image = self.write_condition(ctx, chunk, condition)
        W, H = convert.NATIVE_WH
        upstream = {
            "trajectory_file": str(pose_file),
            "image": str(image) if image else None,
            "num_frames": chunk.frames_per_call,
            "image_width": W,
            "image_height": H,
            "original_pose_width": W,  # same aspect as the sample: CameraCtrl's focal fix is the identity
            "original_pose_height": H,
            "num_inference_steps": self.config.steps,
            "min_guidance_scale": self.config.min_guidance,
            "max_guidance_scale": self.config.max_guidance,
        }
        job = {"harness": self.harness_section(ctx, chunk, image), "upstream": upstream}
        return files.write_json(folder / "job.json", job)

    def write_official(self, ctx: ClipContext) -> None:
        """The first chunk as a call of the official ``inference.py`` (later chunks need generated frames)."""
        first = ctx.chunk_dir(ctx.chunks[0])
        prompts = {"image_paths": [str(first / "condition.png")], "captions": [ctx.request.clip_id]}
        prompt = files.write_json(first / "prompt.json", prompts)
        W, H = convert.NATIVE_WH
        argv = [
            self._path_arg("python"), "inference.py", "--out_root", str(first / "official_output"),
            "--image_height", str(H), "--image_width", str(W), "--num_frames", str(self.frames_per_call),
            "--ori_model_path", self._path_arg("svd"), "--pose_adaptor_ckpt", self._path_arg("ckpt"),
            "--num_inference_steps", str(self.config.steps),
            "--min_guidance_scale", str(self.config.min_guidance),
            "--max_guidance_scale", str(self.config.max_guidance),
            "--prompt_file", str(prompt), "--trajectory_file", str(first / "pose.txt"),
            "--original_pose_width", str(W), "--original_pose_height", str(H),
            "--model_config", MODEL_CONFIGS[self.config.variant], "--n_procs", "1", "--local-rank", "0",
        ]
        files.write_json(ctx.up_dir / "official_cli.json", {
            "cwd": self._path_arg("repo"),
            "chunk_00": argv,
            "note": "inference.py writes an mp4 (8 fps); later chunks start from the previous chunk's frame "
                    "at their first pose, so they can only be run after it",
        })
