"""``voyager``: HunyuanWorld-Voyager (Tencent-Hunyuan/HunyuanWorld-Voyager) through a resident worker.

Per clip: the reference is brought to 768x512 (K follows); its depth (MoGe in the worker, or the dataset's)
is unprojected with the harness K and rendered along the trajectory into Voyager's condition files. Upstream's
pipeline returns 45 frames per 49-pose call (it drops decoded frames 0-3), so each call holds its anchor pose for 4
positions, then 45 new poses (``plan_held``; last chunk padded by repeating pose N-1). Chunk k>0 starts from
the RGB and depth Voyager generated at the shared pose: that depth is de-normalised with the frame's
``depth_range``, unprojected and merged into the point cloud before rendering the chunk. See README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench import cameras
from gac_bench.api import GenerationRequest, UnsupportedRequest
from gac_bench.registry import register_method

from baselines.upstream import files
from baselines.upstream.chunking import Chunk, plan_held, stitch
from baselines.upstream.conventions import median_positive, scale_translations, w2c_relative_to_first
from baselines.upstream.method import ClipContext, UpstreamConfig, UpstreamInfo, UpstreamMethod
from baselines.upstream.scale import resolve_factor, scale_spec
from baselines.upstream.transforms import NativeResolution
from baselines.voyager import convert, render
from baselines.voyager.condition import write_condition_folder

DEPTH_SOURCES = ("moge", "dataset")


@dataclass
class VoyagerConfig(UpstreamConfig):
    depth_source: str = "moge"  # moge: Voyager's own estimator (in the worker); dataset: the clip's depth
    scale_policy: str = "auto"  # with depth_source=moge: auto | fixed | depth-median
    translation_scale: float = 1.0  # used by scale_policy=fixed
    prompt: str = "A realistic, static scene."  # Voyager needs a text prompt; prompts_file overrides it per clip
    prompts_file: Path | None = None  # JSON {clip_id: caption}
    infer_steps: int = 50
    flow_shift: float = 7.0
    embedded_cfg_scale: float = 6.0
    cpu_offload: bool = False
    context_block: bool = False


@register_method("voyager")
class VoyagerMethod(UpstreamMethod):
    summary = "HunyuanWorld-Voyager (RGB-D video diffusion on point-cloud renders) via its official code"
    version = "1"
    uses_dataset_depth = True  # for the depth-median scale, and as the depth with depth_source=dataset
    Config = VoyagerConfig
    upstream = UpstreamInfo(
        name="Voyager",
        repository="https://github.com/Tencent-Hunyuan/HunyuanWorld-Voyager",
        branch="main",
        commit="23471a21725b350c41554654859c90ea1893f39a",
        licence="Tencent HunyuanWorld-Voyager Community License (not licensed in the EU, the UK and South Korea)",
    )
    env_prefix = "GAC_BENCH_VOYAGER"
    repo_marker = "sample_image2video.py"
    ckpt_kind = "dir"
    ckpt_what = "checkpoints folder (MODEL_BASE of huggingface tencent/HunyuanWorld-Voyager)"
    ckpt_marker = "Voyager/transformers/mp_rank_00_model_states.pt"
    worker_script = Path(__file__).with_name("upstream_worker.py")
    bulky_dirs = ("output", "input")  # generated frames and the 49 condition renders of each chunk

    def worker_args(self) -> list[str]:
        c = self.config
        args = ["--infer-steps", str(c.infer_steps), "--flow-shift", str(c.flow_shift),
                "--embedded-cfg-scale", str(c.embedded_cfg_scale)]
        return args + (["--cpu-offload"] if c.cpu_offload else []) + (["--context-block"] if c.context_block else [])

    def prompt_for(self, clip_id: str) -> str:
        if self.config.prompts_file:
            prompts = json.loads(Path(self.config.prompts_file).read_text())
            if clip_id in prompts:
                return str(prompts[clip_id])
        return self.config.prompt

    # ------------------------------------------------------------------------------------------ conversion

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        if self.config.depth_source not in DEPTH_SOURCES:
            raise ValueError(f"depth_source={self.config.depth_source!r}: expected one of {', '.join(DEPTH_SOURCES)}")
        native = NativeResolution((request.width, request.height), convert.NATIVE_WH, self.config.frames_back)
        if self.config.depth_source == "dataset":
            if request.reference_depth is None:
                raise UnsupportedRequest(
                    "depth_source=dataset needs the dataset depth of the reference view; this clip has none"
                )
            scale = {"policy": "dataset depth (renders and cameras in harness units)", "factor": 1.0}
        else:
            scale = scale_spec(self.config.scale_policy, self.config.translation_scale, request.reference_depth)
        return ClipContext(
            request=request,
            up_dir=up_dir,
            native=native,
            image_native=native.to_native.image(request.reference_image),
            K_native=native.to_native.K(request.K),
            chunks=plan_held(request.num_frames, convert.FRAMES_PER_CALL, hold=convert.UPSTREAM_DROPPED_FRAMES),
            scale=scale,
            record={"depth_source": self.config.depth_source, "prompt": self.prompt_for(request.clip_id)},
            data={"w2c_rel": w2c_relative_to_first(request.c2w)},
        )

    def reference_depth(self, ctx: ClipContext) -> np.ndarray | None:
        """z-depth of the reference at 768x512: the dataset's, or MoGe's from the worker (None in a dry run)."""
        if self.config.depth_source == "dataset":
            depth = ctx.native.to_native.image(ctx.request.reference_depth.astype(np.float32), nearest=True)
            return depth.astype(np.float64)
        if self.config.dry_run:
            return None
        image = files.write_png(ctx.up_dir / "depth" / "reference_768x512.png", ctx.image_native)
        job = files.write_json(ctx.up_dir / "depth" / "job.json", {
            "harness": {"clip_id": ctx.request.clip_id},
            "image": str(image),
            "output": str(ctx.up_dir / "depth" / "moge_depth.npy"),
        })
        reply = self._worker.call({"op": "depth", "job": str(job)}, log_path=ctx.up_dir / "worker.log")
        return np.load(reply["depth"], allow_pickle=False).astype(np.float64)

    def translation_factor(self, ctx: ClipContext, depth: np.ndarray) -> float:
        if ctx.scale["policy"] == "depth-median":
            return resolve_factor(ctx.scale, median_positive(depth))
        return float(ctx.scale["factor"])

    # ------------------------------------------------------------------------------------------ chunks

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        """job.json and, when the point cloud is known, the rendered condition folder of one chunk."""
        folder = ctx.chunk_dir(chunk)
        idx = np.asarray(chunk.pose_index)
        image = self.write_condition(ctx, chunk, condition)
        factor = ctx.data.get("factor")
        cloud = ctx.data.get("cloud")
        files.write_npy(folder / "w2c_opencv_rel_harness_units.npy", ctx.data["w2c_rel"][idx])
        rendered = cloud is not None and condition is not None
        if rendered:
            w2cs = scale_translations(ctx.data["w2c_rel"][idx], factor)
            ctx.data.setdefault("ranges", {})[chunk.index] = write_condition_folder(
                folder / "input", condition, *cloud, w2cs, ctx.K_native, convert.NATIVE_WH
            )
        W, H = convert.NATIVE_WH
        upstream = {
            "input_path": str(folder / "input") if rendered else None,
            "renders": "input/ (create_input.py layout)" if rendered else "not written: they need "
            + ("MoGe depth (worker)" if cloud is None else "the previous chunk's output"),
            "prompt": self.prompt_for(ctx.request.clip_id),
            "height": H, "width": W, "video_length": chunk.frames_per_call,
            "translation_factor": factor,
        }
        later = [c for c in ctx.chunks if c.index == chunk.index + 1]
        # the next call starts from this call's frame at its first pose: ask for that frame's generated depth
        drop = convert.UPSTREAM_DROPPED_FRAMES
        want = [chunk.pose_index.index(later[0].pose_index[0]) - drop] if later else []  # index among returned frames
        harness = dict(self.harness_section(ctx, chunk, image), want_depth=want, upstream_drops_leading=drop)
        return files.write_json(folder / "job.json", {"harness": harness, "upstream": upstream})

    def grow_cloud(self, ctx: ClipContext, chunk: Chunk, frames: np.ndarray) -> None:
        """Add the generated frame at chunk k's first pose (RGB + de-normalised depth) to the point cloud."""
        prev = ctx.chunks[chunk.index - 1]
        local = prev.pose_index.index(chunk.pose_index[0])  # position in the call; returned frames start at hold
        returned = local - convert.UPSTREAM_DROPPED_FRAMES
        d_norm = np.load(ctx.chunk_dir(prev) / "output" / f"depth_{returned:04d}.npy", allow_pickle=False)
        depth_z = render.denormalise_depth(d_norm, ctx.data["ranges"][prev.index][local])
        w2c = scale_translations(ctx.data["w2c_rel"][chunk.pose_index[0]], ctx.data["factor"])
        c2w = cameras.invert_rigid(w2c)
        points, colors = render.unproject(depth_z, ctx.K_native, c2w, frames[local])
        old_points, old_colors = ctx.data["cloud"]
        ctx.data["cloud"] = (np.concatenate([old_points, points]), np.concatenate([old_colors, colors]))

    # ------------------------------------------------------------------------------------------ generate

    def generate(self, request: GenerationRequest) -> np.ndarray:
        up_dir = Path(request.scratch_dir) / "upstream"
        up_dir.mkdir(parents=True, exist_ok=True)
        ctx = self.prepare(request, up_dir)
        self._record_clip(ctx)
        if self._worker is None and not self.config.dry_run:
            self.setup()
        depth = self.reference_depth(ctx)
        if depth is not None:
            ctx.data["factor"] = self.translation_factor(ctx, depth)
            ctx.data["cloud"] = render.unproject(depth, ctx.K_native, np.eye(4), ctx.image_native)
        if self.config.dry_run:
            return self._dry_run(ctx)
        outputs = []
        for chunk in ctx.chunks:
            if chunk.index > 0:
                self.grow_cloud(ctx, chunk, outputs[-1])
            condition = self.condition_for(ctx, chunk, outputs)
            job = self.write_chunk(ctx, chunk, condition)
            self.fresh_output(ctx, chunk)
            reply = self._worker.call({"op": "generate", "job": str(job)}, log_path=up_dir / "worker.log")
            outputs.append(self.align_output(chunk, self.read_output(ctx, chunk, reply), condition))
        self._record_scale(ctx, [ctx.data["factor"]])
        frames = ctx.native.frames_to_protocol(stitch(ctx.chunks, outputs, request.num_frames))
        self.clean_up(ctx)
        return frames

    @staticmethod
    def align_output(chunk: Chunk, frames: np.ndarray, condition: np.ndarray) -> np.ndarray:
        """Upstream's 45 frames are the call's positions 4..48 (its new poses); positions 0..3 hold the anchor pose,
        whose frame is the condition image: put it there so frame i of the result is position i of the call."""
        drop = convert.UPSTREAM_DROPPED_FRAMES
        if len(frames) != chunk.frames_per_call - drop:
            raise RuntimeError(
                f"Voyager returned {len(frames)} frames for chunk {chunk.index}; its latent_concat pipeline returns "
                f"{chunk.frames_per_call - drop} for {chunk.frames_per_call} condition frames (see "
                "baselines/voyager/README.md, 'Frame count')"
            )
        held = np.repeat(condition[None].astype(frames.dtype), drop, axis=0)
        return np.concatenate([held, frames])

    def _dry_run(self, ctx: ClipContext) -> np.ndarray:
        if "factor" in ctx.data:
            self._record_scale(ctx, [ctx.data["factor"]])
        return super()._dry_run(ctx)

