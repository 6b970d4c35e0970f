"""The paper's ablations (Tables 3-6) at small scale: which runs make which table, and the tables from their records.

Every row is one GaC trained with the same recipe and budget, changing one thing from the reference run (geometry
as context, depth, CGA, geometry dropout 0.5), and scored by the harness on held-out ``synthroom-val`` rooms (never
on ``synthroom``). The reference run is shared by all four tables, as in the paper (its 19.01 row recurs in each).

    python -m gac.ablations runs [TABLE...]          # run keys a table needs (for benchmarks/gac_ablations.sh)
    python -m gac.ablations train-args KEY           # gac.train arguments of a run, one per line
    python -m gac.ablations eval-options KEY         # gac method options of a run at evaluation, one per line
    python -m gac.ablations tables RUNS_DIR [--out results/ablations] [--train-logs DIR]

``tables`` writes ``table{3,4,5,6}.csv`` (long format, read by ``gac-bench table --paper``) and ``.md`` (our rows
with 95% bootstrap CIs over rooms, the paired difference against the reference row, and the paper's rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gac_bench.leaderboard import DIGITS, Cell, clip_values, mean_cell, read_method_records
from gac_bench.paired import paired_difference
from gac_bench.paper_tables import ABLATION_CSV, ABLATION_TABLES, load_paper_table
from gac_bench.paper_tables import COLUMNS as PAPER_COLUMNS

REFERENCE = "ref"
SPLIT = "synthroom-val"
TRAJECTORY = "dataset"
METRICS = ("psnr", "ssim", "lpips", "r_err", "t_err")


@dataclass(frozen=True)
class AblationRun:
    key: str
    summary: str
    train_args: tuple[str, ...] = ()  # on top of the shared recipe (benchmarks/gac_ablations.sh)
    eval_options: tuple[str, ...] = ()  # gac method options on top of the method's defaults


RUNS = {
    r.key: r
    for r in (
        AblationRun(REFERENCE, "geometry as context (variant #1), depth, CGA, geometry dropout 0.5"),
        AblationRun("warped", "warped image as context (variant #2)", ("--variant", "warped")),
        AblationRun("rgb", "no geometry context (variant #3)", ("--variant", "none")),
        AblationRun("pointmap", "point map instead of depth", ("--geometry", "pointmap")),
        AblationRun("add", "camera by adding the Plücker embedding to the tokens (the paper's w/o CGA)",
                    ("--camera", "add")),
        AblationRun("nocam", "no camera conditioning at all", ("--camera", "none")),
        AblationRun("nodrop", "no geometry dropout (geometry generated for every view at inference)",
                    ("--geometry-dropout", "0"), ("emit_geometry=true",)),
    )
}


@dataclass(frozen=True)
class TableRow:
    run: str
    label: str  # our row's first cell
    paper_method: str | None  # the paper's row it reproduces (``method`` in results/paper/paper_tables.csv)


TABLES: dict[int, tuple[TableRow, ...]] = {
    3: (TableRow("rgb", "None (Variant #3)", "GaC, context: none (variant #3)"),
        TableRow("warped", "Warped image (Variant #2)", "GaC, context: warped image (variant #2)"),
        TableRow(REFERENCE, "Geometry (Variant #1)", "GaC, context: geometry (variant #1)")),
    4: (TableRow("pointmap", "Point map", "GaC, geometry: point map"),
        TableRow(REFERENCE, "Depth map", "GaC, geometry: depth map")),
    5: (TableRow("nocam", "GaC without camera", None),
        TableRow("add", "GaC without CGA (Plücker added)", "GaC without CGA"),
        TableRow(REFERENCE, "GaC with CGA", "GaC with CGA")),
    6: (TableRow("nodrop", "GaC without geometry dropout", "GaC without geometry dropout"),
        TableRow(REFERENCE, "GaC with geometry dropout", "GaC with geometry dropout")),
}
assert set(TABLES) == set(ABLATION_TABLES)


def runs_for(tables: list[int]) -> list[str]:
    keys = {row.run for t in tables for row in TABLES[t]}
    return [k for k in RUNS if k in keys]  # reference first, then in RUNS order


def method_name(key: str) -> str:
    return f"gac-abl-{key}"


# ---------------------------------------------------------------------------------------------- tables


@dataclass
class RowResult:
    cells: dict[str, Cell | None]
    diffs: dict[str, Cell | None]  # paired against the reference, over the rooms both scored
    per_clip: dict[str, dict[str, float]]
    missing: dict[str, set[str]]  # metric -> why clips have no value (e.g. colmap could not register frame 0)
    train_s_per_step: float | None
    infer_s_per_img: float | None
    steps: int | None


def _per_clip(runs_dir: Path, key: str) -> tuple[dict[str, dict[str, float]], dict[str, set[str]], float | None]:
    folder = Path(runs_dir) / SPLIT / TRAJECTORY / method_name(key)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no records of ablation run {key!r} (run benchmarks/gac_ablations.sh)")
    clips = read_method_records(folder)
    both = {m: clip_values(clips, m, TRAJECTORY) for m in METRICS}
    out, missing = {m: v for m, (v, _) in both.items()}, {m: r for m, (_, r) in both.items()}
    # the rollout's own seconds per generated view (generation info; frame 0 is the given reference), not
    # wall_time_s, which adds data loading, writing frames and, on a process's first clip, the model's setup; the
    # median over clips, so a first clip's one-off torch.compile does not count
    per_view = [(c.generation.get("info") or {}).get("seconds_per_view") for c in clips if c.ok]
    per_view = [float(s) for s in per_view if s is not None]
    s_per_img = float(np.median(per_view)) if per_view else None
    return out, missing, s_per_img


def _train_stats(train_logs: Path | None, key: str) -> tuple[float | None, int | None]:
    """Seconds per step (median over logged intervals) and the last step, from gac.train's train_log.jsonl."""
    path = None if train_logs is None else Path(train_logs) / f"gac_{key}_train_log.jsonl"
    if path is None or not path.is_file():
        return None, None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = np.array([r["step"] for r in rows], dtype=float)
    times = np.array([r["elapsed_s"] for r in rows], dtype=float)
    rates = np.diff(times) / np.maximum(np.diff(steps), 1)
    return (float(np.median(rates[len(rates) // 10:])) if len(rates) else None), int(steps[-1])


def _cell(values: dict[str, float]) -> Cell | None:
    return mean_cell([values[k] for k in sorted(values)]) if values else None


def collect(runs_dir: Path, keys: list[str], train_logs: Path | None = None) -> dict[str, RowResult]:
    per = {k: _per_clip(runs_dir, k) for k in keys}
    ref = per[REFERENCE][0] if REFERENCE in per else None
    out = {}
    for k, (vals, missing, s_img) in per.items():
        cells = {m: _cell(vals[m]) for m in METRICS}
        diffs = {m: (paired_difference(vals[m], ref[m]) if ref is not None and k != REFERENCE else None)
                 for m in METRICS}
        s_step, steps = _train_stats(train_logs, k)
        out[k] = RowResult(cells, diffs, vals, missing, s_step, s_img, steps)
    return out


def long_rows(table: int, results: dict[str, RowResult]) -> pd.DataFrame:
    """Our rows of one table in the long format of ``results/ablations/table{N}.csv``."""
    out = []
    for row in TABLES[table]:
        r = results[row.run]
        for m in METRICS:
            c, d = r.cells[m], r.diffs[m]
            if c is None:
                continue
            out.append({"table": table, "run": row.run, "method": f"ours: {row.label}", "row_label": row.label,
                        "paper_method": row.paper_method or "", "column": m, "value": c.mean,
                        "ci_low": c.ci_low, "ci_high": c.ci_high, "n": c.n,
                        "diff_vs_ref": None if d is None else d.mean,
                        "diff_ci_low": None if d is None else d.ci_low,
                        "diff_ci_high": None if d is None else d.ci_high})
        for col, v in (("train_s_per_step", r.train_s_per_step), ("infer_s_per_img", r.infer_s_per_img)):
            if v is not None:
                out.append({"table": table, "run": row.run, "method": f"ours: {row.label}", "row_label": row.label,
                            "paper_method": row.paper_method or "", "column": col, "value": v})
    return pd.DataFrame(out)


def _fmt_ci(c: Cell | None, m: str) -> str:
    if c is None:
        return "–"
    d = DIGITS[m]
    return f"{c.mean:.{d}f} [{c.ci_low:.{d}f}, {c.ci_high:.{d}f}]"


def _fmt_diff(c: Cell | None, m: str) -> str:
    if c is None:
        return ""
    d = DIGITS[m]
    mark = "" if c.n < 2 or c.ci_low <= 0 <= c.ci_high else " *"  # one room: no interval to speak of
    return f"{c.mean:+.{d}f} [{c.ci_low:+.{d}f}, {c.ci_high:+.{d}f}]{mark}"


def _missing_lines(table: int, results: dict[str, RowResult]) -> list[str]:
    """Why a metric is missing for some rooms of a row (e.g. colmap could not register frame 0), one line per
    metric and reason, naming the rows, instead of a column dropped silently."""
    why: dict[tuple[str, str], list[str]] = {}
    for m in METRICS:
        for row in TABLES[table]:
            r = results[row.run]
            rooms = len(r.per_clip["psnr"])
            if len(r.per_clip[m]) < rooms:
                reason = "; ".join(sorted(r.missing[m])) or "no value"
                why.setdefault((m, reason), []).append(f"{row.label} ({len(r.per_clip[m])}/{rooms} rooms)")
    return [f"- {m} missing for {', '.join(rows)}: {reason}" for (m, reason), rows in why.items()]


def table_markdown(table: int, results: dict[str, RowResult]) -> str:
    from gac_bench.paper_tables import CAPTIONS

    cols = [m for m in METRICS if any(results[r.run].cells[m] for r in TABLES[table])]
    head = ["row", *[f"{m} [95% CI]" for m in cols], *[f"Δ{m} vs ref [paired 95% CI]" for m in ("psnr", "ssim")],
            "train s/step", "infer s/img", "steps"]
    lines = [f"### {CAPTIONS[table]}", "", "Ours (synthroom-val, dataset trajectory; * = paired CI excludes 0):", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in TABLES[table]:
        r = results[row.run]
        cells = [row.label, *[_fmt_ci(r.cells[m], m) for m in cols],
                 *[_fmt_diff(r.diffs[m], m) or "(reference)" for m in ("psnr", "ssim")],
                 "–" if r.train_s_per_step is None else f"{r.train_s_per_step:.3f}",
                 "–" if r.infer_s_per_img is None else f"{r.infer_s_per_img:.2f}",
                 "–" if r.steps is None else str(r.steps)]
        lines.append("| " + " | ".join(cells) + " |")
    missing = _missing_lines(table, results)
    lines += [""] + missing if missing else []
    paper = load_paper_table(table)
    headers = [PAPER_COLUMNS[c][0] for c in paper["column"].unique()]
    lines += ["", "Paper (GaC-7B, RealEstate10K):", "", "| row | " + " | ".join(headers) + " |",
              "|" + " --- |" * (1 + paper["column"].nunique())]
    for method, cells in paper.groupby("method", sort=False):
        lines.append(f"| {method} | " + " | ".join(cells["printed"]) + " |")
    return "\n".join(lines) + "\n"


def write_tables(runs_dir: Path, out: Path, train_logs: Path | None = None, tables: list[int] | None = None) -> None:
    tables = tables or sorted(TABLES)
    results = collect(runs_dir, runs_for(tables), train_logs)
    out.mkdir(parents=True, exist_ok=True)
    for t in tables:
        long_rows(t, results).to_csv(out / ABLATION_CSV.format(table=t), index=False)
        (out / f"table{t}.md").write_text(table_markdown(t, results), encoding="utf-8")
        print(f"wrote {out / f'table{t}.md'}")


# ---------------------------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gac.ablations", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("runs").add_argument("tables", nargs="*", type=int)
    sub.add_parser("train-args").add_argument("key")
    sub.add_parser("eval-options").add_argument("key")
    t = sub.add_parser("tables")
    t.add_argument("runs_dir", type=Path)
    t.add_argument("--out", type=Path, default=Path("results/ablations"))
    t.add_argument("--train-logs", type=Path, default=None)
    t.add_argument("--table", type=int, action="append", default=None)
    args = p.parse_args(argv)
    if args.cmd in ("train-args", "eval-options") and args.key not in RUNS:
        print(f"unknown ablation run {args.key!r}; known: {', '.join(RUNS)}", file=sys.stderr)
        return 2
    if args.cmd == "runs":
        bad = [t for t in args.tables if t not in TABLES]
        if bad:
            print(f"no ablation table {bad[0]}; tables: {', '.join(map(str, TABLES))}", file=sys.stderr)
            return 2
        print("\n".join(runs_for(args.tables or sorted(TABLES))))
    elif args.cmd == "train-args":
        print("\n".join(RUNS[args.key].train_args))
    elif args.cmd == "eval-options":
        print("\n".join(RUNS[args.key].eval_options))
    else:
        try:
            write_tables(args.runs_dir, args.out, args.train_logs, args.table)
        except FileNotFoundError as e:
            print(f"gac.ablations: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
