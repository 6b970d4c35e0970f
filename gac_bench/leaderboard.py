"""Leaderboards, rebuilt from the per-clip records only (so 1 shard and N shards give the same table).

Aggregation (protocol paper-v1): per frame -> mean per clip -> mean over clips, with a 95% percentile
bootstrap CI over clips (2000 resamples, seed 0, clips in id order), and a coverage column (clips scored /
clips in the split). A metric that is missing or failed is shown as missing with a footnote, never as 0.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gac_bench import records
from gac_bench.protocol import PAPER_V1, Protocol

COLUMNS = ("psnr", "ssim", "lpips", "fid", "r_err", "t_err")
HEADERS = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓", "fid": "FID ↓", "r_err": "R_err ↓", "t_err": "T_err ↓"}
DIGITS = {"psnr": 2, "ssim": 3, "lpips": 3, "fid": 2, "r_err": 3, "t_err": 3}
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    n: int  # clips (or frames pooled, for FID) behind the value


@dataclass
class Row:
    split: str
    trajectory: str
    subset: str
    method: str
    cells: dict[str, Cell | None]
    notes: dict[str, str]  # column -> why it is missing
    scored: int
    total: int
    failures: dict[str, str] = field(default_factory=dict)  # clip id -> error
    pooled: dict = field(default_factory=dict)  # KID and counts behind the pooled FID


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean over clips."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def subset_frames(trajectory: str, subset: str, protocol: Protocol = PAPER_V1) -> np.ndarray:
    """Output frames a subset covers: all scored frames; for forth-and-back also forward, return, loop."""
    n, f = protocol.num_frames, protocol.forth_and_back_forward
    frames = {
        "all": np.arange(protocol.scored_from, n),
        "forward": np.arange(protocol.scored_from, f),
        "return": np.arange(f, n),
        "loop": np.array([n - 1]),
    }
    if subset not in frames or (trajectory != "forth-and-back" and subset != "all"):
        raise ValueError(f"no subset {subset!r} for trajectory {trajectory!r}")
    return frames[subset]


def subsets_for(trajectory: str) -> tuple[str, ...]:
    return ("all", "forward", "return", "loop") if trajectory == "forth-and-back" else ("all",)


# ---------------------------------------------------------------------------------------------- reading records


@dataclass
class ClipRecords:
    clip_id: str
    generation: dict | None
    metrics: dict | None
    folder: Path | None = None

    @property
    def ok(self) -> bool:
        return (
            self.generation is not None
            and self.generation.get("status") == "ok"
            and self.metrics is not None
            and self.metrics.get("generation_id") == self.generation.get("generation_id")
        )


def read_method_records(folder: Path) -> list[ClipRecords]:
    out = []
    for clip_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        gen = records.read_json(clip_dir / "generation.json")
        if gen is None:
            continue
        out.append(ClipRecords(clip_dir.name, gen, records.read_json(clip_dir / "metrics.json"), clip_dir))
    return out


def split_size(split_name: str, default: int) -> int:
    try:
        from gac_bench.splits import get_split

        return len(get_split(split_name).clips)
    except Exception:  # a split this version does not know: count what is on disk
        return default


def _clip_value(metric_entry: dict, frames: np.ndarray) -> float | None:
    if metric_entry.get("status") != "ok":
        return None
    per_frame = np.array([np.nan if v is None else v for v in metric_entry["per_frame"]], dtype=np.float64)
    vals = per_frame[frames]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else None


def pooled_fid(ok: list[ClipRecords], frames: np.ndarray, num_scored: int) -> tuple[Cell | None, dict, str]:
    """FID and KID over the given output frames of every scored clip, from the per-clip feature files.

    Feature rows are the scored frames 1..N-1 in order, so output frame f is row f - 1.
    """
    from gac_bench.metrics.fid import fid_from_features, kid_from_features, load_features

    if len(frames) * len(ok) < 2 or len(frames) == 1:
        return None, {}, "FID is pooled over many frames; a one-frame subset has no FID"
    rows = np.asarray(frames) - 1
    gen, ref, skipped = [], [], []
    for c in ok:
        entry = c.metrics["metrics"].get("fid") or {}
        if entry.get("status") != "ok":
            skipped.append(c.clip_id)
            continue
        g, r = load_features(c.folder / entry["features"]), load_features(c.folder / entry["reference"])
        if len(g) != num_scored or len(r) != num_scored:
            skipped.append(c.clip_id)
            continue
        gen.append(g[rows])
        ref.append(r[rows])
    if not gen:
        return None, {}, "no clip has FID features"
    gen_all, ref_all = np.concatenate(gen), np.concatenate(ref)
    fid = fid_from_features(gen_all, ref_all)
    kid_mean, kid_std = kid_from_features(gen_all, ref_all)
    note = f"FID pooled over {len(gen)} clips; clips without features: {', '.join(skipped)}" if skipped else ""
    return Cell(fid, fid, fid, len(gen_all)), {"kid_mean": kid_mean, "kid_std": kid_std, "fid_frames": len(gen_all)}, note


SECONDARY_POSE = ("r_err_sum_rad", "t_err_sum", "ate_sim3", "r_err_rad_worst", "t_err_worst", "coverage")


def secondary_pose_columns(ok: list[ClipRecords]) -> dict:
    """Means over clips of the secondary pose columns (CameraCtrl-style sums, Sim(3) ATE, worst-case means,
    registered fraction), for comparing with other papers' conventions. CSV/JSON only."""
    out: dict = {}
    errors = [((c.metrics.get("pose") or {}).get("errors") or {}) for c in ok]
    for key in SECONDARY_POSE:
        vals = [e[key] for e in errors if e.get(key) is not None]
        if vals:
            out[f"pose_{key}"] = float(np.mean(vals))
    estimators = sorted({(c.metrics.get("pose") or {}).get("estimator") for c in ok} - {None})
    if estimators:
        out["pose_estimator"] = ",".join(estimators)
    return out


def mean_cell(values: list[float]) -> Cell:
    """Mean over clips with its 95% bootstrap CI (values in clip-id order, as the resampling is seeded)."""
    arr = np.array(values)
    low, high = bootstrap_ci(arr)
    return Cell(float(arr.mean()), low, high, len(arr))


def _column_values(ok: list[ClipRecords], col: str, frames: np.ndarray) -> tuple[dict[str, float], set[str]]:
    """Per-clip means of one per-frame column over the given frames, and why clips have none."""
    values, reasons = {}, set()
    for c in ok:
        entry = c.metrics.get("metrics", {}).get(col)
        if entry is None:
            reasons.add(f"{col} is not computed by this gac-bench version")
            continue
        v = _clip_value(entry, frames) if entry.get("status") == "ok" else None
        if v is None:
            reasons.add(entry.get("reason") or entry.get("error") or "no value")
        else:
            values[c.clip_id] = v
    return values, reasons


def clip_values(clips: list[ClipRecords], col: str, trajectory: str,
                subset: str = "all") -> tuple[dict[str, float], set[str]]:
    """Clip id -> the clip's value of a per-frame column (what the leaderboard averages), for scored clips only,
    and the reasons clips have none. For paired comparisons over the clips both scored (``gac_bench.paired``)."""
    return _column_values([c for c in clips if c.ok], col, subset_frames(trajectory, subset))


def build_row(split: str, trajectory: str, method: str, clips: list[ClipRecords], subset: str, total: int) -> Row:
    frames = subset_frames(trajectory, subset)
    ok = [c for c in clips if c.ok]
    failures = {c.clip_id: str(c.generation.get("error")) for c in clips if c.generation.get("status") == "failed"}
    cells: dict[str, Cell | None] = {}
    notes: dict[str, str] = {}
    pooled = {}
    for col in COLUMNS:
        entries = [c.metrics.get("metrics", {}).get(col) or {} for c in ok]
        if any(e.get("pooled") for e in entries):
            cells[col], pooled, note = pooled_fid(ok, frames, len(subset_frames(trajectory, "all")))
            if note:
                notes[col] = note
            continue
        values, reasons = _column_values(ok, col, frames)
        cells[col] = mean_cell(list(values.values())) if values else None
        if reasons:
            notes[col] = "; ".join(sorted(reasons))
    if subset == "all":
        pooled.update(secondary_pose_columns(ok))
    degenerate = sum(bool(((c.metrics.get("pose") or {}).get("errors") or {}).get("degenerate_gt")) for c in ok)
    if degenerate:
        notes["t_err"] = (notes.get("t_err", "") + f"; {degenerate} clip(s) with degenerate ground-truth motion "
                          "(flagged, still scored)").lstrip("; ")
    return Row(split, trajectory, subset, method, cells, notes, len(ok), total, failures, pooled)


def collect_rows(runs_dir: Path) -> list[Row]:
    """Every (split, trajectory, subset, method) row found under ``runs_dir``, in a deterministic order."""
    rows = []
    runs_dir = Path(runs_dir)
    for split_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
        for traj_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for method_dir in sorted(p for p in traj_dir.iterdir() if p.is_dir()):
                clips = read_method_records(method_dir)
                if not clips:
                    continue
                total = split_size(split_dir.name, len(clips))
                for subset in subsets_for(traj_dir.name):
                    rows.append(build_row(split_dir.name, traj_dir.name, method_dir.name, clips, subset, total))
    return rows


# ---------------------------------------------------------------------------------------------- rendering


def _fmt(cell: Cell | None, col: str, with_ci: bool = True) -> str:
    if cell is None:
        return "—"
    d = DIGITS[col]
    if not with_ci or cell.n < 2 or cell.ci_low == cell.ci_high:  # pooled FID has no CI
        return f"{cell.mean:.{d}f}"
    return f"{cell.mean:.{d}f} [{cell.ci_low:.{d}f}, {cell.ci_high:.{d}f}]"


def footer(protocol: Protocol = PAPER_V1, rows: list[Row] | None = None) -> str:
    import torch
    import torchmetrics

    from gac_bench import __version__

    try:
        import lpips

        lpips_version = getattr(lpips, "__version__", "present")
    except ImportError:
        lpips_version = "absent"
    return (
        f"{protocol.footer()} gac-bench {__version__}, torch {torch.__version__}, torchmetrics "
        f"{torchmetrics.__version__}, lpips {lpips_version}. Cells: mean over clips [95% bootstrap CI]."
        f" Pose estimator: {_estimators(rows)}. R_err in radians."
    )


ESTIMATOR_NOTES = {  # how each pose estimator sees the frames, for the footer
    "colmap": "colmap (pycolmap SfM, the clip's K held fixed: known intrinsics)",
    "vggt": "vggt (VGGT-1B, intrinsics estimated)",
}


def _estimators(rows: list[Row] | None) -> str:
    names = sorted({r.pooled.get("pose_estimator") for r in rows or []} - {None})
    return ", ".join(ESTIMATOR_NOTES.get(n, n) for n in names) if names else "none used"


def _groups(rows: list[Row]) -> dict[tuple[str, str, str], list[Row]]:
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.split, r.trajectory, r.subset), []).append(r)
    return groups


def to_markdown(rows: list[Row], protocol: Protocol = PAPER_V1) -> str:
    if not rows:
        return "No results yet: run `gac-bench run --method NAME` first.\n"
    lines: list[str] = []
    notes: dict[str, int] = {}
    for (split, traj, subset), group in _groups(rows).items():
        title = f"## {split} · {traj}" + ("" if subset == "all" else f" · {subset} frames")
        lines += [title, "", "| Method | " + " | ".join(HEADERS[c] for c in COLUMNS) + " | Coverage |"]
        lines.append("|---" * (len(COLUMNS) + 2) + "|")
        for r in group:
            cells = []
            for col in COLUMNS:
                text = _fmt(r.cells[col], col)
                cell = r.cells[col]
                if cell is not None and col != "fid" and cell.n < r.scored:  # fewer clips than the row covers
                    text += f" (n={cell.n})"
                if r.cells[col] is None and col in r.notes:
                    mark = notes.setdefault(f"{HEADERS[col].split()[0]}: {r.notes[col]}", len(notes) + 1)
                    text += f" ({mark})"
                cells.append(text)
            lines.append(f"| {r.method} | " + " | ".join(cells) + f" | {r.scored}/{r.total} |")
        lines.append("")
        counts = sorted({r.scored for r in group})
        if len(counts) > 1:  # a mean over 1 clip beside means over 8 is not a comparison
            lines += [f"Warning: these rows are over different clips ({', '.join(f'{r.method} {r.scored}' for r in group)}"
                      " scored); compare them on the clips all of them cover (`--clips`).", ""]  # fmt: skip
    failed = [(r, cid, err) for r in rows if r.subset == "all" for cid, err in r.failures.items()]
    if notes:
        lines += ["Missing values:", ""] + [f"({i}) {text}" for text, i in notes.items()] + [""]
    if failed:
        lines += ["Failed clips (counted in coverage):", ""]
        lines += [f"- {r.split}/{r.trajectory}/{r.method}/{cid}: {err}" for r, cid, err in failed] + [""]
    lines.append(footer(protocol, rows))
    return "\n".join(lines) + "\n"


def to_records(rows: list[Row]) -> list[dict]:
    out = []
    for r in rows:
        rec = {"split": r.split, "trajectory": r.trajectory, "subset": r.subset, "method": r.method}
        for col in COLUMNS:
            c = r.cells[col]
            rec.update({col: c.mean if c else None, f"{col}_ci_low": c.ci_low if c else None,
                        f"{col}_ci_high": c.ci_high if c else None, f"{col}_n": c.n if c else 0})
        rec.update(kid=r.pooled.get("kid_mean"), kid_std=r.pooled.get("kid_std"))
        rec.update({f"pose_{k}": r.pooled.get(f"pose_{k}") for k in SECONDARY_POSE})
        rec["pose_estimator"] = r.pooled.get("pose_estimator")
        rec.update(coverage_scored=r.scored, coverage_total=r.total, notes=r.notes, failures=r.failures)
        out.append(rec)
    return out


def to_csv(rows: list[Row]) -> str:
    import pandas as pd

    recs = [{k: v for k, v in rec.items() if k not in ("notes", "failures")} for rec in to_records(rows)]
    return pd.DataFrame(recs).to_csv(index=False)


def to_json(rows: list[Row], protocol: Protocol = PAPER_V1) -> str:
    return json.dumps({"protocol": protocol.to_dict(), "footer": footer(protocol, rows), "rows": to_records(rows)},
                      indent=1, allow_nan=False, default=str)


LOWER_IS_BETTER = ("lpips", "fid", "r_err", "t_err")
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _best(group: list[Row], col: str) -> float | None:
    values = [round(r.cells[col].mean, DIGITS[col]) for r in group if r.cells[col] is not None]
    if len(values) < 2:  # one value is not "best" of anything
        return None
    return min(values) if col in LOWER_IS_BETTER else max(values)


def to_latex(rows: list[Row]) -> str:
    """One ``table`` per (split, trajectory, subset): caption, label, the best value of each column in bold
    (among rows that have it, at the printed precision), missing values as -- with lettered footnotes."""
    lines = []
    for (split, traj, subset), group in _groups(rows).items():
        notes: dict[str, str] = {}
        label = "tab:gacbench-" + "-".join(x.replace("_", "-") for x in (split, traj, subset))
        scored = sorted({r.scored for r in group})
        caption = (f"{latex_escape(split)}, {latex_escape(traj)} trajectory" + ("" if subset == "all" else
                   f", {latex_escape(subset)} frames") + f": mean over {'/'.join(map(str, scored))} clips "
                   "(95\\% bootstrap intervals in the CSV).")  # fmt: skip
        lines += [f"\\begin{{table}}[t]\\centering\\caption{{{caption}}}\\label{{{label}}}",
                  "\\begin{tabular}{l" + "c" * len(COLUMNS) + "c}", "\\toprule"]  # fmt: skip
        heads = [HEADERS[c].replace("↑", "$\\uparrow$").replace("↓", "$\\downarrow$").replace("_", "\\_") for c in COLUMNS]
        lines.append("Method & " + " & ".join(heads) + " & Coverage \\\\ \\midrule")
        best = {c: _best(group, c) for c in COLUMNS}
        for r in group:
            vals = []
            for c in COLUMNS:
                cell = r.cells[c]
                if cell is None:
                    why = r.notes.get(c, "not computed")
                    mark = notes.setdefault(why, chr(ord("a") + len(notes)))
                    vals.append(f"--\\textsuperscript{{{mark}}}")
                    continue
                text = _fmt(cell, c, with_ci=False)
                vals.append(f"\\textbf{{{text}}}" if best[c] is not None and round(cell.mean, DIGITS[c]) == best[c] else text)
            lines.append(f"{latex_escape(r.method)} & " + " & ".join(vals) + f" & {r.scored}/{r.total} \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        if notes:
            items = "; ".join(f"\\textsuperscript{{{m}}} {latex_escape(why)}" for why, m in notes.items())
            lines.append(f"\\par\\footnotesize {items}")
        lines += ["\\end{table}", ""]
    return "\n".join(lines)


def write_leaderboard(runs_dir: Path, rows: list[Row] | None = None) -> list[Row]:
    """Write ``<runs>/leaderboard.{md,csv,json}`` atomically and return the rows."""
    rows = collect_rows(runs_dir) if rows is None else rows
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("leaderboard.md", to_markdown(rows)), ("leaderboard.csv", to_csv(rows) if rows else ""),
                       ("leaderboard.json", to_json(rows))):
        records.write_text_atomic(runs_dir / name, text)
    return rows


__all__ = ["Cell", "Row", "asdict", "bootstrap_ci", "collect_rows", "to_csv", "to_json", "to_latex", "to_markdown",
           "write_leaderboard"]
