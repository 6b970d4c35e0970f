"""Several training seeds per ablation run (issue 12): run selection for benchmarks/gac_ablations.sh, the seeds found
in a runs folder, per-room averaging over seeds, and one-seed tables unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from gac import ablations
from gac_bench.leaderboard import clip_values, mean_cell, read_method_records
from gac_bench.paired import paired_difference
from gac_bench.paper_tables import load_ablation_rows
from gac_bench.paths import repo_root

RECORDS = repo_root() / "results" / "ablations" / "runs_2026-12-01"
METHODS = RECORDS / "records" / ablations.SPLIT / ablations.TRAJECTORY


def test_seed_0_keeps_the_plain_names_and_other_seeds_add_a_suffix():
    assert ablations.method_name("ref") == ablations.method_name("ref", 0) == "gac-abl-ref"
    assert ablations.method_name("ref", 1) == "gac-abl-ref-s1"
    assert (ablations.run_tag("ref", 0), ablations.run_tag("ref", 12)) == ("ref", "ref_s12")


def test_runs_are_selected_by_key_and_expanded_per_seed(capsys):
    assert ablations.select_runs([5]) == [("ref", 0), ("add", 0), ("nocam", 0)]
    assert ablations.select_runs([], "nodrop,warped", "0,2") == [("warped", 0), ("warped", 2), ("nodrop", 0),
                                                                   ("nodrop", 2)]
    assert ablations.main(["runs", "6", "--seeds", "0,1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ref 0 ref gac-abl-ref", "ref 1 ref_s1 gac-abl-ref-s1",
        "nodrop 0 nodrop gac-abl-nodrop", "nodrop 1 nodrop_s1 gac-abl-nodrop-s1"]
    assert ablations.main(["runs", "5", "--keys", "add"]) == 0  # no --seeds: keys only, as before
    assert capsys.readouterr().out.split() == ["add"]
    for argv in (["runs", "--keys", "bogus"], ["runs", "5", "--keys", "warped"], ["runs", "--seeds", "0,x"],
                 ["runs", "--seeds", "1,1"], ["runs", "--seeds", "-1"], ["runs", "9"]):
        assert ablations.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("gac.ablations: "), (argv, err)


def _shift_psnr(folder, delta):
    for metrics in folder.glob("*/metrics.json"):
        d = json.loads(metrics.read_text())
        psnr = d["metrics"]["psnr"]
        psnr["per_frame"] = [None if v is None else v + delta for v in psnr["per_frame"]]
        psnr["mean"] += delta
        metrics.write_text(json.dumps(d))


@pytest.fixture()
def runs(tmp_path):
    """Table 6's committed records (ref and nodrop, seed 0) and their train logs, in a scratch runs folder."""
    records, logs = tmp_path / "records" / ablations.SPLIT / ablations.TRAJECTORY, tmp_path / "logs"
    logs.mkdir(parents=True)
    for key in ("ref", "nodrop"):
        shutil.copytree(METHODS / ablations.method_name(key), records / ablations.method_name(key))
        shutil.copy(RECORDS / "logs" / f"gac_{key}_train_log.jsonl", logs)
    return tmp_path / "records", logs


def _add_ref_seed_1(runs_dir, logs, drop_room="val11"):
    """ref at seed 1: seed 0's records with psnr +1 dB and one room missing, and a train log that stopped early."""
    s1 = runs_dir / ablations.SPLIT / ablations.TRAJECTORY / ablations.method_name("ref", 1)
    shutil.copytree(runs_dir / ablations.SPLIT / ablations.TRAJECTORY / "gac-abl-ref", s1)
    _shift_psnr(s1, 1.0)
    shutil.rmtree(s1 / drop_room)
    rows = [json.loads(line) for line in (logs / "gac_ref_train_log.jsonl").read_text().splitlines()]
    rows = [dict(r, elapsed_s=r["elapsed_s"] * 3) for r in rows if r["step"] <= 800]
    (logs / "gac_ref_s1_train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_one_seed_tables_are_unchanged(runs, tmp_path):
    runs_dir, logs = runs
    assert ablations.seeds_found(runs_dir, "ref") == [0]
    ablations.write_tables(runs_dir, tmp_path / "out", logs, [6])
    for ext in ("csv", "md"):
        ours = (tmp_path / "out" / f"table6.{ext}").read_text()
        assert ours == (repo_root() / "results" / "ablations" / f"table6.{ext}").read_text()
    assert "seeds" not in pd.read_csv(tmp_path / "out" / "table6.csv").columns


def test_rooms_are_averaged_over_the_seeds_that_scored_them(runs, tmp_path):
    runs_dir, logs = runs
    _add_ref_seed_1(runs_dir, logs)
    (runs_dir / ablations.SPLIT / ablations.TRAJECTORY / "gac-abl-refx-s1").mkdir()  # another run's name: not ref's
    assert ablations.seeds_found(runs_dir, "ref") == [0, 1]
    assert ablations.seeds_found(runs_dir, "nodrop") == [0]

    seed0, _ = clip_values(read_method_records(METHODS / "gac-abl-ref"), "psnr", ablations.TRAJECTORY)
    expected = {room: v + (0.0 if room == "val11" else 0.5) for room, v in seed0.items()}  # val11: seed 0 only
    results = ablations.collect(runs_dir, ["ref", "nodrop"], logs)
    ref, nodrop = results["ref"], results["nodrop"]
    assert ref.seeds == (0, 1) and nodrop.seeds == (0,)
    assert ref.per_clip["psnr"] == pytest.approx(expected)
    assert ref.cells["psnr"].mean == pytest.approx(np.mean(list(expected.values())))
    assert ref.cells["psnr"].n == 12  # the CI is over rooms, not rooms x seeds
    assert ref.seed_means["psnr"][0] == pytest.approx(np.mean(list(seed0.values())))
    assert ref.seed_means["psnr"][1] == pytest.approx(np.mean([v + 1 for r, v in seed0.items() if r != "val11"]))
    d = nodrop.diffs["psnr"]  # paired over rooms against ref's per-room means over seeds
    expected_diff = paired_difference(nodrop.per_clip["psnr"], ref.per_clip["psnr"])
    assert (d.mean, d.ci_low, d.ci_high, d.n) == (expected_diff.mean, expected_diff.ci_low, expected_diff.ci_high, 12)
    nodrop0, _ = clip_values(read_method_records(METHODS / "gac-abl-nodrop"), "psnr", ablations.TRAJECTORY)
    assert d.mean == pytest.approx(np.mean([nodrop0[r] - expected[r] for r in nodrop0]))
    # training speed from seed 0's log (seed 1's ran at a third of the speed); steps kept per seed
    assert ref.train_s_per_step == pytest.approx(ablations._train_stats(logs, "ref")[0])
    assert (ref.steps, ref.seed_steps) == (1000, {0: 1000, 1: 800})

    ablations.write_tables(runs_dir, tmp_path / "out", logs, [6])
    csv = pd.read_csv(tmp_path / "out" / "table6.csv")
    assert csv.groupby("run")["seeds"].unique().to_dict() == {"nodrop": [1], "ref": [2]}
    psnr = csv[csv["column"] == "psnr"].set_index("run")
    assert psnr.loc["ref", "value"] == pytest.approx(mean_cell([expected[r] for r in sorted(expected)]).mean)
    assert (psnr.loc["ref", "seed_min"], psnr.loc["ref", "seed_max"]) == pytest.approx(
        (ref.seed_means["psnr"][0], ref.seed_means["psnr"][1]))
    assert psnr.loc["nodrop", "diff_vs_ref"] == pytest.approx(d.mean)
    assert not load_ablation_rows(6, tmp_path / "out").empty  # gac-bench table --paper still reads it

    md = (tmp_path / "out" / "table6.md").read_text()
    lines = md.splitlines()
    ref_line = next(line for line in lines if line.startswith("| GaC with geometry dropout |"))
    header = next(line for line in lines if line.startswith("| row |"))  # columns: pose ones only where a row has them
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in ref_line.strip("|").split("|")]))
    assert cells["seeds"] == "2 (s0, s1)"
    assert cells["per-seed means (s0 / s1 / …)"] == (f"psnr {ref.seed_means['psnr'][0]:.2f} / {ref.seed_means['psnr'][1]:.2f}; "
                        f"ssim {ref.seed_means['ssim'][0]:.3f} / {ref.seed_means['ssim'][1]:.3f}")
    assert cells["steps"] == "1000 / 800"
    assert "cover rooms only" in md


def test_a_run_with_only_a_later_seed_is_read_under_that_seed(runs, tmp_path):
    runs_dir, logs = runs
    _add_ref_seed_1(runs_dir, logs)
    s1 = runs_dir / ablations.SPLIT / ablations.TRAJECTORY / ablations.method_name("nodrop", 1)
    shutil.copytree(runs_dir / ablations.SPLIT / ablations.TRAJECTORY / "gac-abl-nodrop", s1)
    shutil.rmtree(runs_dir / ablations.SPLIT / ablations.TRAJECTORY / "gac-abl-nodrop")  # seed 1 only
    results = ablations.collect(runs_dir, ["ref", "nodrop"], logs)
    assert results["nodrop"].seeds == (1,)
    assert results["nodrop"].train_s_per_step is None  # no gac_nodrop_s1 train log was written
    assert ablations._fmt_seeds(results["nodrop"]) == "1 (s1)"
