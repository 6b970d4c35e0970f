"""The runner: records, resume after kill -9, per-clip failures, output checks, sharding, score."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gac_bench import leaderboard, records
from gac_bench.runner import RunOptions, run_method

ROOT = Path(__file__).resolve().parents[1]


def opts(split, runs, **kw):
    return RunOptions(split=split, runs_dir=runs, progress=False, **kw)


def metric_means(runs: Path) -> dict:
    out = {}
    for p in sorted(runs.rglob("metrics.json")):
        m = json.loads(p.read_text())
        out[str(p.relative_to(runs))] = {k: v.get("per_frame") for k, v in m["metrics"].items()}
    return out


def test_run_writes_the_runs_layout_and_reuses_finished_clips(plane_split, tmp_path):
    runs = tmp_path / "runs"
    first = run_method("identity", {}, opts(plane_split, runs, limit=2))
    assert all(o.status == "ok" and o.generated and o.scored for o in first.outcomes)
    clip = runs / plane_split / "dataset" / "identity" / "clipa"
    assert sorted(p.name for p in (clip / "frames").iterdir())[:2] == ["0000.png", "0001.png"]
    assert len(list((clip / "frames").iterdir())) == 64
    gen = json.loads((clip / "generation.json").read_text())
    assert gen["status"] == "ok" and gen["method_version"] == "1" and gen["protocol"] == "paper-v1"
    met = json.loads((clip / "metrics.json").read_text())
    assert met["generation_id"] == gen["generation_id"] and met["metrics"]["psnr"]["per_frame"][0] is None
    assert len(met["metrics"]["psnr"]["per_frame"]) == 64
    assert met["metrics"]["lpips"]["status"] == "missing"  # no AlexNet weights in the test TORCH_HOME
    again = run_method("identity", {}, opts(plane_split, runs, limit=2))
    assert not any(o.generated or o.scored for o in again.outcomes)


def test_method_crash_is_recorded_per_clip_and_run_goes_on(plane_split, tmp_path):
    runs = tmp_path / "runs"
    result = run_method("tests.methods_for_tests:CrashOnClipB", {}, opts(plane_split, runs, trajectories=("dataset",)))
    status = {o.clip_id: o.status for o in result.outcomes}
    assert status == {"clipa": "ok", "clipb": "failed", "clipc": "ok"}
    gen = json.loads((runs / plane_split / "dataset" / "crash-on-clipb" / "clipb" / "generation.json").read_text())
    assert gen["error_stage"] == "generate" and "simulated crash on clipb" in gen["error"]
    row = leaderboard.collect_rows(runs)[0]
    assert (row.scored, row.total) == (2, 3) and "clipb" in row.failures
    md = leaderboard.to_markdown([row])
    assert "| 2/3 |" in md and "simulated crash on clipb" in md


@pytest.mark.parametrize("method, message", [("WrongShape", "shape"), ("FloatNaN", "float32 and contains NaN")])
def test_bad_outputs_are_clear_failures(plane_split, tmp_path, method, message):
    result = run_method(f"tests.methods_for_tests:{method}", {}, opts(plane_split, tmp_path, limit=1,
                                                                       trajectories=("dataset",)))
    assert result.outcomes[0].status == "failed" and message in result.outcomes[0].error


def test_bad_data_fails_that_clip_only(plane_split, plane_root, tmp_path):
    cam = plane_root / "cameras" / "clipc.txt"
    saved = cam.read_text()
    lines = saved.splitlines()
    cam.write_text("\n".join(lines[:5] + ["12 0.5 0.5 oops"] + lines[6:]) + "\n")
    try:
        result = run_method("identity", {}, opts(plane_split, tmp_path, trajectories=("dataset",)))
    finally:
        cam.write_text(saved)
    bad = [o for o in result.outcomes if o.status != "ok"]
    assert [o.clip_id for o in bad] == ["clipc"]
    assert "clipc.txt:6" in bad[0].error and "expected 19 numbers" in bad[0].error


def test_shards_give_the_same_table_as_one_run(plane_split, tmp_path):
    run_method("identity", {}, opts(plane_split, tmp_path / "one"))
    for k in (1, 2, 3):
        run_method("identity", {}, opts(plane_split, tmp_path / "sharded", shard=(k, 3)))
    one = leaderboard.to_csv(leaderboard.collect_rows(tmp_path / "one"))
    sharded = leaderboard.to_csv(leaderboard.collect_rows(tmp_path / "sharded"))
    assert one == sharded


def test_depth_warp_beats_identity_on_exact_depth(plane_split, tmp_path):
    for m in ("identity", "depth-warp"):
        run_method(m, {}, opts(plane_split, tmp_path, trajectories=("dataset",)))
    rows = {r.method: r for r in leaderboard.collect_rows(tmp_path)}
    assert rows["depth-warp"].cells["psnr"].mean > rows["identity"].cells["psnr"].mean + 3
    assert rows["depth-warp"].cells["ssim"].mean > rows["identity"].cells["ssim"].mean


def test_kill_9_then_rerun_gives_identical_numbers(plane_root, plane_split, tmp_path):
    env = {**os.environ, "SLOW_IDENTITY_SECONDS": "0.3", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests.cli_with_fixture", str(plane_root), "run", "--method",
            "tests.methods_for_tests:SlowIdentity", "--split", plane_split, "--no-progress"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--runs-dir", str(killed)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(killed.rglob("metrics.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.rglob("metrics.json")))
    assert 2 <= done_before < 6, "the kill should land mid-run"
    subprocess.run(args + ["--runs-dir", str(killed)], env=env, cwd=ROOT, check=True, capture_output=True)
    os.environ["SLOW_IDENTITY_SECONDS"] = "0"
    try:  # the uninterrupted reference run, in-process
        run_method("tests.methods_for_tests:SlowIdentity", {}, opts(plane_split, tmp_path / "clean"))
    finally:
        del os.environ["SLOW_IDENTITY_SECONDS"]
    assert not list(killed.rglob(".*.tmp")) and not list(killed.rglob(".frames.*"))
    assert metric_means(killed) == metric_means(tmp_path / "clean")
    assert len(metric_means(killed)) == 6


def test_score_precomputed_frames_matches_run(plane_split, tmp_path):
    run_method("depth-warp", {}, opts(plane_split, tmp_path / "runs", trajectories=("dataset",)))
    src = tmp_path / "runs" / plane_split / "dataset" / "depth-warp"
    outside = tmp_path / "outside"
    for clip in ("clipa", "clipb", "clipc"):
        frames = records.read_frames(src / clip / "frames", 64)
        (outside / clip).mkdir(parents=True)
        for i, f in enumerate(frames[1:], start=1):  # target frames only: frame 0 is the reference
            from PIL import Image

            Image.fromarray(f).save(outside / clip / f"frame_{i}.png")
    from gac_bench.precomputed import precomputed_method_spec

    run_method(precomputed_method_spec(), {"frames_dir": str(outside), "name": "imported-warp"},
               opts(plane_split, tmp_path / "runs", trajectories=("dataset",)))
    rows = {r.method: r for r in leaderboard.collect_rows(tmp_path / "runs")}
    assert rows["imported-warp"].cells["psnr"].mean == pytest.approx(rows["depth-warp"].cells["psnr"].mean)


def test_cli_unknown_method_lists_close_names(tmp_path):
    from click.testing import CliRunner

    from gac_bench.cli import main

    res = CliRunner().invoke(main, ["run", "--method", "identty", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "Did you mean: identity" in res.output


def test_deferred_clips_are_not_failures_and_are_retried(plane_split, tmp_path):
    spec = "tests.methods_for_tests:DeferEverything"
    first = run_method(spec, {}, opts(plane_split, tmp_path, limit=1, trajectories=("dataset",)))
    assert first.outcomes[0].status == "deferred" and not first.failures
    assert (tmp_path / plane_split / "dataset" / "defer-everything" / "clipa" / "upstream" / "inputs.txt").is_file()
    again = run_method(spec, {}, opts(plane_split, tmp_path, limit=1, trajectories=("dataset",)))
    assert again.outcomes[0].generated  # a deferred clip is attempted again
    row = leaderboard.collect_rows(tmp_path)[0]
    assert row.scored == 0 and row.failures == {}
