"""The ablation tables (issue 12): which runs make which table, paired differences, and the tables regenerated from
the committed records of the 2026-12-01 run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gac import ablations
from gac.train import parse_args
from gac_bench.leaderboard import bootstrap_ci, clip_values, read_method_records
from gac_bench.paired import paired_difference
from gac_bench.paper_tables import load_ablation_rows, load_paper_table, paper_comparison
from gac_bench.paths import repo_root

RECORDS = repo_root() / "results" / "ablations" / "runs_2026-12-01"


def test_paired_difference_is_the_mean_difference_over_shared_clips_with_its_bootstrap_interval():
    a = {"r0": 10.0, "r1": 14.0, "r2": 20.0, "only_a": 99.0}
    b = {"r0": 9.0, "r1": 13.5, "r2": 18.0, "only_b": -5.0}
    d = paired_difference(a, b)
    assert d.n == 3 and d.mean == pytest.approx((1.0 + 0.5 + 2.0) / 3)
    assert (d.ci_low, d.ci_high) == bootstrap_ci(np.array([1.0, 0.5, 2.0]))
    assert paired_difference({"x": 1.0}, {"y": 1.0}) is None


def test_pairing_removes_the_spread_two_rows_share():
    rng = np.random.default_rng(0)
    room = rng.normal(15, 3, 12)  # hard and easy rooms, the same for both rows
    a = {f"r{i}": v + 0.5 + rng.normal(0, 0.1) for i, v in enumerate(room)}
    b = {f"r{i}": v for i, v in enumerate(room)}
    d = paired_difference(a, b)
    low_a, high_a = bootstrap_ci(np.array(list(a.values())))
    assert d.ci_low > 0  # a is better in every room: the paired interval says so
    assert (d.ci_high - d.ci_low) < 0.2 * (high_a - low_a)  # the rows' own intervals overlap almost entirely


def test_every_table_row_names_a_run_and_a_paper_row_that_exist():
    for table, rows in ablations.TABLES.items():
        paper_methods = set(load_paper_table(table)["method"])
        assert sum(r.run == ablations.REFERENCE for r in rows) == 1, table
        for row in rows:
            assert row.run in ablations.RUNS
            assert row.paper_method is None or row.paper_method in paper_methods, (table, row.paper_method)
    assert ablations.runs_for([5]) == ["ref", "add", "nocam"]


@pytest.mark.parametrize("key", sorted(ablations.RUNS))
def test_each_runs_training_arguments_are_accepted_by_gac_train(key):
    args = parse_args(["--vae", "V", "--out", "O", *ablations.RUNS[key].train_args])
    changed = {k for k, v in vars(args).items() if v != getattr(parse_args(["--vae", "V", "--out", "O"]), k)}
    assert len(changed) == (0 if key == ablations.REFERENCE else 1)  # one thing changed per row


def test_each_runs_evaluation_options_are_gac_method_options():
    from gac.method import GaCOptions

    fields = set(GaCOptions.__dataclass_fields__)
    for run in ablations.RUNS.values():
        assert {o.split("=")[0] for o in run.eval_options} <= fields


def test_cli_errors_are_one_line_and_nonzero(capsys):
    assert ablations.main(["runs", "9"]) == 2
    assert ablations.main(["train-args", "nope"]) == 2
    assert ablations.main(["tables", "/nonexistent/runs"]) == 1
    assert "no records of ablation run" in capsys.readouterr().err


def test_clip_values_read_what_the_leaderboard_averages_and_say_why_pose_is_missing():
    clips = read_method_records(RECORDS / "records" / "synthroom-val" / "dataset" / "gac-abl-ref")
    psnr, why = clip_values(clips, "psnr", "dataset")
    assert len(psnr) == 12 and not why
    r_err, why = clip_values(clips, "r_err", "dataset")
    assert r_err == {} and any("not registered" in w for w in why)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablations")
    ablations.write_tables(RECORDS / "records", out, RECORDS / "logs")
    return out


@pytest.mark.parametrize("table", [3, 4, 5, 6])
def test_committed_tables_regenerate_from_the_committed_records(regenerated, table):
    ours = pd.read_csv(regenerated / f"table{table}.csv")
    committed = pd.read_csv(repo_root() / "results" / "ablations" / f"table{table}.csv")
    pd.testing.assert_frame_equal(ours, committed)
    assert (regenerated / f"table{table}.md").read_text() == \
        (repo_root() / "results" / "ablations" / f"table{table}.md").read_text()


def test_reference_row_is_shared_and_differences_are_paired_against_it(regenerated):
    t5 = pd.read_csv(regenerated / "table5.csv")
    psnr = t5[t5["column"] == "psnr"].set_index("run")
    assert np.isnan(psnr.loc["ref", "diff_vs_ref"])
    add = psnr.loc["add"]
    assert add["diff_ci_low"] <= add["diff_vs_ref"] <= add["diff_ci_high"]
    t3 = pd.read_csv(regenerated / "table3.csv")
    assert t3[(t3.run == "ref") & (t3.column == "psnr")]["value"].item() == psnr.loc["ref", "value"]


def test_paper_comparison_prints_our_rows_under_the_paper_rows(regenerated, tmp_path):
    text = paper_comparison([], "md", ablations_dir=regenerated)
    t5 = text[text.index("Table 5."):text.index("Table 6.")]
    lines = [line for line in t5.splitlines() if line.startswith("| ")]
    labels = [line.split(" | ")[0][2:] for line in lines[1:]]
    assert labels.index("GaC without CGA (paper)") + 1 == labels.index("ours: GaC without CGA (Plücker added) (small scale)")
    assert "no rows of ours yet" in paper_comparison([], "md", ablations_dir=tmp_path)
    (tmp_path / "table3.csv").write_text("\n")  # a table written with no rows at all
    assert load_ablation_rows(3, tmp_path).empty


def test_table_paper_needs_no_runs_folder_of_ones_own(tmp_path):
    """`gac-bench table --paper` on a fresh machine prints the paper's tables with the committed ablation rows; a
    missing runs folder is a note, not an error (it still is one without --paper)."""
    from click.testing import CliRunner

    from gac_bench.cli import main

    result = CliRunner().invoke(main, ["table", "--paper", "--runs-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "ours: Warped image (Variant #2) (small scale)" in result.output
    assert "no runs folder" in result.output and not (tmp_path / "none").exists()
    assert CliRunner().invoke(main, ["table", "--runs-dir", str(tmp_path / "none")]).exit_code == 2
    assert CliRunner().invoke(main, ["table", "--paper", "--format", "json", "--runs-dir", str(tmp_path)]).exit_code == 2
