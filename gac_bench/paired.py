"""Paired comparison of two methods (or two variants of one) over the clips both scored.

The difference of clip means, bootstrapped over clips: the clip-to-clip spread that two rows share (a hard room is
hard for both) cancels, so a paired interval is much narrower than the two rows' own intervals side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gac_bench.leaderboard import DIGITS, HEADERS, Cell, bootstrap_ci, clip_values, read_method_records, subsets_for


def paired_difference(a: dict[str, float], b: dict[str, float]) -> Cell | None:
    """Mean of a - b over the clip ids both have, with a 95% percentile bootstrap CI (the leaderboard's resampling:
    2000 resamples, seed 0, clips in id order). None when they share no clip."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diff = np.array([a[k] - b[k] for k in common], dtype=np.float64)
    low, high = bootstrap_ci(diff)
    return Cell(float(diff.mean()), low, high, len(diff))


# FID is pooled over a row's frames, so it has no per-clip value to pair
PAIRED_COLUMNS = ("psnr", "ssim", "lpips", "r_err", "t_err")


@dataclass
class PairedRow:
    """One (split, trajectory, subset) row of ``method - base``, paired over the clips both scored."""

    split: str
    trajectory: str
    subset: str
    method: str
    base: str
    diffs: dict[str, Cell | None]  # column -> mean difference [95% CI], None where no clip has both


def paired_rows(runs_dir: Path, base: str) -> list[PairedRow]:
    """Every other method's paired difference from ``base``, for each split and trajectory where ``base`` ran.
    ValueError when ``base`` has no records under ``runs_dir``, naming the methods that do."""
    rows, base_found = [], False
    for base_dir in sorted(Path(runs_dir).glob(f"*/*/{base}")):
        base_clips = read_method_records(base_dir)
        if not base_clips:
            continue
        traj_dir = base_dir.parent
        split, trajectory = traj_dir.parent.name, traj_dir.name
        for method_dir in sorted(p for p in traj_dir.iterdir() if p.is_dir() and p.name != base):
            clips = read_method_records(method_dir)
            for subset in subsets_for(trajectory) if clips else ():
                diffs = {col: paired_difference(clip_values(clips, col, trajectory, subset)[0],
                                                clip_values(base_clips, col, trajectory, subset)[0])
                         for col in PAIRED_COLUMNS}  # fmt: skip
                rows.append(PairedRow(split, trajectory, subset, method_dir.name, base, diffs))
        base_found = True
    if not base_found:
        found = sorted({p.name for p in Path(runs_dir).glob("*/*/*") if p.is_dir()})
        raise ValueError(f"no records of {base!r} under {runs_dir} (methods there: {', '.join(found) or 'none'})")
    return rows


def _fmt_diff(cell: Cell | None, col: str) -> str:
    if cell is None:
        return "—"
    d = DIGITS[col]
    return f"{cell.mean:+.{d}f} [{cell.ci_low:+.{d}f}, {cell.ci_high:+.{d}f}]"


def paired_markdown(rows: list[PairedRow]) -> str:
    head = ["split", "trajectory", "subset", "method", *(f"Δ {HEADERS[c]}" for c in PAIRED_COLUMNS), "clips"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        n = max((c.n for c in r.diffs.values() if c is not None), default=0)
        cells = [r.split, r.trajectory, r.subset, r.method, *(_fmt_diff(r.diffs[c], c) for c in PAIRED_COLUMNS), str(n)]
        lines.append("| " + " | ".join(cells) + " |")
    base = rows[0].base if rows else "the base"
    lines.append("")
    lines.append(f"Each cell: method minus {base}, mean over the clips both scored [95% bootstrap CI of the paired "
                 "difference, 2000 resamples, seed 0]; — where no clip has both values.")  # fmt: skip
    return "\n".join(lines)


def paired_csv(rows: list[PairedRow]) -> str:
    head = ["split", "trajectory", "subset", "method", "base"]
    for c in PAIRED_COLUMNS:
        head += [f"d_{c}", f"d_{c}_ci_low", f"d_{c}_ci_high", f"d_{c}_clips"]
    out = [",".join(head)]
    for r in rows:
        vals = [r.split, r.trajectory, r.subset, r.method, r.base]
        for c in PAIRED_COLUMNS:
            cell = r.diffs[c]
            vals += ["", "", "", ""] if cell is None else [repr(cell.mean), repr(cell.ci_low), repr(cell.ci_high),
                                                           str(cell.n)]  # fmt: skip
        out.append(",".join(vals))
    return "\n".join(out) + "\n"
