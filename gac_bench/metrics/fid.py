"""FID and KID on Inception-v3 pool3 features (protocol paper-v1), pooled over every scored frame of a split.

Feature extractor (frozen; its identity, :func:`inception_extractor_id`, goes into every cache key):
torch-fidelity's ``FeatureExtractorInceptionV3`` with the standard TF-ported weights
``weights-inception-2015-12-05-6726825d.pth``, loaded from a local file only.

Input convention, exactly what happens to a frame:
  1. the caller passes uint8 RGB ``(N, H, W, 3)`` in [0, 255] at the evaluation resolution (640x352 for the
     paper splits) -- never floats: the [0,1]-float-into-a-uint8-metric mix-up is a known bug in other harnesses;
  2. :func:`inception_features` transposes to a uint8 tensor ``(B, 3, H, W)`` and hands it to the network
     unchanged (no scaling, no resize on our side);
  3. torch-fidelity casts to float32 (still 0..255), resizes to 299x299 with its TF1.x-compatible bilinear
     (``interpolate_bilinear_2d_like_tensorflow1x``, align_corners=False, no antialiasing -- the original TF FID
     behaviour; torchmetrics' ``FrechetInceptionDistance`` defaults to ``antialias=True`` instead, which gives
     slightly different numbers), then maps to [-1, 1] with ``(x - 128) / 128``;
  4. the 2048-d pool3 output is returned as float64 ``(N, 2048)``.

The runner stores each clip's features as ``fid_features.npy`` and pools all clips at the end
(:func:`pooled_fid_kid`): FID is computed once over the split, never per batch or per clip and then averaged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from gac_bench.weights import FID_INCEPTION, WeightsMissing, file_sha256

INCEPTION_FEATURE = "2048"  # pool3
INCEPTION_EXTRACTOR = "torch-fidelity/FeatureExtractorInceptionV3/pool3-2048/uint8-tf1x-bilinear-299"
FEATURES_FILE_NAME = "fid_features.npy"


def inception_extractor_id() -> str:
    """:data:`INCEPTION_EXTRACTOR` plus the installed torch-fidelity version (cache keys, split_metrics.json)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{INCEPTION_EXTRACTOR}@torch-fidelity-{version('torch-fidelity')}"
    except PackageNotFoundError:
        return f"{INCEPTION_EXTRACTOR}@torch-fidelity-absent"


# --- the network ----------------------------------------------------------------------------------------------


class InceptionPool3(torch.nn.Module):
    """Wraps torch-fidelity's extractor: uint8 ``(B, 3, H, W)`` in [0, 255] -> float32 ``(B, 2048)``."""

    def __init__(self, extractor: torch.nn.Module, weights_path: Path | None):
        super().__init__()
        self.extractor = extractor
        self.weights_path = weights_path

    def forward(self, x_uint8: torch.Tensor) -> torch.Tensor:
        (pool3,) = self.extractor(x_uint8)  # torch-fidelity returns one tensor per requested feature
        return pool3


def inception_weights_path(weights_path: str | Path | None = None) -> Path:
    """An explicit path, else ``$GAC_BENCH_INCEPTION``, else ``GAC_BENCH_HOME/weights/<file>``."""
    return Path(weights_path).expanduser() if weights_path is not None else FID_INCEPTION.path


def load_inception(device: str, weights_path: str | Path | None = None) -> torch.nn.Module:
    """The FID Inception network in eval mode on ``device``, from a local file. Never random, never downloads.

    Raises :class:`~gac_bench.weights.WeightsMissing` (one line: file, expected path, how to get it) when absent.
    """
    path = inception_weights_path(weights_path)
    if not path.is_file():
        raise WeightsMissing(FID_INCEPTION, _missing_message(path))
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity would unpickle the file itself without the weights_only restriction. Load it once with the
    # restricted unpickler (tensors and plain containers only, no code) and hand that state dict to the extractor.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a plain state dict (refused by torch.load(weights_only=True)): {exc}") from None
    with _serve_loaded(path, state):
        extractor = FeatureExtractorInceptionV3(
            "inception-v3-compat", [INCEPTION_FEATURE], feature_extractor_weights_path=str(path)
        )
    return InceptionPool3(extractor, path).to(device).eval()


class _serve_loaded:
    """While constructing torch-fidelity's extractor, its ``torch.load(path)`` returns the state dict already
    loaded safely instead of unpickling the file again; any other load is refused."""

    def __init__(self, path: Path, state: dict):
        self.path, self.state, self.calls = str(path), state, 0

    def __enter__(self):
        self.original = torch.load

        def load(f, *args, **kwargs):
            if str(f) != self.path:
                raise RuntimeError(f"unexpected torch.load({f!r}) while building the FID extractor")
            self.calls += 1
            return self.state

        torch.load = load
        return self

    def __exit__(self, *exc):
        torch.load = self.original
        return False


def _missing_message(path: Path) -> str:
    return (
        f"FID Inception weights {FID_INCEPTION.name} not found at {path}; on a machine with internet run "
        f"`mkdir -p {path.parent} && curl -L -o {path} {FID_INCEPTION.url}` and copy it here "
        f"(or set GAC_BENCH_INCEPTION to the file)"
    )


def inception_weights_sha256(weights_path: str | Path | None = None) -> str:
    """sha256 of the weights file in use; part of the reference-features cache key."""
    return file_sha256(inception_weights_path(weights_path))


# --- features -------------------------------------------------------------------------------------------------


def _check_frames(frames_uint8: np.ndarray) -> None:
    if not isinstance(frames_uint8, np.ndarray) or frames_uint8.dtype != np.uint8:
        got = getattr(frames_uint8, "dtype", type(frames_uint8))
        raise TypeError(
            f"inception_features takes uint8 RGB frames in [0, 255], got {got}"
            " (float [0,1] or [-1,1] frames would be silently misread by the network)"
        )
    if frames_uint8.ndim != 4 or frames_uint8.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames_uint8.shape}")


@torch.inference_mode()
def inception_features(
    model: torch.nn.Module, frames_uint8: np.ndarray, device: str, batch_size: int = 64
) -> np.ndarray:
    """Pool3 features of every frame: uint8 ``(N, H, W, 3)`` RGB in [0, 255] -> float64 ``(N, D)`` (D = 2048).

    The network receives uint8 ``(B, 3, H, W)`` tensors in [0, 255] at the frames' own resolution; the resize to
    299x299 and the mapping to [-1, 1] happen inside it (see the module docstring).
    """
    _check_frames(frames_uint8)
    chunks = []
    for start in range(0, len(frames_uint8), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(frames_uint8[start : start + batch_size]))
        batch = batch.permute(0, 3, 1, 2).contiguous().to(device)  # still uint8
        out = model(batch)
        chunks.append(out.detach().to("cpu", torch.float64).reshape(len(batch), -1).numpy())
    if not chunks:
        raise ValueError("no frames to extract features from")
    return np.concatenate(chunks, axis=0)


# --- distances ------------------------------------------------------------------------------------------------


def _mean_cov(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need (N >= 2, D) features, got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sym_sqrt_psd(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^{1/2}), float64.

    tr((A B)^{1/2}) is computed as the sum of sqrt(eigenvalues) of the symmetric PSD matrix A^{1/2} B A^{1/2}
    (same eigenvalues as A B), so no complex sqrtm and no eps fudge for singular covariances (N < D).
    """
    sqrt_a = _sym_sqrt_psd(cov_a)
    middle = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted (unbiased covariance) to two ``(N, D)`` feature sets."""
    mu_a, cov_a = _mean_cov(feats_a)
    mu_b, cov_b = _mean_cov(feats_b)
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3  # KID kernel: (x.y / d + 1)^3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    m = len(x)
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    off_xx = k_xx.sum() - np.trace(k_xx)
    off_yy = k_yy.sum() - np.trace(k_yy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid_from_features(
    feats_a: np.ndarray, feats_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, over random subsets. Returns (mean, std over subsets).

    ``subset_size`` is capped at the smaller set's size. Subsets are drawn without replacement exactly as
    torch-fidelity draws them (``np.random.RandomState(seed)``, an a-subset then a b-subset per round), so the
    result is deterministic and equals torch-fidelity's KID with ``rng_seed=seed`` on the same float64 features.
    """
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.RandomState(seed)  # torch-fidelity's sampler, for identical subsets
    mmds = [
        _mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(mmds)), float(np.std(mmds))


# --- per-clip feature files and pooling --------------------------------------------------------------------------


def save_features(path: Path, feats: np.ndarray) -> None:
    """Write ``(N, D)`` float64 features atomically (temp file + rename), as a plain .npy (no pickle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(feats, dtype=np.float64), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_features(path: Path) -> np.ndarray:
    feats = np.load(path, allow_pickle=False)
    if feats.ndim != 2:
        raise ValueError(f"{path}: expected (N, D) features, got shape {feats.shape}")
    return feats.astype(np.float64, copy=False)


def pooled_fid_kid(
    gen_feature_files: list[Path],
    ref_features: np.ndarray,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    extractor: str | None = None,
) -> dict:
    """FID and KID of all generated frames of a split (every clip's file concatenated) against the reference.

    Pass only the clips that were scored; the runner reports coverage. A missing or malformed file raises.
    """
    missing = [str(p) for p in gen_feature_files if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} feature files missing, e.g. {missing[0]}")
    parts = [load_features(Path(p)) for p in gen_feature_files]
    gen = np.concatenate(parts, axis=0)
    ref = np.asarray(ref_features, dtype=np.float64)
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(f"feature sizes differ: generated {gen.shape[1]}, reference {ref.shape[1]}")
    kid_mean, kid_std = kid_from_features(gen, ref, kid_subsets, kid_subset_size, seed=0)
    return {
        "fid": fid_from_features(gen, ref),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "n_gen": int(len(gen)),
        "n_ref": int(len(ref)),
        "n_clips": len(parts),
        "kid_subsets": kid_subsets,
        "kid_subset_size": int(min(kid_subset_size, len(gen), len(ref))),
        "extractor": extractor or inception_extractor_id(),
    }
