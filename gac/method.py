"""``gac``: the GaC model as a gac-bench method.

    gac-bench run --method gac --option checkpoint=PATH [--option steps=50 --option context_size=4 ...]

PATH is a folder written by ``python -m gac.train`` or ``python -m gac.convert_bagel`` (config.json +
model.safetensors; its VAE folder is named in config.json or given with ``vae=``). Lengths are normalised by the
scene scale: the median of the dataset's reference depth when the split has depth (synthroom), else, with a
warning, the largest camera distance from the reference along the trajectory (a weaker, trajectory-dependent
guess of the unit the model was trained in).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gac_bench import cameras
from gac_bench.api import GenerationRequest, Method, MethodUnavailable
from gac_bench.registry import register_method

log = logging.getLogger(__name__)


@dataclass
class GaCOptions:
    checkpoint: str = ""
    """Folder with config.json and model.safetensors."""
    vae: str = ""
    """Override the VAE folder named by the checkpoint (a diffusers AutoencoderKL folder)."""
    steps: int = 50
    """Euler steps (model evaluations) per generated item."""
    shift: float = 3.0
    """Timestep shift of the sampling grid (Bagel's inference default)."""
    context_size: int = 4
    """Context frames retrieved per target frame (training used 1-4)."""
    min_overlap: float = 0.05
    """Retrieval: frames whose frustum overlap with the target is below this are not used."""
    near: float = 0.25
    """Retrieval: nearest sampled depth in scene-scale units."""
    far: float = 4.0
    """Retrieval: farthest sampled depth in scene-scale units."""
    keep_recent: bool = False
    """Retrieval: always keep the most recent frame. Off by default: on held-out synthroom-val rooms, letting overlap
    alone decide (besides the reference) gave +2.1 dB on the return half and +4.0 dB at the loop frame of
    forth-and-back, +0.6 dB on the dataset trajectory (results/gac/README.md)."""
    context_order: str = "time"
    """Retrieval: "time" (as in training) or "overlap" (best-overlapping frame last, the pose anchor)."""
    emit_geometry: bool = False
    """Also generate the geometry of every view (variant #1) and save it to scratch_dir/geometry."""
    geometry_after_image: bool = True
    """With ``emit_geometry``: each frame's geometry right after its image, retrieval unchanged. False (before
    2026-12-01): when the frame is next the newest context frame, which forces ``keep_recent`` (-0.62 dB on
    synthroom-val, results/gac/runs_2026-12-01_emit_geometry/)."""
    reencode: bool = True
    """Re-encode generated views from pixels before they become context (Bagel's flow)."""
    context_t: float = 0.0
    """Flow time at which generated views enter the context, noise-augmented as in training's context noise and told
    so (the reference stays clean); 0 = clean. 0.2 helped on held-out rooms at 12 steps and did not carry over to 50
    steps on synthroom (results/gac/README.md, "Noise-augmented context"), so it is an option, not the default."""
    compile: bool = True
    """torch.compile the unmasked passes on CUDA (tens of seconds once per process; ignored on CPU)."""
    dtype: str = "auto"
    """fp32, bf16, or auto (bf16 on CUDA, fp32 on CPU)."""
    fold_cga: bool = True
    """Fold CGA's Linear2 into the query projection for sampling (the same function up to rounding; faster)."""
    fp8: bool = False
    """FP8 GEMMs in the decoder layers (Hopper GPUs; not exact: benchmarks/gac_throughput.md gives the deviation)."""


SHIPPED_CHECKPOINT = Path(__file__).parent / "weights" / "synthroom"
SHIPPED_SIZE_WH = (256, 144)  # synthroom's frames, what the shipped model was trained on


def shipped_checkpoint() -> Path:
    """The checkpoint used when no ``checkpoint`` option is given: the synthroom model committed with the package."""
    if (SHIPPED_CHECKPOINT / "config.json").is_file():
        return SHIPPED_CHECKPOINT
    raise MethodUnavailable(
        f"gac needs a checkpoint: --option checkpoint=PATH (a folder with config.json and model.safetensors from "
        f"python -m gac.train, gac.export or gac.convert_bagel); this checkout ships none at {SHIPPED_CHECKPOINT}. "
        "Train one on a GPU with `bash benchmarks/gac_synthroom_plan.sh nogrid1` (gac/README.md)"
    )


@register_method("gac")
class GaCMethod(Method):
    summary = "Geometry-as-Context (this project's re-implementation): autoregressive MoT with camera gated attention."
    version = "1"
    requires = ("diffusers", "safetensors")
    uses_dataset_depth = True
    Config = GaCOptions

    def __init__(self, options=None, device: str = "cpu"):
        super().__init__(options, device)
        self.rollout = None
        self._last_scale = 1.0
        self._estimated = False
        self._warned_domain = False
        from gac.sample import check_context_t

        check_context_t(self.config.context_t)  # a bad value fails here, before any clip

    def setup(self) -> None:
        from gac.checkpoint import load_checkpoint, resolve_vae_path
        from gac.retrieval import RetrievalConfig
        from gac.sample import Rollout, SampleConfig
        from gac.vae import load_vae

        opt = self.config
        folder = self._checkpoint_folder()
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(self.device if self.device != "auto" else auto)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(
            opt.dtype, torch.bfloat16 if device.type == "cuda" else torch.float32
        )
        try:
            model, config = load_checkpoint(folder, device, dtype)
        except FileNotFoundError as exc:
            raise MethodUnavailable(str(exc)) from None
        except ValueError as exc:
            raise MethodUnavailable(f"gac: mismatched checkpoint: {exc}") from None
        try:
            codec = load_vae(resolve_vae_path(folder, config, opt.vae or None), device)
        except (FileNotFoundError, ValueError) as exc:
            raise MethodUnavailable(f"gac: {exc}") from None
        if codec.latent_channels != model.cfg.latent_channels:
            raise MethodUnavailable(
                f"gac: the VAE has {codec.latent_channels} latent channels, the checkpoint expects "
                f"{model.cfg.latent_channels}"
            )
        data = config.get("data", {})
        retrieval = RetrievalConfig(
            context_size=opt.context_size, near=opt.near, far=opt.far, min_overlap=opt.min_overlap,
            keep_recent=opt.keep_recent, order=opt.context_order,
        )  # fmt: skip
        sample_cfg = SampleConfig(
            steps=opt.steps, shift=opt.shift, grid=data.get("grid", True), variant=data.get("variant", "geometry"),
            geometry=data.get("geometry", "depth"), emit_geometry=opt.emit_geometry,
            geometry_after_image=opt.geometry_after_image, reencode=opt.reencode, context_t=opt.context_t,
            compile=opt.compile, fold_cga=opt.fold_cga, fp8=opt.fp8, pose_anchor=data.get("pose_anchor", "first"), retrieval=retrieval,
        )  # fmt: skip
        self.rollout = Rollout(model, codec, sample_cfg, device)
        log.info("gac: loaded %s (%s, step %s) on %s", folder, data.get("variant"), config.get("step"), device)

    def _checkpoint_folder(self) -> Path:
        """The ``checkpoint`` option, else the shipped synthroom model (MethodUnavailable when there is none)."""
        return Path(self.config.checkpoint).expanduser() if self.config.checkpoint else shipped_checkpoint()

    def weight_files(self) -> list[Path]:
        """The checkpoint's weights and its VAE's (their hashes key stored frames)."""
        from gac.checkpoint import resolve_vae_path

        opt = self.config
        try:
            folder = self._checkpoint_folder()
            config = json.loads((folder / "config.json").read_text())
            vae = resolve_vae_path(folder, config, opt.vae or None)
        except (MethodUnavailable, OSError, ValueError):
            return []  # setup() says what is missing
        return [folder / "model.safetensors", vae / "diffusion_pytorch_model.safetensors"]

    def _state_expected_time(self, H: int, W: int, num_frames: int) -> None:
        """Say once, before the first long rollout, how long one takes on this device."""
        if self._estimated:
            return
        self._estimated = True
        seconds = self.rollout.expected_seconds(H, W, num_frames)
        device = self.rollout.device.type
        log.warning("gac: expect about %.0f s per %d-frame trajectory on %s (%d steps per item; --option steps=N "
                    "trades quality for speed)", seconds, num_frames, device, self.config.steps)  # fmt: skip
        self.info["expected_seconds"] = round(seconds, 1)

    def _scale(self, request: GenerationRequest) -> float:
        from gac.geometry import scene_scale

        if request.reference_depth is not None:
            return scene_scale(request.reference_depth)
        rel = cameras.relative_to_first(request.c2w)
        dist = float(np.linalg.norm(rel[:, :3, 3], axis=-1).max())
        warnings.warn("gac: no reference depth; scene scale taken from the trajectory extent", stacklevel=2)
        return dist if dist > 1e-9 else 1.0

    def generate(self, request: GenerationRequest) -> np.ndarray:
        if self.rollout is None:
            self.setup()
        H, W, K = request.height, request.width, np.asarray(request.K, dtype=np.float64)
        k = self.rollout.model.cfg.pixels_per_token
        Hm, Wm = max(k, round(H / k) * k), max(k, round(W / k) * k)
        ref = request.reference_image
        if (Hm, Wm) != (H, W):  # the token grid needs multiples of 16 pixels: resize in, resize back out
            ref = np.asarray(Image.fromarray(ref).resize((Wm, Hm), Image.BICUBIC))
            K = cameras.K_after_resize(K, (W, H), (Wm, Hm))
        self._last_scale = self._scale(request)
        self._warn_if_off_domain(W, H)
        self._state_expected_time(Hm, Wm, request.num_frames)
        result = self.rollout.run(ref, K, request.c2w, self._last_scale, seed=request.seed,
                                  on_frames=request.report_progress)  # fmt: skip
        frames = result.frames
        per_view = result.seconds / max(1, len(frames) - 1)
        self.info.update(seconds=round(result.seconds, 3), seconds_per_view=round(per_view, 4),
                         contexts=result.contexts, scene_scale=self._last_scale)  # fmt: skip
        if (Hm, Wm) != (H, W):
            frames = np.stack([np.asarray(Image.fromarray(f).resize((W, H), Image.BICUBIC)) for f in frames])
        frames[0] = request.reference_image
        if result.depth is not None:
            self._save_geometry(request.scratch_dir, result.depth)
        return frames

    def _warn_if_off_domain(self, width: int, height: int) -> None:
        """The shipped model knows synthroom's 256x144 rooms only: say so once when it is asked for anything else."""
        if self.config.checkpoint or self._warned_domain or (width, height) == SHIPPED_SIZE_WH:
            return
        self._warned_domain = True
        log.warning("gac: no checkpoint option, so the shipped synthroom model (trained on %dx%d procedural rooms) "
                    "generates these %dx%d frames; for other data give --option checkpoint=DIR",
                    *SHIPPED_SIZE_WH, width, height)  # fmt: skip

    @staticmethod
    def _save_geometry(scratch: Path, depth: np.ndarray) -> None:
        """Generated z-depth per frame: geometry/0000.npy (float32, input units) + a preview png."""
        out = Path(scratch) / "geometry"
        out.mkdir(parents=True, exist_ok=True)
        for i, d in enumerate(depth):
            np.save(out / f"{i:04d}.npy", d.astype(np.float32))
            inv = 1.0 / np.maximum(d, 1e-6)
            img = (255 * (inv - inv.min()) / max(float(np.ptp(inv)), 1e-9)).astype(np.uint8)
            Image.fromarray(img).save(out / f"{i:04d}.png")
