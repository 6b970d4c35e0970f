"""The numbers the GaC paper reports (Tables 1-6), and the paper's table layout for printing them beside ours.

``results/paper/paper_tables.csv`` is a long-format transcription, one cell per row:
``table, dataset (re10k|tanks), trajectory (dataset|forth-and-back), method, method_key, row_label (the row's
first cell exactly as printed), column (psnr, ssim, lpips, fid, r_err, t_err, train_s_per_step,
infer_s_per_img), value (the printed number, kept as a string: "0.550" stays "0.550"), printed (the cell text
as printed, e.g. "24 s/step"), comment``. Everything is read as strings so no digit is lost or added.

:func:`paper_layout` renders long-format rows (paper rows and/or reproduced rows, told apart by a ``source``
column) the way the paper does: one row per method, RealEstate10K and Tanks-and-Temples side by side.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gac_bench.paths import repo_root

PAPER_TABLES_CSV = Path("results") / "paper" / "paper_tables.csv"

DATASETS = {"re10k": "RealEstate10K", "tanks": "Tanks-and-Temples"}
DATASETS_SHORT = {"re10k": "RE10K", "tanks": "T&T"}  # for the one-line markdown header
COLUMNS = {  # column -> (header, decimals used by the paper for reproduced floats)
    "psnr": ("PSNR↑", 2),
    "ssim": ("SSIM↑", 3),
    "lpips": ("LPIPS↓", 3),
    "fid": ("FID↓", 2),
    "r_err": ("R_err↓", 3),
    "t_err": ("T_err↓", 3),
    "train_s_per_step": ("Train s/step", 0),
    "infer_s_per_img": ("Infer s/img", 1),
}
CAPTIONS = {
    1: "Table 1. Scene video generation from a single view with the dataset camera trajectory.",
    2: "Table 2. Scene video generation from a single view with the forth-and-back trajectory.",
    3: "Table 3. Ablation: variants of geometry-as-context (RealEstate10K).",
    4: "Table 4. Ablation: choice of geometry (RealEstate10K).",
    5: "Table 5. Ablation: camera gated attention (RealEstate10K).",
    6: "Table 6. Ablation: geometry dropout; times on H100 (RealEstate10K).",
}
MISSING = "–"  # shown for a cell a row does not have; never 0
ABLATION_TABLES = (3, 4, 5, 6)
ABLATIONS_DIR = Path("results") / "ablations"
ABLATION_CSV = "table{table}.csv"  # our small-scale rows, written by ``python -m gac.ablations tables``
ABLATION_SCALE = "ours: 18M GaC, synthroom-val rooms, results/ablations/"


def paper_tables_path() -> Path:
    return repo_root() / PAPER_TABLES_CSV


def load_paper_table(table: int | None = None, path: Path | None = None) -> pd.DataFrame:
    """The transcribed cells (all strings) of one table, or of all tables, with ``source`` = "paper"."""
    df = pd.read_csv(path or paper_tables_path(), dtype=str, keep_default_na=False)
    df["table"] = df["table"].astype(int)
    if table is not None:
        df = df[df["table"] == table].reset_index(drop=True)
        if df.empty:
            raise ValueError(f"the paper has no Table {table}; known: {sorted(CAPTIONS)}")
    df["source"] = "paper"
    return df


# --- layout ------------------------------------------------------------------------------------------------------


def _cell_text(value, column: str) -> str:
    """Paper strings stay exactly as printed; reproduced floats get the paper's number of decimals."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return MISSING
    if isinstance(value, str):
        return value
    return f"{float(value):.{COLUMNS.get(column, ('', 3))[1]}f}"


def _row_order(df: pd.DataFrame) -> list[tuple]:
    """Methods in first-appearance order of the paper rows; each method's reproduced row right after its paper row."""
    group = df["method_key"].where(df["method_key"] != "", df["method"])
    keys = list(dict.fromkeys(zip(group, df["method"], df["source"], df["trajectory"])))
    first_seen = {g: i for i, (g, *_) in reversed(list(enumerate(keys)))}
    source_rank = {"paper": 0, "reproduced": 1, "small scale": 1}
    return sorted(keys, key=lambda k: (first_seen[k[0]], source_rank.get(k[2], 2), k[3]))


def paper_layout_frame(df_rows: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per (method, source[, trajectory]), columns (dataset, column), text cells."""
    df = df_rows.copy()
    for name, default in (("source", "paper"), ("method_key", ""), ("trajectory", "")):
        if name not in df:
            df[name] = default
    df["method_key"] = df["method_key"].fillna("").astype(str)
    datasets = [d for d in DATASETS if d in set(df["dataset"])]
    columns = [c for c in COLUMNS if c in set(df["column"])]
    show_source = df["source"].nunique() > 1
    show_traj = df["trajectory"].nunique() > 1
    out = {}
    for group, method, source, traj in _row_order(df):
        sel = df[(df["method"] == method) & (df["source"] == source) & (df["trajectory"] == traj)]
        cells = {(d, c): MISSING for d in datasets for c in columns}
        for row in sel.itertuples():
            cells[(row.dataset, row.column)] = _cell_text(row.value, row.column)
        label = method + (f" [{traj}]" if show_traj else "") + (f" ({source})" if show_source else "")
        out[label] = cells
    wide = pd.DataFrame.from_dict(out, orient="index")
    wide.columns = pd.MultiIndex.from_tuples(wide.columns, names=["dataset", "column"])
    return wide


def _flat_header(dataset: str, column: str, n_datasets: int) -> str:
    header = COLUMNS[column][0]
    return f"{DATASETS_SHORT[dataset]} {header}" if n_datasets > 1 else header


def _to_md(wide: pd.DataFrame) -> str:
    n = wide.columns.get_level_values(0).nunique()
    headers = ["Method"] + [_flat_header(d, c, n) for d, c in wide.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join([label, *row]) + " |" for label, row in zip(wide.index, wide.values.tolist())]
    return "\n".join(lines)


def _to_csv(wide: pd.DataFrame) -> str:
    flat = wide.replace(MISSING, "")
    flat.columns = [f"{d}/{c}" for d, c in wide.columns]
    return flat.rename_axis("method").to_csv(lineterminator="\n")


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_")):
        text = text.replace(a, b)
    return text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace(MISSING, "--")


def _to_latex(wide: pd.DataFrame) -> str:
    datasets = list(dict.fromkeys(wide.columns.get_level_values(0)))
    per = [sum(1 for d, _ in wide.columns if d == ds) for ds in datasets]
    spec = "l" + "".join("|" + "c" * k for k in per)
    top = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{DATASETS[ds]}}}" for ds, k in zip(datasets, per))
    sub = " & ".join(_latex_escape(COLUMNS[c][0]) for _, c in wide.columns)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", rf"Method & {top} \\", rf" & {sub} \\", r"\midrule"]
    lines += [
        " & ".join(_latex_escape(str(x)) for x in [label, *row]) + r" \\"
        for label, row in zip(wide.index, wide.values.tolist())
    ]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])


def paper_layout(df_rows: pd.DataFrame, fmt: str = "md") -> str:
    """Render long-format rows in the paper's layout: method rows, 6 metric columns per dataset, side by side.

    ``df_rows`` has columns method, dataset, column, value (+ optional source "paper"/"reproduced",
    method_key, trajectory). Reproduced rows sharing a ``method_key`` with a paper row are printed right under
    it. Paper values print exactly as transcribed; reproduced floats with the paper's decimals; absent cells "–".
    """
    renderers = {"md": _to_md, "csv": _to_csv, "latex": _to_latex}
    if fmt not in renderers:
        raise ValueError(f"fmt must be one of {sorted(renderers)}, got {fmt!r}")
    return renderers[fmt](paper_layout_frame(df_rows))


SPLIT_TO_DATASET = {"re10k-test-150": "re10k", "tanks-150": "tanks"}
TABLE_FOR_TRAJECTORY = {"dataset": 1, "forth-and-back": 2}


def reproduced_rows(rows, trajectory: str) -> pd.DataFrame:
    """Leaderboard rows (``gac_bench.leaderboard.Row``) of the paper's splits as long-format reproduced rows."""
    out = []
    for r in rows:
        dataset = SPLIT_TO_DATASET.get(r.split)
        if dataset is None or r.trajectory != trajectory or r.subset != "all":
            continue
        for column in ("psnr", "ssim", "lpips", "fid", "r_err", "t_err"):
            cell = r.cells.get(column)
            if cell is not None:
                out.append({"method": r.method, "method_key": r.method, "dataset": dataset,
                            "column": column, "value": cell.mean, "source": "reproduced",
                            "trajectory": trajectory})
    return pd.DataFrame(out)


def load_ablation_rows(table: int, folder: Path | None = None) -> pd.DataFrame:
    """Our small-scale rows of ablation Table 3-6 (``results/ablations/table{N}.csv``) as long-format reproduced
    rows, each keyed to the paper row it reproduces so it prints right under it; empty when not run yet.

    They are scored on synthroom-val, not RealEstate10K: they go in the paper's columns for a side-by-side
    reading of the ordering, never as a reproduction of the paper's values."""
    from gac_bench.leaderboard import COLUMNS as METRIC_COLUMNS

    path = Path(folder or repo_root() / ABLATIONS_DIR) / ABLATION_CSV.format(table=table)
    try:
        df = pd.read_csv(path, keep_default_na=False)
    except (FileNotFoundError, pd.errors.EmptyDataError):  # not run yet, or a table written with no rows
        return pd.DataFrame()
    df = df[df["column"].isin(METRIC_COLUMNS)]
    paper = load_paper_table(table)
    key_of = {m: (k or m) for m, k in zip(paper["method"], paper["method_key"])}
    return pd.DataFrame({
        "method": df["method"], "method_key": [key_of.get(m, "") for m in df["paper_method"]],
        "dataset": "re10k", "column": df["column"], "value": df["value"].astype(float), "source": "small scale",
        "trajectory": "dataset",
    })


def _titled(table: int, body: str, fmt: str, note: str) -> str:
    title = CAPTIONS[table] + note
    return (f"% {title}" if fmt == "latex" else title) + "\n\n" + body


def paper_comparison(rows, fmt: str = "md", ablations_dir: Path | None = None) -> str:
    """Tables 1 and 2 of the paper with every reproduced row of re10k-test-150 / tanks-150 beside its paper row,
    then Tables 3-6 with our small-scale ablation rows (``results/ablations/``) under the paper's."""
    parts = []
    for trajectory, table in TABLE_FOR_TRAJECTORY.items():
        paper = load_paper_table(table)
        ours = reproduced_rows(rows, trajectory)
        both = pd.concat([paper, ours], ignore_index=True) if len(ours) else paper
        note = "" if len(ours) else " (no reproduced rows yet: run re10k-test-150 / tanks-150)"
        parts.append(_titled(table, paper_layout(both, fmt), fmt, note))
    for table in ABLATION_TABLES:
        paper = load_paper_table(table)
        ours = load_ablation_rows(table, ablations_dir)
        both = pd.concat([paper, ours], ignore_index=True) if len(ours) else paper
        note = f" ({ABLATION_SCALE})" if len(ours) else " (no rows of ours yet: benchmarks/gac_ablations.sh)"
        parts.append(_titled(table, paper_layout(both, fmt), fmt, note))
    return "\n\n".join(parts) + "\n"
