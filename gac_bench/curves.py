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


def per_frame_values(runs_dir: Path, split: str, trajectory: str, method: str, metric: str) -> np.ndarray:
    """(clips, frames) per-frame values of one metric over the method's scored clips (NaN where missing)."""
    rows = []
    for rec in read_method_records(Path(runs_dir) / split / trajectory / method):
        entry = rec.metrics.get("metrics", {}).get(metric, {}) if rec.ok else {}
        if entry.get("status") == "ok":
            rows.append([np.nan if v is None else v for v in entry["per_frame"]])
    return np.array(rows, dtype=np.float64)


def mean_and_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: mean over clips, half-width of the 95% t-interval (0 with one clip), and clips counted."""
    from scipy import stats

    finite = np.isfinite(values)
    n = finite.sum(0)
    filled = np.where(finite, values, 0.0)
    mean = filled.sum(0) / np.maximum(n, 1)
    sd = np.sqrt(((filled - mean) ** 2 * finite).sum(0) / np.maximum(n - 1, 1))
    half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, half, n


UNITS = {"psnr": "dB", "ssim": "", "lpips": "", "r_err": "rad", "t_err": "normalised"}


def draw_figure(runs_dir: Path, split: str, trajectory: str, methods: list[str]):
    """One figure: a panel per metric with data, a line per method (mean, 95% band, n in the legend), the
    forth-and-back turn marked; PSNR's axis stops below a capped outlier frame (loop closure), which is noted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {(m, k): per_frame_values(runs_dir, split, trajectory, k, m) for m in PER_FRAME_COLUMNS for k in methods}
    panels = [m for m in PER_FRAME_COLUMNS if any(data[m, k].size for k in methods)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        tops = []
        for method in methods:
            v = data[metric, method]
            if v.size == 0:
                continue
            mean, half, n = mean_and_band(v)
            x = np.nonzero(n > 0)[0]
            line = ax.plot(x, mean[x], linewidth=1.3, label=f"{method} (n={int(n.max())})")[0]
            ax.fill_between(x, (mean - half)[x], (mean + half)[x], color=line.get_color(), alpha=0.15)
            tops.append(np.sort(mean[x])[::-1])
        if trajectory == "forth-and-back":
            ax.axvline(31.5, color="grey", linestyle=":", linewidth=1, label="turn-around")
        if metric == "psnr" and tops:
            _clip_capped_axis(ax, tops)
        unit = UNITS.get(metric, "")
        ax.set_title(HEADERS[metric])
        ax.set_ylabel(f"{HEADERS[metric].split()[0]}" + (f" ({unit})" if unit else ""))
        ax.set_xlabel("frame")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{split} · {trajectory}: mean over clips, 95% band")
    fig.tight_layout()
    return fig


def _clip_capped_axis(ax, sorted_means: list[np.ndarray]) -> None:
    """Where one frame sits far above the rest (identical frames score the 58.92 dB cap), stop the axis below it."""
    peak = max(float(t[0]) for t in sorted_means)
    rest = max(float(t[1]) if len(t) > 1 else float(t[0]) for t in sorted_means)
    if peak - rest > 10.0:
        ax.set_ylim(top=rest + 5.0)
        ax.annotate(f"off scale: {peak:.1f} dB", xy=(0.98, 0.97), xycoords="axes fraction", ha="right", va="top",
                    fontsize=7)  # fmt: skip


def plot_curves(runs_dir: Path, out_dir: Path) -> list[Path]:
    """One PNG per (split, trajectory) of the runs dir (:func:`draw_figure`)."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, trajectory, methods in _groups_of(runs_dir):
        fig = draw_figure(runs_dir, split, trajectory, methods)
        if fig is None:
            continue
        path = out_dir / f"curves_{split}_{trajectory}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _groups_of(runs_dir: Path) -> list[tuple[str, str, list[str]]]:
    """(split, trajectory, methods) with records under the runs dir."""
    groups: dict[tuple[str, str], list[str]] = {}
    for method_dir in sorted(Path(runs_dir).glob("*/*/*")):
        if method_dir.is_dir():
            split, trajectory, method = method_dir.parts[-3:]
            groups.setdefault((split, trajectory), []).append(method)
    return [(s, t, m) for (s, t), m in sorted(groups.items())]
