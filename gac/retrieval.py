"""Context-as-memory retrieval (paper 5.1, after Yu et al. 2025): pick the context frames whose cameras see
what the target cameras will see.

Context-as-Memory decides relevance by field-of-view overlap of camera frustums, keeping intersections that are
neither too close nor too far, and thins adjacent frames ("Non-adj"). RealEstate10K motion is 6-DoF, so this
version tests overlap in 3D (gac-model.md section 4, derived): points are sampled inside each target camera's
frustum between ``near`` and ``far`` (scene-scale units: 1 = the reference view's median depth) and a memory
view's score is the fraction of them that project inside its image in front of it. A memory frame (a grid of up
to four views) scores the mean over target views of its best view. Selection keeps the most recent frame and the
reference frame, then the best-scoring frames above ``min_overlap``, skipping neighbours of frames already chosen
while others are left, up to ``context_size`` frames, returned in temporal order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench import cameras


CONTEXT_ORDERS = ("time", "overlap")


@dataclass(frozen=True)
class RetrievalConfig:
    context_size: int = 4
    """Context frames per target (training uses 1-4)."""
    near: float = 0.25
    """Closest sampled depth, in scene-scale units."""
    far: float = 4.0
    """Farthest sampled depth, in scene-scale units."""
    min_overlap: float = 0.05
    """Frames below this overlap are never retrieved (the two always-kept frames excepted)."""
    keep_reference: bool = True
    keep_recent: bool = True
    """Always keep the most recent frame (temporal continuity); False lets overlap alone decide."""
    order: str = "time"
    """Order of the chosen frames in the context: "time" (as in training), or "overlap" (ascending score, so the
    best-overlapping frame comes last and, with the last-context pose anchor, anchors the target's pose)."""
    non_adjacent: bool = True
    grid_uv: int = 10
    grid_depth: int = 8


def frustum_points(K: np.ndarray, c2w: np.ndarray, height: int, width: int, cfg: RetrievalConfig) -> np.ndarray:
    """World points (P, 3) on a pixel grid x log-spaced depths inside one camera's frustum."""
    u = (np.arange(cfg.grid_uv) + 0.5) / cfg.grid_uv * width
    v = (np.arange(cfg.grid_uv) + 0.5) / cfg.grid_uv * height
    uu, vv = np.meshgrid(u, v)
    d_cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1).reshape(-1, 3)
    depths = np.geomspace(cfg.near, cfg.far, cfg.grid_depth)
    p_cam = (d_cam[None] * depths[:, None, None]).reshape(-1, 3)
    return p_cam @ c2w[:3, :3].T + c2w[:3, 3]


def visible_fraction(points: np.ndarray, K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> float:
    """Fraction of world points that land inside the image of camera ``c2w`` with positive depth."""
    uv, z = cameras.project_points(points, K, c2w)
    inside = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    return float(inside.mean())


def frame_scores(
    memory_views: list[np.ndarray],
    target_views: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    cfg: RetrievalConfig,
) -> np.ndarray:
    """Score per memory frame. ``memory_views[m]`` is (V_m, 4, 4) c2w of frame m's views; targets (T, 4, 4)."""
    clouds = [frustum_points(K, c, height, width, cfg) for c in target_views]
    scores = np.zeros(len(memory_views))
    for m, views in enumerate(memory_views):
        per_target = [max(visible_fraction(pts, K, c, height, width) for c in views) for pts in clouds]
        scores[m] = float(np.mean(per_target))
    return scores


def select_context(scores: np.ndarray, cfg: RetrievalConfig) -> list[int]:
    """Indices of the memory frames to condition on, in ``cfg.order`` (temporal by default)."""
    if cfg.order not in CONTEXT_ORDERS:
        raise ValueError(f"context order must be one of {CONTEXT_ORDERS}, got {cfg.order!r}")
    n = len(scores)
    k = max(1, min(cfg.context_size, n))
    chosen = [n - 1] if cfg.keep_recent else []
    if cfg.keep_reference and len(chosen) < k and 0 not in chosen:
        chosen.append(0)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if i not in chosen and scores[i] >= cfg.min_overlap]
    for relaxed in (False, True) if cfg.non_adjacent else (True,):
        for i in order:
            if len(chosen) >= k:
                break
            if i in chosen:
                continue
            if not relaxed and any(abs(i - j) == 1 for j in chosen):
                continue
            chosen.append(i)
    if not chosen:  # nothing overlaps and nothing is kept: fall back to the most recent frame
        chosen = [n - 1]
    if cfg.order == "overlap":
        return sorted(chosen, key=lambda i: (scores[i], i))
    return sorted(chosen)
