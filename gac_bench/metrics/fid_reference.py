"""Cache of reference (ground-truth) Inception features per split, keyed by everything that changes them.

``GAC_BENCH_HOME/cache/fid-ref/<sha256 of the canonical JSON key>.npy`` holds the float64 ``(N, D)`` features;
a ``.json`` beside it holds the key for humans. The key names the protocol, split, trajectory, resolution,
frame selection, feature extractor and its weights' sha256, and the clip ids, so changing any of them (a new
protocol, a different crop, one clip more) computes a fresh file instead of reusing a stale one.
Files are read and written with ``allow_pickle=False`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gac_bench.metrics.fid import inception_extractor_id, load_features, save_features
from gac_bench.paths import gac_bench_home

REQUIRED_KEY_FIELDS = (
    "protocol",
    "split",
    "resolution",
    "frame_selection",
    "feature_extractor",
    "weights_sha256",
    "clip_ids",
)


def reference_key(
    protocol: str,
    split_name: str,
    trajectory: str,
    height: int,
    width: int,
    frame_selection: str,
    clip_ids: Sequence[str],
    weights_sha256: str,
    feature_extractor: str | None = None,
) -> dict:
    """The cache key for one split's reference features (``frame_selection`` e.g. "frames 1..63")."""
    return {
        "protocol": protocol,
        "split": split_name,
        "trajectory": trajectory,
        "resolution": [int(height), int(width)],
        "frame_selection": frame_selection,
        "feature_extractor": feature_extractor or inception_extractor_id(),
        "weights_sha256": weights_sha256,
        "clip_ids": [str(c) for c in clip_ids],
    }


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def reference_cache_path(key: dict) -> Path:
    digest = hashlib.sha256(_canonical(key).encode("utf-8")).hexdigest()
    return gac_bench_home() / "cache" / "fid-ref" / f"{digest}.npy"


def _checked_key(split_name: str, key: dict) -> dict:
    key = dict(key)
    key.setdefault("split", split_name)
    if key["split"] != split_name:
        raise ValueError(f"key names split {key['split']!r}, asked for {split_name!r}")
    absent = [f for f in REQUIRED_KEY_FIELDS if f not in key]
    if absent:
        raise ValueError(f"reference-features key lacks {absent}; it must name everything that changes the features")
    return key


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def reference_features(split_name: str, key: dict, compute_fn: Callable[[], np.ndarray]) -> np.ndarray:
    """Cached reference features for ``key``; calls ``compute_fn() -> (N, D)`` only when no valid file exists."""
    key = _checked_key(split_name, key)
    path = reference_cache_path(key)
    if path.is_file():
        try:
            return load_features(path)
        except (ValueError, OSError):
            pass  # truncated or foreign file: recompute and overwrite
    feats = np.asarray(compute_fn(), dtype=np.float64)
    if feats.ndim != 2 or len(feats) == 0:
        raise ValueError(f"compute_fn returned features of shape {feats.shape}, expected (N, D)")
    save_features(path, feats)
    _write_json_atomic(path.with_suffix(".json"), key)
    return feats
