"""VGGT-1B pose estimator: all N frames of a clip in one forward pass (the paper splits' estimator).

Install (not on PyPI; the PyPI names ``vggt``-alikes are unofficial forks)::

    pip install git+https://github.com/facebookresearch/vggt

Weights (``facebook/VGGT-1B``, about 5 GB, CC-BY-NC-4.0; nothing is downloaded during a run), looked up in
this order:

1. ``weights_path=`` option: a ``model.safetensors`` (loaded with safetensors) or ``model.pt`` (loaded with
   ``torch.load(weights_only=True)``);
2. the local Hugging Face cache (``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``):
   ``models--facebook--VGGT-1B/snapshots/<rev>/model.safetensors`` or ``model.pt``; fill it on a machine with
   network with ``huggingface-cli download facebook/VGGT-1B model.safetensors``;
3. ``$GAC_BENCH_HOME/weights/VGGT-1B/model.safetensors`` or ``model.pt``.

Conventions (facebookresearch/vggt ``vggt/utils/pose_enc.py``, ``vggt/utils/rotation.py``,
``vggt/utils/load_fn.py``):

- preprocessing "crop" (upstream default): width 518, height ``round(H * 518 / W / 14) * 14`` (PIL bicubic,
  so the resize is slightly anisotropic), then a centre crop of the height to 518 when taller; float [0, 1];
  the model normalises with ImageNet statistics itself. :func:`vggt_crop_plan` / :func:`vggt_preprocess_crop`
  reimplement it on our uint8 frames, and :func:`K_from_vggt_input` maps intrinsics back to our resolution.
- pose encoding "absT_quaR_FoV", 9 numbers per frame: translation t (3) and quaternion (4, x y z w, scalar
  last) of the camera-from-world (w2c) transform x_cam = R x_world + t in OpenCV axes, then fov_h, fov_w in
  radians with fy = (H/2) / tan(fov_h/2), fx = (W/2) / tan(fov_w/2) and the principal point at (W/2, H/2)
  of the network input. Frame 0 is the world frame; the scale is VGGT's normalised scale.
- precision: the aggregator runs under autocast (``dtype="bf16"``, upstream's choice on Ampere+ GPUs) or in
  plain fp32 (``dtype="fp32"``); the camera head always runs in fp32. The dtype is recorded in ``info``.

The pose decoding is done twice when the package is present, with ``vggt.utils.pose_enc`` and with
:func:`pose_encoding_to_w2c_K` here; a disagreement raises instead of silently changing conventions.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gac_bench.cameras import K_after_crop, K_after_resize, fov_x_rad, invert_rigid
from gac_bench.paths import gac_bench_home
from gac_bench.poses.base import EstimatorUnavailable, PoseEstimate, PoseEstimator, check_frames

HF_REPO = "facebook/VGGT-1B"
WEIGHT_FILES = ("model.safetensors", "model.pt")
INSTALL_HINT = "pip install git+https://github.com/facebookresearch/vggt"
TARGET_WIDTH = 518
PATCH = 14
DTYPES = ("bf16", "fp32")


# ---------------------------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class CropPlan:
    """VGGT "crop" preprocessing of one (height, width) image: resize to ``resized_hw``, keep rows ``top``..."""

    src_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    top: int
    out_hw: tuple[int, int]


def vggt_crop_plan(height: int, width: int, target: int = TARGET_WIDTH, patch: int = PATCH) -> CropPlan:
    """Sizes of VGGT's "crop" mode: width -> 518, height -> nearest multiple of 14, centre-cropped to <= 518."""
    new_h = int(round(height * (target / width) / patch)) * patch
    out_h = min(new_h, target)
    top = (new_h - target) // 2 if new_h > target else 0
    return CropPlan((height, width), (new_h, target), top, (out_h, target))


def vggt_preprocess_crop(frames: np.ndarray) -> tuple[np.ndarray, CropPlan]:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H', W') in [0, 1] exactly as VGGT's loader does for RGB files."""
    plan = vggt_crop_plan(frames.shape[1], frames.shape[2])
    (new_h, new_w), top, (out_h, _) = plan.resized_hw, plan.top, plan.out_hw
    out = np.empty((len(frames), 3, out_h, new_w), dtype=np.float32)
    for i, frame in enumerate(frames):
        resized = np.asarray(Image.fromarray(frame).resize((new_w, new_h), Image.Resampling.BICUBIC))
        out[i] = resized[top : top + out_h].transpose(2, 0, 1) / np.float32(255.0)
    return out, plan


def K_from_vggt_input(K_net: np.ndarray, plan: CropPlan) -> np.ndarray:
    """Pixel K at VGGT's input (after resize and crop) -> pixel K of the original frames (undo crop, then resize)."""
    K_resized = K_after_crop(K_net, 0.0, -plan.top)
    (new_h, new_w), (h, w) = plan.resized_hw, plan.src_hw
    return K_after_resize(K_resized, (new_w, new_h), (w, h))


def K_to_vggt_input(K: np.ndarray, plan: CropPlan) -> np.ndarray:
    """Pixel K of the original frames -> pixel K at VGGT's input."""
    (new_h, new_w), (h, w) = plan.resized_hw, plan.src_hw
    return K_after_crop(K_after_resize(K, (w, h), (new_w, new_h)), 0.0, plan.top)


# ---------------------------------------------------------------------------------------------- pose encoding


def quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    """Hamilton quaternions (..., 4) ordered x y z w (scalar last), any norm > 0 -> rotations (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)  # dividing by the squared norm makes unnormalised network outputs valid
    rows = [
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) -> unit quaternions (..., 4) x y z w with w >= 0 (Shepperd's branch choice)."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    out = np.empty((len(m), 4))
    for k, r in enumerate(m):
        tr = np.trace(r)
        candidates = [tr, r[0, 0], r[1, 1], r[2, 2]]
        i = int(np.argmax(candidates))  # the largest component is computed from a square root: best conditioned
        if i == 0:
            w = np.sqrt(1.0 + tr) / 2
            q = [(r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w), w]
        elif i == 1:
            x = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) / 2
            q = [x, (r[0, 1] + r[1, 0]) / (4 * x), (r[0, 2] + r[2, 0]) / (4 * x), (r[2, 1] - r[1, 2]) / (4 * x)]
        elif i == 2:
            y = np.sqrt(1.0 - r[0, 0] + r[1, 1] - r[2, 2]) / 2
            q = [(r[0, 1] + r[1, 0]) / (4 * y), y, (r[1, 2] + r[2, 1]) / (4 * y), (r[0, 2] - r[2, 0]) / (4 * y)]
        else:
            z = np.sqrt(1.0 - r[0, 0] - r[1, 1] + r[2, 2]) / 2
            q = [(r[0, 2] + r[2, 0]) / (4 * z), (r[1, 2] + r[2, 1]) / (4 * z), z, (r[1, 0] - r[0, 1]) / (4 * z)]
        q = np.asarray(q)
        out[k] = -q if q[3] < 0 else q
    return out.reshape(R.shape[:-2] + (4,))


def pose_encoding_to_w2c_K(pose_enc: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """VGGT "absT_quaR_FoV" encodings (..., 9) -> w2c (..., 4, 4) OpenCV and pixel K (..., 3, 3) at ``image_hw``."""
    enc = np.asarray(pose_enc, dtype=np.float64)
    h, w = image_hw
    w2c = np.zeros(enc.shape[:-1] + (4, 4))
    w2c[..., :3, :3] = quat_xyzw_to_matrix(enc[..., 3:7])
    w2c[..., :3, 3] = enc[..., :3]
    w2c[..., 3, 3] = 1.0
    K = np.zeros(enc.shape[:-1] + (3, 3))
    K[..., 0, 0] = (w / 2.0) / np.tan(enc[..., 8] / 2.0)
    K[..., 1, 1] = (h / 2.0) / np.tan(enc[..., 7] / 2.0)
    K[..., 0, 2] = w / 2.0
    K[..., 1, 2] = h / 2.0
    K[..., 2, 2] = 1.0
    return w2c, K


def w2c_K_to_pose_encoding(w2c: np.ndarray, K: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`pose_encoding_to_w2c_K` (the principal point is not encoded: VGGT assumes the centre)."""
    w2c = np.asarray(w2c, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    h, w = image_hw
    fov_h = 2.0 * np.arctan((h / 2.0) / K[..., 1, 1])
    fov_w = 2.0 * np.arctan((w / 2.0) / K[..., 0, 0])
    quat = matrix_to_quat_xyzw(w2c[..., :3, :3])
    return np.concatenate([w2c[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], axis=-1)


def pose_encoding_to_c2w_K(pose_enc: np.ndarray, plan: CropPlan) -> tuple[np.ndarray, np.ndarray]:
    """VGGT encodings (N, 9) of frames preprocessed with ``plan`` -> our c2w (N, 4, 4) and K at our resolution."""
    w2c, K_net = pose_encoding_to_w2c_K(pose_enc, plan.out_hw)
    return invert_rigid(w2c), K_from_vggt_input(K_net, plan)


# ---------------------------------------------------------------------------------------------- weights


def _hf_cache_candidates() -> list[Path]:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    found = []
    for name in WEIGHT_FILES:
        path = try_to_load_from_cache(HF_REPO, name)
        if isinstance(path, str):  # None or a "cached non-existence" sentinel otherwise
            found.append(Path(path))
    return found


def project_weight_dir() -> Path:
    return gac_bench_home() / "weights" / "VGGT-1B"


def find_vggt_weights(weights_path: str | os.PathLike | None = None) -> Path | None:
    """The weight file to load, or None. An explicit ``weights_path`` is the only place looked at when given;
    else ``GAC_BENCH_VGGT`` (a file, or a folder holding model.safetensors / model.pt), as documented; else the
    Hugging Face cache and the project folder."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        return path if path.is_file() else None
    override = os.environ.get("GAC_BENCH_VGGT")
    if override:
        path = Path(override).expanduser()
        if path.is_dir():
            path = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), path / WEIGHT_FILES[0])
        return path if path.is_file() else None
    for path in _hf_cache_candidates() + [project_weight_dir() / name for name in WEIGHT_FILES]:
        if path.is_file():
            return path
    return None


def missing_weights_message(weights_path: str | os.PathLike | None) -> str:
    if weights_path is not None:
        return (
            f"VGGT weights not found at weights_path={weights_path} "
            f"(want model.safetensors or model.pt of {HF_REPO})"
        )
    try:
        from huggingface_hub.constants import HF_HUB_CACHE as cache
    except ImportError:
        cache = "~/.cache/huggingface/hub"
    return (
        f"VGGT-1B weights not found: put model.safetensors (or model.pt) of {HF_REPO} in the Hugging Face cache "
        f"({cache}/models--facebook--VGGT-1B/snapshots/<revision>/; on a machine with network: "
        f"`huggingface-cli download {HF_REPO} model.safetensors`) or in {project_weight_dir()}/, "
        f"or pass weights_path=/path/to/model.safetensors"
    )


def load_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------- estimator


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vggt")
    except PackageNotFoundError:
        return "unknown"


class VggtEstimator(PoseEstimator):
    """VGGT-1B camera head on all frames of a clip (aggregator + camera head; depth/point heads not run)."""

    name = "vggt"
    version = "1"

    def __init__(self, device: str = "cuda", dtype: str = "bf16", weights_path: str | None = None) -> None:
        super().__init__(device=device)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype = dtype
        self.weights_path = weights_path
        self._model = None
        self._weights_file: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": {"dtype": self.dtype, "weights_path": self.weights_path}}

    def check_available(self) -> str | None:
        try:
            import vggt  # noqa: F401
            from vggt.models.vggt import VGGT  # noqa: F401
        except ImportError as exc:
            return f"the vggt pose estimator needs the vggt package ({exc}): {INSTALL_HINT}"
        if find_vggt_weights(self.weights_path) is None:
            return missing_weights_message(self.weights_path)
        if str(self.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return f"the vggt pose estimator was asked for device={self.device!r} but torch sees no CUDA device"
        return None

    def _load(self):
        if self._model is None:
            import torch
            from vggt.models.vggt import VGGT

            path = find_vggt_weights(self.weights_path)
            if path is None:
                raise EstimatorUnavailable(missing_weights_message(self.weights_path))
            model = VGGT()
            model.load_state_dict(load_state_dict(path), strict=True)
            self._model = model.eval().to(torch.device(self.device))
            self._weights_file = path
        return self._model

    def _forward(self, images: np.ndarray):
        """(N, 3, H, W) float32 -> pose encodings (N, 9) float64 and the raw (1, N, 9) tensor; one sequence."""
        import torch

        model = self._load()
        device = torch.device(self.device)
        x = torch.from_numpy(images).to(device)[None]
        with torch.no_grad():
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.dtype == "bf16"):
                tokens, _ = model.aggregator(x)
            with torch.autocast(device_type=device.type, enabled=False):
                # the camera head runs in fp32 as upstream's VGGT.forward does; no-op for tokens already fp32
                tokens = [t if t.dtype == torch.float32 else t.float() for t in tokens]
                pose_enc = model.camera_head(tokens)[-1]
        return pose_enc[0].double().cpu().numpy(), pose_enc

    def _decode_check(self, pose_enc_torch, plan: CropPlan, w2c: np.ndarray, K_net: np.ndarray) -> float:
        """Max |difference| between the package's decoding and ours (raises when above 1e-4 relative)."""
        from vggt.utils.pose_enc import pose_encoding_to_extri_intri

        extri, intri = pose_encoding_to_extri_intri(pose_enc_torch.float(), plan.out_hw)
        extri = extri[0].double().cpu().numpy()
        intri = intri[0].double().cpu().numpy()
        def rel(a, b):
            return float((np.abs(a - b) / np.maximum(np.abs(b), 1.0)).max())

        diff = max(rel(extri, w2c[:, :3, :]), rel(intri, K_net))
        if not diff <= 1e-4:
            raise RuntimeError(
                f"vggt.utils.pose_enc disagrees with gac_bench's decoding by {diff:.3g}: conventions changed?"
            )
        return diff

    def estimate(self, frames: np.ndarray, K: np.ndarray | None = None) -> PoseEstimate:
        self.require_available()
        check_frames(frames, K)
        frames = np.asarray(frames)
        K = None if K is None else np.asarray(K, dtype=np.float64)
        import torch

        t0 = time.perf_counter()
        images, plan = vggt_preprocess_crop(frames)
        t1 = time.perf_counter()
        enc, enc_torch = self._forward(images)
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        w2c, K_net = pose_encoding_to_w2c_K(enc, plan.out_hw)
        decode_diff = self._decode_check(enc_torch, plan, w2c, K_net)
        c2w, K_out = invert_rigid(w2c), K_from_vggt_input(K_net, plan)
        registered = np.isfinite(c2w).all(axis=(1, 2)) & np.isfinite(K_out).all(axis=(1, 2))
        c2w[~registered], K_out[~registered] = np.nan, np.nan
        info = self._info(frames, K, K_out, plan, decode_diff, t1 - t0, t2 - t1)
        return PoseEstimate(c2w, K_out, registered, None, self.name, info)

    def _info(self, frames, K, K_out, plan: CropPlan, decode_diff: float, prep_s: float, fwd_s: float) -> dict:
        import torch

        width = frames.shape[2]
        fov_pred = [fov_x_rad(k, width) for k in K_out if np.isfinite(k).all()]
        return {
            "version": self.version,
            "dtype": self.dtype,
            "autocast": "bf16 aggregator, fp32 camera head" if self.dtype == "bf16" else "fp32 throughout",
            "preprocessing": {"mode": "crop", "resample": "PIL bicubic", **asdict(plan)},
            "vggt": _package_version(),
            "torch": torch.__version__,
            "device": (
                torch.cuda.get_device_name(self.device) if str(self.device).startswith("cuda") else str(self.device)
            ),
            "weights": str(self._weights_file),
            # TF32 changes "fp32" results on Ampere+; recorded rather than changed (global torch state)
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "decode_check_max_abs_diff": decode_diff,
            # WorldScore#15-style sanity log: predicted vs requested field of view
            "fov_x_pred_rad_mean": float(np.mean(fov_pred)) if fov_pred else None,
            "fov_x_request_rad": None if K is None else fov_x_rad(K, width),
            "timing": {"preprocess_s": prep_s, "forward_s": fwd_s},
        }
