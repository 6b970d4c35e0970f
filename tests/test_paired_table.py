"""`gac-bench table --against NAME`: each row's paired difference from one method, checked against the per-clip
records themselves."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gac_bench.cli import main
from gac_bench.leaderboard import bootstrap_ci
from gac_bench.paired import paired_rows
from gac_bench.runner import RunOptions, run_method


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.fixtures import register_plane_split

    root = tmp_path_factory.mktemp("paired")
    split = register_plane_split(root / "data")
    opts = RunOptions(split=split, runs_dir=root / "runs", progress=False, limit=3)
    for method in ("identity", "depth-warp"):
        run_method(method, {}, opts)
    return root / "runs", split


def _clip_means(runs_dir, split, trajectory, method, frames):
    out = {}
    for folder in sorted(p for p in (runs_dir / split / trajectory / method).iterdir() if p.is_dir()):
        per_frame = json.loads((folder / "metrics.json").read_text())["metrics"]["psnr"]["per_frame"]
        out[folder.name] = float(np.mean([per_frame[i] for i in frames]))
    return out


def test_differences_are_paired_over_clips_and_subsets(runs):
    runs_dir, split = runs
    rows = paired_rows(runs_dir, "identity")
    assert {(r.trajectory, r.subset) for r in rows} == {("dataset", "all"), ("forth-and-back", "all"),
                                                        ("forth-and-back", "forward"), ("forth-and-back", "return"),
                                                        ("forth-and-back", "loop")}  # fmt: skip
    assert {r.method for r in rows} == {"depth-warp"}
    for trajectory, subset, frames in (("dataset", "all", range(1, 64)), ("forth-and-back", "loop", [63])):
        ours = _clip_means(runs_dir, split, trajectory, "depth-warp", frames)
        base = _clip_means(runs_dir, split, trajectory, "identity", frames)
        diff = np.array([ours[k] - base[k] for k in sorted(ours)])
        cell = next(r for r in rows if (r.trajectory, r.subset) == (trajectory, subset)).diffs["psnr"]
        assert cell.mean == pytest.approx(diff.mean()) and cell.n == 3
        assert (cell.ci_low, cell.ci_high) == pytest.approx(bootstrap_ci(diff))
    dataset = next(r for r in rows if r.trajectory == "dataset")
    assert dataset.diffs["psnr"].mean > 0  # depth-warp reads the exact depth: better than the still reference
    assert dataset.diffs["lpips"] is None  # no LPIPS weights in the tests: missing, not zero


def test_cli_prints_the_paired_table_and_fails_in_one_line_on_unknown_names(runs):
    runs_dir, _ = runs
    res = CliRunner().invoke(main, ["table", "--runs-dir", str(runs_dir), "--against", "identity"])
    assert res.exit_code == 0, res.output
    assert "| forth-and-back | loop | depth-warp |" in res.output and "minus identity" in res.output
    csv = CliRunner().invoke(main, ["table", "--runs-dir", str(runs_dir), "--against", "identity", "--format", "csv"])
    assert csv.output.splitlines()[0].startswith("split,trajectory,subset,method,base,d_psnr,")
    bad = CliRunner().invoke(main, ["table", "--runs-dir", str(runs_dir), "--against", "nosuch"])
    assert bad.exit_code == 2
    assert "no records of 'nosuch'" in bad.output and "depth-warp, identity" in bad.output
