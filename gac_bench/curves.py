"""Per-frame curves: each metric against the output frame index, averaged over clips.

They show where error accumulates along a trajectory (and whether it recovers on the way back in
forth-and-back), which is what the GaC paper is about. Written as CSV beside the leaderboard and, with
``gac-bench table --plots``, drawn to PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gac_bench import records

from gac_bench.leaderboard import COLUMNS, HEADERS, read_method_records

PER_FRAME_COLUMNS = tuple(c for c in COLUMNS if c != "fid")  # FID is pooled, it has no per-frame value


def collect_curves(runs_dir: Path) -> pd.DataFrame:
    """Long table: split, trajectory, method, metric, frame, mean over clips, clips."""
    rows = []
    runs_dir = Path(runs_dir)
    for method_dir in sorted(runs_dir.glob("*/*/*")):
        if not method_dir.is_dir():
            continue
        split, trajectory, method = method_dir.parts[-3:]
        clips = [c for c in read_method_records(method_dir) if c.ok]
        for metric in PER_FRAME_COLUMNS:
            stack = [
                [np.nan if v is None else v for v in c.metrics["metrics"][metric]["per_frame"]]
                for c in clips
                if c.metrics["metrics"].get(metric, {}).get("status") == "ok"
            ]
            if not stack:
                continue
            arr = np.array(stack, dtype=np.float64)
            counts = np.isfinite(arr).sum(axis=0)
            sums = np.where(np.isfinite(arr), arr, 0.0).sum(axis=0)
            means = sums / np.maximum(counts, 1)  # only frames with counts > 0 are kept below
            for frame in np.nonzero(counts)[0]:
                rows.append((split, trajectory, method, metric, int(frame), float(means[frame]), int(counts[frame])))
    return pd.DataFrame(rows, columns=["split", "trajectory", "method", "metric", "frame", "mean", "clips"])


def write_curves(runs_dir: Path, curves: pd.DataFrame) -> Path:
    path = Path(runs_dir) / "per_frame_curves.csv"
    records.write_text_atomic(path, curves.to_csv(index=False))
    return path


def plot_curves(curves: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per (split, trajectory): a panel per metric, a line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (split, trajectory), group in curves.groupby(["split", "trajectory"], sort=True):
        metrics = [m for m in PER_FRAME_COLUMNS if m in set(group["metric"])]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            for method, m in group[group["metric"] == metric].groupby("method", sort=True):
                ax.plot(m["frame"], m["mean"], label=method, linewidth=1.4)
            if trajectory == "forth-and-back":
                ax.axvline(31.5, color="grey", linestyle=":", linewidth=1)  # turning point
            ax.set_title(HEADERS[metric])
            ax.set_xlabel("frame")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{split} · {trajectory} (mean over clips)")
        fig.tight_layout()
        path = out_dir / f"curves_{split}_{trajectory}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
