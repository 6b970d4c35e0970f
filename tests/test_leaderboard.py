import json

import numpy as np
import pytest

from gac_bench import curves, leaderboard
from gac_bench.runner import RunOptions, run_method


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    vals = np.random.default_rng(0).normal(20, 2, 40)
    low, high = leaderboard.bootstrap_ci(vals)
    assert (low, high) == leaderboard.bootstrap_ci(vals)
    assert low < vals.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * vals.std(ddof=1) / np.sqrt(40), rel=0.2)
    assert leaderboard.bootstrap_ci(np.array([3.0])) == (3.0, 3.0)


def test_subsets_of_forth_and_back():
    assert list(leaderboard.subset_frames("forth-and-back", "forward")) == list(range(1, 32))
    assert list(leaderboard.subset_frames("forth-and-back", "return")) == list(range(32, 64))
    assert list(leaderboard.subset_frames("forth-and-back", "loop")) == [63]
    with pytest.raises(ValueError):
        leaderboard.subset_frames("dataset", "return")


@pytest.fixture
def runs(plane_split, tmp_path):
    run_method("identity", {}, RunOptions(split=plane_split, runs_dir=tmp_path, progress=False, limit=2))
    return tmp_path


def test_clip_mean_then_mean_over_clips(runs, plane_split):
    row = next(r for r in leaderboard.collect_rows(runs) if r.trajectory == "dataset")
    per_clip = []
    for clip in ("clipa", "clipb"):
        m = json.loads((runs / plane_split / "dataset" / "identity" / clip / "metrics.json").read_text())
        per_clip.append(np.mean(m["metrics"]["psnr"]["per_frame"][1:]))
    assert row.cells["psnr"].mean == pytest.approx(np.mean(per_clip))
    assert row.cells["psnr"].n == 2 and (row.scored, row.total) == (2, 3)


def test_formats_show_missing_values_honestly(runs):
    rows = leaderboard.write_leaderboard(runs)
    md = (runs / "leaderboard.md").read_text()
    assert "LPIPS ↓" in md and "alexnet-owt-7be5be79.pth" in md and "Protocol paper-v1" in md
    assert "| — (1) |" in md
    csv = (runs / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("split,trajectory,subset,method,psnr,psnr_ci_low")
    lpips_col = csv[0].split(",").index("lpips")
    assert csv[1].split(",")[lpips_col] == ""  # missing, not 0
    data = json.loads((runs / "leaderboard.json").read_text())
    assert data["protocol"]["name"] == "paper-v1" and data["rows"][0]["lpips"] is None
    assert "\\begin{tabular}" in leaderboard.to_latex(rows)


def test_curves_and_plots(runs, tmp_path):
    table = curves.collect_curves(runs)
    fb = table[(table.trajectory == "forth-and-back") & (table.metric == "psnr")]
    assert sorted(fb.frame) == list(range(1, 64))
    # frame 63 of forth-and-back has frame 0's ground truth: identity is pixel-exact there
    assert fb[fb.frame == 63]["mean"].item() == pytest.approx(58.92, abs=0.01)
    paths = curves.plot_curves(runs, tmp_path / "plots")
    assert len(paths) == 2 and all(p.stat().st_size > 10_000 for p in paths)
    # the capped loop-closure frame does not squash the PSNR axis; bands come from the per-clip values
    fig = curves.draw_figure(runs, *sorted({(s, t) for s, t in zip(table.split, table.trajectory)})[-1], ["identity"])
    psnr_ax = fig.axes[0]
    assert psnr_ax.get_ylim()[1] < 50 and any("off scale: 58.9" in t.get_text() for t in psnr_ax.texts)
    assert psnr_ax.get_ylabel() == "PSNR (dB)" and "n=" in psnr_ax.get_legend_handles_labels()[1][0]
    v = curves.per_frame_values(runs, table.split.iloc[0], "forth-and-back", "identity", "psnr")
    mean, half, n = curves.mean_and_band(v)
    assert (n[1:] == v.shape[0]).all() and np.isfinite(half[1:]).all()
    np.testing.assert_allclose(mean[1:], np.nanmean(v[:, 1:], 0))


def test_paper_comparison_puts_reproduced_rows_under_paper_rows():
    from gac_bench.paper_tables import paper_comparison

    cells = {c: None for c in leaderboard.COLUMNS}
    cells["psnr"] = leaderboard.Cell(16.5, 16.0, 17.0, 150)
    row = leaderboard.Row("re10k-test-150", "dataset", "all", "viewcrafter", cells, {}, 150, 150)
    md = paper_comparison([row], "md")
    lines = md.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("| ViewCrafter (paper) |"))
    assert lines[i + 1].startswith("| viewcrafter (reproduced) | 16.50 | – |")
    assert "no reproduced rows yet" in md.split("Table 2.")[1]  # forth-and-back has none


def test_a_metric_over_fewer_clips_than_the_row_says_so():
    cells = {c: None for c in leaderboard.COLUMNS}
    cells["psnr"] = leaderboard.Cell(20.0, 19.0, 21.0, 8)
    cells["r_err"] = leaderboard.Cell(0.02, 0.02, 0.02, 1)
    md = leaderboard.to_markdown([leaderboard.Row("s", "dataset", "all", "m", cells, {}, 8, 8)])
    assert "0.020 (n=1)" in md and "20.00 [19.00, 21.00] |" in md


def test_bootstrap_ci_is_the_95_percent_percentile_interval_of_scipy():
    """Against scipy.stats.bootstrap (percentile method) with many resamples: a 90% interval is 19% narrower and
    fails; Monte Carlo noise of the endpoints at 40,000 resamples is about 1% of the width."""
    from scipy.stats import bootstrap

    vals = np.random.default_rng(1).normal(20, 2, 12)
    low, high = leaderboard.bootstrap_ci(vals, resamples=40_000, seed=3)
    ref = bootstrap((vals,), np.mean, n_resamples=40_000, method="percentile", confidence_level=0.95,
                    random_state=np.random.default_rng(4)).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.03 * width and abs(high - ref.high) < 0.03 * width


def test_latex_has_caption_label_bold_best_and_footnotes():
    from gac_bench.leaderboard import Cell, Row

    def row(method, psnr, lpips, r_err):
        cells = {"psnr": Cell(psnr, psnr - 1, psnr + 1, 3), "ssim": None, "lpips": Cell(lpips, lpips, lpips, 3),
                 "fid": None, "r_err": Cell(r_err, r_err, r_err, 3), "t_err": None}  # fmt: skip
        notes = {"ssim": "not computed", "fid": "needs 50% of frames", "t_err": "not computed"}
        return Row("synthroom", "dataset", "all", method, cells, notes, 3, 8)

    tex = leaderboard.to_latex([row("gac_v2#1", 20.0, 0.30, 0.030), row("identity", 14.0, 0.50, 0.010)])
    assert "\\caption{synthroom, dataset trajectory: mean over 3 clips" in tex
    assert "\\label{tab:gacbench-synthroom-dataset-all}" in tex and tex.count("\\begin{table}") == 1
    gac, ident = [l for l in tex.splitlines() if l.startswith(("gac", "identity"))]
    assert gac.startswith("gac\\_v2\\#1 & \\textbf{20.00}")  # escaped name; higher PSNR is better
    assert "\\textbf{0.300}" in gac and "\\textbf{0.500}" not in ident  # lower LPIPS is better
    assert "\\textbf{0.010}" in ident and "\\textbf{0.030}" not in gac  # lower R_err is better
    assert "--\\textsuperscript{a}" in gac and "--\\textsuperscript{b}" in gac
    assert "\\textsuperscript{b} needs 50\\% of frames" in tex  # footnote kept, % escaped
