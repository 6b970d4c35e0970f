"""Quiet, useful output: usage errors before any metric loads, one short note per missing weight, and warnings that
print above the progress bar instead of inside it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from click.testing import CliRunner

from gac_bench.cli import main
from gac_bench.metrics import fid
from gac_bench.scoring import missing_notes
from gac_bench.weights import LPIPS_ALEXNET, WeightsMissing


def test_missing_notes_are_one_short_line_per_cause():
    unavailable = {
        "lpips": str(WeightsMissing(LPIPS_ALEXNET)),  # the real messages, 300-400 characters each
        "fid": fid._missing_message(Path("/somewhere/weights") / fid.FID_INCEPTION.name),
        "r_err": "no pose estimator selected (--estimator)",
        "t_err": "no pose estimator selected (--estimator)",
    }
    assert min(len(v) for k, v in unavailable.items() if k in ("lpips", "fid")) > 250
    notes = missing_notes(unavailable)
    assert len(notes) == 3  # R_err and T_err share one cause, so one line
    assert all(len(line) <= 100 for line in notes), notes
    assert notes[0].startswith("LPIPS will be missing: alexnet-owt-7be5be79.pth absent")
    assert fid.FID_INCEPTION.name in notes[1] and notes[2].startswith("R_err, T_err will be missing: no pose")


def test_an_unknown_or_unavailable_method_fails_before_any_metric_loads(tmp_path, monkeypatch):
    def no_scorer(*args, **kwargs):
        raise AssertionError("the scorer was built before the method was checked")

    monkeypatch.setattr("gac_bench.runner.make_scorer", no_scorer)
    res = CliRunner().invoke(main, ["run", "--method", "identity", "--method", "no-such-method", "--runs-dir",
                                    str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2 and "no-such-method" in res.output and "note:" not in res.output
    monkeypatch.setattr("gac_bench.api.Method.requires", ("a_package_that_is_not_installed",))
    res = CliRunner().invoke(main, ["run", "--method", "identity", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "a_package_that_is_not_installed" in res.output and "note:" not in res.output


def test_a_method_warning_prints_above_the_progress_bar(plane_split, tmp_path, capsys):
    from gac_bench.runner import RunOptions, run_method

    handler = logging.StreamHandler(sys.stderr)  # the console handler `gac-bench -v`/basicConfig installs
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        opts = RunOptions(split=plane_split, runs_dir=tmp_path, progress=True, limit=1, trajectories=("dataset",))
        run_method("tests.methods_for_tests:WarnEachClip", {}, opts)
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    segments = [seg for line in err.split("\n") for seg in line.split("\r") if "simulated warning" in seg]
    assert segments, err
    assert all(seg.startswith("WARNING simulated warning") for seg in segments), err  # not glued to the bar


def test_a_slow_method_shows_frames_on_the_bar(plane_split, tmp_path, capsys):
    from gac_bench.runner import RunOptions, run_method

    opts = RunOptions(split=plane_split, runs_dir=tmp_path, progress=True, limit=1, trajectories=("dataset",))
    run_method("tests.methods_for_tests:ReportEveryFrame", {}, opts)
    err = capsys.readouterr().err
    assert "dataset frame 64/64" in err, err  # the clip bar carries the method's own frame count
