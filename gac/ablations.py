"""The paper's ablations (Tables 3-6) at small scale: which runs make which table, and the tables from their records.

Every row is one GaC trained with the same recipe and budget, changing one thing from the reference run (geometry
as context, depth, CGA, geometry dropout 0.5), and scored by the harness on held-out ``synthroom-val`` rooms (never
on ``synthroom``). The reference run is shared by all four tables, as in the paper (its 19.01 row recurs in each).

    python -m gac.ablations runs [TABLE...]          # run keys a table needs (for benchmarks/gac_ablations.sh)
    python -m gac.ablations runs [TABLE...] [--keys K,K] --seeds S,S  # one line per run and seed: KEY SEED TAG METHOD
    python -m gac.ablations train-args KEY           # gac.train arguments of a run, one per line
    python -m gac.ablations eval-options KEY         # gac method options of a run at evaluation, one per line
    python -m gac.ablations tables RUNS_DIR [--out results/ablations] [--train-logs DIR]

``tables`` writes ``table{3,4,5,6}.csv`` (long format, read by ``gac-bench table --paper``) and ``.md`` (our rows
with 95% bootstrap CIs over rooms, the paired difference against the reference row, and the paper's rows).

Several training seeds per run: seed 0 keeps the plain names (method ``gac-abl-KEY``, work dir and logs ``gac_KEY``),
seed s > 0 adds ``-sS`` to the method (``gac-abl-ref-s1``) and ``_sS`` to the dir and log names (``gac_ref_s1``).
``tables`` finds the seeds in RUNS_DIR, averages each room over the seeds that scored it, and builds the cells and
paired differences over rooms from those room means, exactly as with one seed (one seed: the same output as before);
the seed-to-seed spread (each seed's mean over rooms) is shown beside them, with a ``seeds`` column.
"""

from __future__ import annotations

import argparse
import json
import re
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


def method_name(key: str, seed: int = 0) -> str:
    """The harness method name of a run's seed: ``gac-abl-ref`` (seed 0, the names of the committed records),
    ``gac-abl-ref-s1``."""
    return f"gac-abl-{key}" + (f"-s{seed}" if seed else "")


def run_tag(key: str, seed: int = 0) -> str:
    """A run's seed in work-dir and log names (``gac_{tag}``, ``eval_{tag}_{shard}.log``): ``ref``, ``ref_s1``."""
    return key + (f"_s{seed}" if seed else "")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; ValueError (one line) on anything else."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit():
            raise ValueError(f"seeds must be non-negative integers, comma-separated; got {text!r}")
        if int(part) in out:
            raise ValueError(f"seed {int(part)} given twice in {text!r}")
        out.append(int(part))
    return out


def select_runs(tables: list[int], keys: str = "", seeds: str = "0") -> list[tuple[str, int]]:
    """(key, seed) for every run of the tables (all four when none), restricted to ``keys`` (comma-separated; empty:
    all), each once per seed; ValueError (one line) for an unknown key, one the tables do not use, or bad seeds."""
    tables = tables or sorted(TABLES)
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ValueError(f"no ablation table {bad[0]}; tables: {', '.join(map(str, TABLES))}")
    runs = runs_for(tables)
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    for k in wanted:
        if k not in RUNS:
            raise ValueError(f"unknown ablation run {k!r}; known: {', '.join(RUNS)}")
        if k not in runs:
            raise ValueError(f"ablation run {k!r} is not in table(s) {', '.join(map(str, tables))} "
                             f"(their runs: {', '.join(runs)})")
    seed_list = parse_seeds(seeds)
    return [(k, s) for k in runs if not wanted or k in wanted for s in seed_list]


def seeds_found(runs_dir: Path, key: str) -> list[int]:
    """The seeds of a run with records in RUNS_DIR (method folders ``gac-abl-KEY`` and ``gac-abl-KEY-sN``)."""
    folder = Path(runs_dir) / SPLIT / TRAJECTORY
    pattern = re.compile(re.escape(method_name(key)) + r"(?:-s([1-9][0-9]*))?")
    found = [] if not folder.is_dir() else [pattern.fullmatch(p.name) for p in folder.iterdir() if p.is_dir()]
    return sorted(int(m.group(1) or 0) for m in found if m)


# ---------------------------------------------------------------------------------------------- tables


@dataclass
class RowResult:
    cells: dict[str, Cell | None]  # over rooms, of each room's mean over the run's seeds
    diffs: dict[str, Cell | None]  # paired against the reference, over the rooms both scored (room means over seeds)
    per_clip: dict[str, dict[str, float]]  # metric -> room -> mean over the seeds that scored the room
    missing: dict[str, set[str]]  # metric -> why clips have no value (e.g. colmap could not register frame 0)
    train_s_per_step: float | None  # from the lowest seed's train log (seed 0 normally)
    infer_s_per_img: float | None  # median over every seed's clips
    steps: int | None  # the lowest seed's last step
    seeds: tuple[int, ...] = (0,)
    seed_means: dict[str, dict[int, float]] | None = None  # metric -> seed -> that seed's mean over its rooms
    seed_steps: dict[int, int | None] | None = None  # seed -> last step (every seed's train log)


def _per_clip(runs_dir: Path, key: str, seed: int = 0) -> tuple[dict[str, dict[str, float]], dict[str, set[str]],
                                                                 list[float]]:
    folder = Path(runs_dir) / SPLIT / TRAJECTORY / method_name(key, seed)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no records of ablation run {key!r} (run benchmarks/gac_ablations.sh)")
    clips = read_method_records(folder)
    both = {m: clip_values(clips, m, TRAJECTORY) for m in METRICS}
    out, missing = {m: v for m, (v, _) in both.items()}, {m: r for m, (_, r) in both.items()}
    # the rollout's own seconds per generated view (generation info; frame 0 is the given reference), not
    # wall_time_s, which adds data loading, writing frames and, on a process's first clip, the model's setup; the
    # median over clips (collect), so a first clip's one-off torch.compile does not count
    per_view = [(c.generation.get("info") or {}).get("seconds_per_view") for c in clips if c.ok]
    return out, missing, [float(s) for s in per_view if s is not None]


def _room_means(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Room -> its mean over the seeds that scored it (one seed: its values unchanged)."""
    if len(per_seed) == 1:
        return dict(per_seed[0])
    rooms = sorted(set().union(*per_seed))
    return {r: float(np.mean([v[r] for v in per_seed if r in v])) for r in rooms}


def _train_stats(train_logs: Path | None, key: str, seed: int = 0) -> tuple[float | None, int | None]:
    """Seconds per step (median over logged intervals) and the last step, from gac.train's train_log.jsonl."""
    path = None if train_logs is None else Path(train_logs) / f"gac_{run_tag(key, seed)}_train_log.jsonl"
    if path is None or not path.is_file():
        return None, None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = np.array([r["step"] for r in rows], dtype=float)
    times = np.array([r["elapsed_s"] for r in rows], dtype=float)
    rates = np.diff(times) / np.maximum(np.diff(steps), 1)
    return (float(np.median(rates[len(rates) // 10:])) if len(rates) else None), int(steps[-1])


def _cell(values: dict[str, float]) -> Cell | None:
    return mean_cell([values[k] for k in sorted(values)]) if values else None


def _collect_run(runs_dir: Path, key: str, train_logs: Path | None) -> RowResult:
    """One run over every seed it has in RUNS_DIR: per room, the mean over the seeds that scored it; then the cells
    over rooms as for one seed (the CI covers rooms, not seeds; each seed's own mean is kept for the spread)."""
    seeds = seeds_found(runs_dir, key) or [0]  # none: seed 0's FileNotFoundError names the folder looked for
    per_seed = {s: _per_clip(runs_dir, key, s) for s in seeds}
    vals = {m: _room_means([per_seed[s][0][m] for s in seeds]) for m in METRICS}
    missing = {m: set().union(*(per_seed[s][1][m] for s in seeds)) for m in METRICS}
    per_view = [t for s in seeds for t in per_seed[s][2]]
    s_img = float(np.median(per_view)) if per_view else None
    seed_means = {m: {s: float(np.mean([per_seed[s][0][m][r] for r in sorted(per_seed[s][0][m])]))
                      for s in seeds if per_seed[s][0][m]} for m in METRICS}
    # training speed and steps: the lowest seed's log (seed 0 normally), not a mean over seeds, so a row's
    # s/step is one run's measurement, as with one seed; every seed's last step is kept to show when they differ
    stats = {s: _train_stats(train_logs, key, s) for s in seeds}
    s_step, steps = stats[seeds[0]]
    cells = {m: _cell(vals[m]) for m in METRICS}
    return RowResult(cells, {m: None for m in METRICS}, vals, missing, s_step, s_img, steps, tuple(seeds),
                     seed_means, {s: st for s, (_, st) in stats.items()})


def collect(runs_dir: Path, keys: list[str], train_logs: Path | None = None) -> dict[str, RowResult]:
    out = {k: _collect_run(runs_dir, k, train_logs) for k in keys}
    ref = out[REFERENCE].per_clip if REFERENCE in out else None
    for k, r in out.items():
        # paired over rooms, each row's room values being its means over seeds (the seed spread is shown apart)
        r.diffs = {m: (paired_difference(r.per_clip[m], ref[m]) if ref is not None and k != REFERENCE else None)
                   for m in METRICS}
    return out


def _multi_seed(table: int, results: dict[str, RowResult]) -> bool:
    return any(len(results[row.run].seeds) > 1 for row in TABLES[table])


def long_rows(table: int, results: dict[str, RowResult]) -> pd.DataFrame:
    """Our rows of one table in the long format of ``results/ablations/table{N}.csv``.

    When a row of the table has several seeds, three columns follow the others: ``seeds`` (how many), and
    ``seed_min`` / ``seed_max`` (the lowest and highest of the seeds' own means over rooms, metric rows only).
    With one seed everywhere they are left out, so such a table is the same as before seeds existed."""
    multi, out = _multi_seed(table, results), []
    for row in TABLES[table]:
        r = results[row.run]
        extra = {"seeds": len(r.seeds)} if multi else {}
        for m in METRICS:
            c, d = r.cells[m], r.diffs[m]
            if c is None:
                continue
            spread = list((r.seed_means or {}).get(m, {}).values())
            seed_cols = {**extra, "seed_min": min(spread, default=None), "seed_max": max(spread, default=None)}
            out.append({"table": table, "run": row.run, "method": f"ours: {row.label}", "row_label": row.label,
                        "paper_method": row.paper_method or "", "column": m, "value": c.mean,
                        "ci_low": c.ci_low, "ci_high": c.ci_high, "n": c.n,
                        "diff_vs_ref": None if d is None else d.mean,
                        "diff_ci_low": None if d is None else d.ci_low,
                        "diff_ci_high": None if d is None else d.ci_high, **(seed_cols if multi else {})})
        for col, v in (("train_s_per_step", r.train_s_per_step), ("infer_s_per_img", r.infer_s_per_img)):
            if v is not None:
                out.append({"table": table, "run": row.run, "method": f"ours: {row.label}", "row_label": row.label,
                            "paper_method": row.paper_method or "", "column": col, "value": v, **extra})
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


def _fmt_seeds(r: RowResult) -> str:
    return str(len(r.seeds)) + ("" if r.seeds == (0,) else f" ({', '.join(f's{s}' for s in r.seeds)})")


def _fmt_seed_means(r: RowResult, cols: list[str]) -> str:
    if len(r.seeds) < 2:
        return "–"
    means = r.seed_means or {}
    parts = [f"{m} " + " / ".join(f"{means[m][s]:.{DIGITS[m]}f}" if s in means.get(m, {}) else "–" for s in r.seeds)
             for m in cols if means.get(m)]
    return "; ".join(parts) or "–"


def _fmt_steps(r: RowResult) -> str:
    steps = [st for st in (r.seed_steps or {}).values()]
    if len(set(steps)) > 1:
        return " / ".join("–" if st is None else str(st) for st in steps)
    return "–" if r.steps is None else str(r.steps)


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
    multi = _multi_seed(table, results)
    head = ["row", *(["seeds"] if multi else []), *[f"{m} [95% CI]" for m in cols],
            *(["per-seed means (s0 / s1 / …)"] if multi else []),
            *[f"Δ{m} vs ref [paired 95% CI]" for m in ("psnr", "ssim")], "train s/step", "infer s/img", "steps"]
    lines = [f"### {CAPTIONS[table]}", "", "Ours (synthroom-val, dataset trajectory; * = paired CI excludes 0):", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in TABLES[table]:
        r = results[row.run]
        cells = [row.label, *([_fmt_seeds(r)] if multi else []), *[_fmt_ci(r.cells[m], m) for m in cols],
                 *([_fmt_seed_means(r, cols)] if multi else []),
                 *[_fmt_diff(r.diffs[m], m) or "(reference)" for m in ("psnr", "ssim")],
                 "–" if r.train_s_per_step is None else f"{r.train_s_per_step:.3f}",
                 "–" if r.infer_s_per_img is None else f"{r.infer_s_per_img:.2f}",
                 _fmt_steps(r)]
        lines.append("| " + " | ".join(cells) + " |")
    if multi:
        lines += ["", "Several training seeds: a row's rooms are each averaged over the row's seeds, and its 95% CI "
                  "and the paired Δ (per-room seed means of both rows, paired over rooms) cover rooms only; the "
                  "seed-to-seed spread is shown apart, as each seed's own mean over rooms (seeds in ascending "
                  "order, named in the seeds column). Train s/step is the lowest seed's training log; steps lists "
                  "every seed's when they differ."]
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
    r = sub.add_parser("runs")
    r.add_argument("tables", nargs="*", type=int)
    r.add_argument("--keys", default="", help="comma-separated run keys to keep (RUN_KEYS); empty: every run")
    r.add_argument("--seeds", default=None,
                   help="comma-separated seeds (SEEDS): print KEY SEED TAG METHOD per run and seed instead of keys")
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
        try:
            selected = select_runs(args.tables, args.keys, "0" if args.seeds is None else args.seeds)
        except ValueError as e:
            print(f"gac.ablations: {e}", file=sys.stderr)
            return 2
        if args.seeds is None:
            print("\n".join(k for k, _ in selected))
        else:
            print("\n".join(f"{k} {s} {run_tag(k, s)} {method_name(k, s)}" for k, s in selected))
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
