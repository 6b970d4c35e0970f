"""``seva``: Stable Virtual Camera (Stability-AI/stable-virtual-camera) through a resident worker.

Per clip: the reference is brought to 1024x576 (K follows); one ``img2trajvid`` call with frame 0 as the
single input and frames 1..N-1 as targets (SEVA's own two-pass procedure covers any number of targets, 21
frames per forward pass). The scene folder of demo.py is written too, so the call can be re-run by hand.
See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.api import GenerationRequest
from gac_bench.registry import register_method

from baselines.seva import convert
from baselines.upstream import files
from baselines.upstream.chunking import Chunk, plan_single
from baselines.upstream.method import ClipContext, UpstreamConfig, UpstreamInfo, UpstreamMethod
from baselines.upstream.transforms import NativeResolution

SCENE = "seva_scene"


@dataclass
class SevaConfig(UpstreamConfig):
    version: float = 1.1  # model version: 1.1 (modelv1.1.safetensors) or 1.0 (model.safetensors)
    camera_scale: float = 2.0  # SEVA's translation normalisation (the harness scale is normalised away)
    cfg: float = 4.0  # first-pass guidance; the second pass uses 2.0 (single input), as SEVA's demo does
    num_steps: int = 50
    chunk_strategy: str = "interp"


@register_method("seva")
class SevaMethod(UpstreamMethod):
    summary = "Stable Virtual Camera v1.1 (img2trajvid, 1 input + N-1 targets) via its official code"
    version = "1"
    Config = SevaConfig
    upstream = UpstreamInfo(
        name="SEVA",
        repository="https://github.com/Stability-AI/stable-virtual-camera",
        branch="main",
        commit="3629451f88d44a86bf18389c0bb3e9221e911c6a",
        licence="Stability AI Non-Commercial License (code, weights and outputs: research/non-commercial use)",
    )
    env_prefix = "GAC_BENCH_SEVA"
    repo_marker = "seva/eval.py"
    ckpt_kind = "dir"
    ckpt_what = "weights folder (HF stabilityai/stable-virtual-camera: modelv1.1.safetensors)"
    ckpt_marker = "modelv1.1.safetensors"
    worker_script = Path(__file__).with_name("upstream_worker.py")

    def weight_name(self) -> str:
        return "modelv1.1.safetensors" if self.config.version == 1.1 else "model.safetensors"

    def worker_args(self) -> list[str]:
        return ["--version", str(self.config.version), "--weight-name", self.weight_name()]

    def sampling_options(self, seed: int) -> dict:
        """``version_dict["options"]`` as SEVA's demo GUI sets them for img2trajvid with one input."""
        return {
            "chunk_strategy": self.config.chunk_strategy,
            "video_save_fps": 30.0,
            "beta_linear_start": 5e-6,
            "log_snr_shift": 2.4,
            "guider_types": [1, 2],
            "cfg": [float(self.config.cfg), 2.0],
            "camera_scale": float(self.config.camera_scale),
            "num_steps": int(self.config.num_steps),
            "cfg_min": 1.2,
            "encoding_t": 1,
            "decoding_t": 1,
            "replace_or_include_input": True,  # frame 0 (the input) is part of the output
            "seed": int(seed),
        }

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        native = NativeResolution((request.width, request.height), convert.NATIVE_WH, self.config.frames_back)
        K_native = native.to_native.K(request.K)
        return ClipContext(
            request=request,
            up_dir=up_dir,
            native=native,
            image_native=native.to_native.image(request.reference_image),
            K_native=K_native,
            chunks=plan_single(request.num_frames, request.num_frames),
            scale={"policy": "normalised by SEVA", "camera_scale": float(self.config.camera_scale)},
            record={"task": "img2trajvid", "input_ids": [0], "target_ids": f"1..{request.num_frames - 1}"},
            data={"c2w_rel": convert.seva_cameras(request.c2w)},
        )

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        folder = ctx.chunk_dir(chunk)
        image = self.write_condition(ctx, chunk, condition)
        c2w = ctx.data["c2w_rel"][np.asarray(chunk.pose_index)]
        Ks = np.broadcast_to(ctx.K_native, (len(c2w), 3, 3))
        scene = self.write_scene(folder / SCENE, ctx, c2w)
        W, H = convert.NATIVE_WH
        upstream = {
            "task": "img2trajvid",
            "image": str(image) if image else None,
            "c2w_opencv": str(files.write_npy(folder / "c2w_opencv_rel.npy", c2w)),
            "K": str(files.write_npy(folder / "K_1024x576.npy", Ks)),
            "input_indices": [0],
            "H": H, "W": W, "T": 21,
            "use_traj_prior": True,
            "options": self.sampling_options(ctx.request.seed),
            "scene_folder": str(scene),
        }
        job = {"harness": self.harness_section(ctx, chunk, image), "upstream": upstream}
        return files.write_json(folder / "job.json", job)

    def write_scene(self, scene: Path, ctx: ClipContext, c2w: np.ndarray) -> Path:
        """demo.py's scene folder: images/, transforms.json (OpenGL c2w), train_test_split_1.json."""
        files.write_png(scene / "images" / "frame_0000.png", ctx.image_native)
        meta = convert.transforms_json(c2w, ctx.K_native, convert.NATIVE_WH, "images/frame_0000.png")
        files.write_json(scene / "transforms.json", meta)
        files.write_json(scene / "train_test_split_1.json", convert.split_json(len(c2w)))
        return scene

    def write_official(self, ctx: ClipContext) -> None:
        chunk_dir = ctx.chunk_dir(ctx.chunks[0])
        o = self.sampling_options(ctx.request.seed)
        W, H = convert.NATIVE_WH
        argv = [
            self._path_arg("python"), "demo.py", "--data_path", str(chunk_dir), "--data_items", SCENE,
            "--task", "img2trajvid", "--num_inputs", "1", "--H", str(H), "--W", str(W), "--T", "21",
            "--use_traj_prior", "True", "--replace_or_include_input", "True",
            "--chunk_strategy", o["chunk_strategy"], "--cfg", f"{o['cfg'][0]},{o['cfg'][1]}", "--guider_types", "1,2",
            "--camera_scale", str(o["camera_scale"]), "--num_steps", str(o["num_steps"]), "--seed", str(o["seed"]),
            "--version", str(self.config.version), "--pretrained_model_name_or_path", self._path_arg("ckpt"),
            "--weight_name", self.weight_name(),
        ]
        files.write_json(ctx.up_dir / "official_cli.json", {
            "cwd": self._path_arg("repo"),
            "chunk_00": argv,
            "note": "demo.py writes work_dirs/demo/img2trajvid/seva_scene/samples-rgb/*.png under the repository",
        })
