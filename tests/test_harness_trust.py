"""Issue 11 (part): named rows, per-method options, limit before shard, exit codes, failures that cannot abort
or hide (bad ground truth, corrupt stored frames, SystemExit, hangs), clip ids that are paths, corrupt weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gac_bench.cli import main
from gac_bench.runner import RunOptions, run_method
from gac_bench.splits import ClipSpec, Split, get_split


def _run(args, runs):
    return CliRunner().invoke(main, ["run", "--runs-dir", str(runs), "--estimator", "none", "--no-progress", *args])


def test_variants_of_one_method_stand_side_by_side_under_their_names(plane_split, tmp_path):
    runs = tmp_path / "runs"
    for px, name in ((1, "shift1"), (9, "shift9")):
        res = _run(["--split", plane_split, "--limit", "1", "--trajectory", "dataset", "--method",
                    "tests.methods_for_tests:Shifted", "--option", f"pixels={px}", "--name", name], runs)  # fmt: skip
        assert res.exit_code == 0, res.output
    rows = json.loads((runs / "leaderboard.json").read_text())["rows"]
    psnr = {r["method"]: r["psnr"] for r in rows if r["subset"] == "all"}
    assert set(psnr) == {"shift1", "shift9"} and psnr["shift1"] != psnr["shift9"]
    assert (runs / plane_split / "dataset" / "shift1").is_dir() and (runs / plane_split / "dataset" / "shift9").is_dir()


def test_options_go_to_the_methods_that_have_them(plane_split, tmp_path):
    runs = tmp_path / "runs"
    res = _run(["--split", plane_split, "--limit", "1", "--trajectory", "dataset", "--method", "identity", "--method",
                "tests.methods_for_tests:Shifted", "--option", "pixels=2"], runs)  # fmt: skip
    assert res.exit_code == 0, res.output
    res = _run(["--split", plane_split, "--method", "identity", "--method", "tests.methods_for_tests:Shifted",
                "--option", "checkpoint=x"], runs)  # fmt: skip
    assert res.exit_code == 2 and "none of the methods" in res.output and "METHOD.checkpoint" in res.output
    res = _run(["--split", plane_split, "--method", "identity", "--option", "nosuch.k=1"], runs)
    assert res.exit_code == 2 and "no --method 'nosuch'" in res.output


def test_name_needs_a_method_with_several_and_must_be_a_folder_name(plane_split, tmp_path):
    res = _run(["--split", plane_split, "--method", "identity", "--method", "depth-warp", "--name", "x"], tmp_path)
    assert res.exit_code == 2 and "METHOD=LABEL" in res.output
    res = _run(["--split", plane_split, "--method", "identity", "--name", "../up"], tmp_path)
    assert res.exit_code == 2 and "names a folder" in res.output


def test_limit_comes_before_shard():
    split = get_split("synthroom")
    shards = [c.clip_id for k in (1, 2) for c in split.select(limit=2, shard=(k, 2))]
    assert sorted(shards) == ["room00", "room01"]


def test_exit_status_one_when_a_clip_fails_and_the_table_is_still_written(plane_split, tmp_path):
    runs = tmp_path / "runs"
    res = _run(["--split", plane_split, "--trajectory", "dataset", "--method", "tests.methods_for_tests:CrashOnClipB"],
               runs)  # fmt: skip
    assert res.exit_code == 1 and (runs / "leaderboard.md").is_file()
    assert "1 clip-trajectories failed" in res.output
    assert _run(["--split", plane_split, "--method", "no-such-method"], runs).exit_code == 2


def _corrupt(path: Path, how: str) -> None:
    if how == "zero-byte":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("how", ["zero-byte", "truncated", "random"])
def test_a_bad_ground_truth_frame_fails_its_clip_only(tmp_path, how):
    from tests.fixtures import register_plane_split

    root = tmp_path / "data"
    name = register_plane_split(root, name=f"bad-gt-{how}")
    frames = sorted((root / "frames" / "clipb").glob("*.png"))
    _corrupt(frames[5], how)
    runs = tmp_path / "runs"
    for _ in range(2):  # and every rerun goes on the same way
        res = _run(["--split", name, "--trajectory", "dataset", "--method", "identity"], runs)
        assert res.exit_code == 1 and (runs / "leaderboard.md").is_file(), res.output
        assert "clipb" in res.output and frames[5].name in res.output
    met = json.loads((runs / name / "dataset" / "identity" / "clipa" / "metrics.json").read_text())
    assert met["metrics"]["psnr"]["status"] == "ok"


def test_a_corrupt_stored_frame_fails_rescoring_without_a_traceback(plane_split, tmp_path):
    runs = tmp_path / "runs"
    opts = RunOptions(split=plane_split, runs_dir=runs, progress=False, limit=1, trajectories=("dataset",),
                      estimator="none")  # fmt: skip
    assert run_method("identity", {}, opts).outcomes[0].status == "ok"
    clip = runs / plane_split / "dataset" / "identity" / "clipa"
    _corrupt(clip / "frames" / "0007.png", "truncated")
    (clip / "metrics.json").unlink()
    out = run_method("identity", {}, opts).outcomes[0]
    assert out.status == "failed" and "0007.png" in out.error


def test_a_plugin_calling_sys_exit_is_a_recorded_failure(plane_split, tmp_path):
    opts = RunOptions(split=plane_split, runs_dir=tmp_path, progress=False, trajectories=("dataset",), estimator="none")
    status = {o.clip_id: o.status for o in run_method("tests.methods_for_tests:ExitsOnClipB", {}, opts).outcomes}
    assert status == {"clipa": "ok", "clipb": "failed", "clipc": "ok"}
    gen = json.loads((tmp_path / plane_split / "dataset" / "exits-on-clipb" / "clipb" / "generation.json").read_text())
    assert gen["error"].startswith("SystemExit")


def test_a_hanging_method_times_out_per_clip(plane_split, tmp_path):
    opts = RunOptions(split=plane_split, runs_dir=tmp_path, progress=False, trajectories=("dataset",), limit=1,
                      estimator="none", timeout_s=0.5)  # fmt: skip
    out = run_method("tests.methods_for_tests:Hangs", {}, opts).outcomes[0]
    assert out.status == "failed" and "exceeded --timeout 0.5 s" in out.error


@pytest.mark.parametrize("bad", ["../../x", "/abs/clip", "a/b", ".hidden", ""])
def test_clip_ids_that_are_paths_are_refused_wherever_a_split_comes_from(bad):
    with pytest.raises(ValueError, match="not a plain name"):
        ClipSpec(bad)
    with pytest.raises(ValueError, match="not a plain name"):
        Split("api", 64, 36, [ClipSpec("ok"), ClipSpec(bad)], "built in Python", lambda s: None)


def test_table_of_a_missing_runs_dir_is_an_error_and_creates_nothing(tmp_path):
    res = CliRunner().invoke(main, ["table", "--runs-dir", str(tmp_path / "typo")])
    assert res.exit_code == 2 and "no runs folder" in res.output and not (tmp_path / "typo").exists()


def test_a_corrupt_gac_checkpoint_names_the_file(tmp_path):
    pytest.importorskip("diffusers")
    from gac.checkpoint import save_checkpoint
    from gac.method import GaCMethod
    from gac.model import build_model, gac_tiny
    from gac_bench.api import MethodUnavailable

    save_checkpoint(tmp_path, build_model(gac_tiny()), {"vae": "vae"})
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(MethodUnavailable, match=r"model.safetensors is not a readable safetensors file"):
        GaCMethod({"checkpoint": str(tmp_path)}, device="cpu").setup()


def test_changed_weights_regenerate_instead_of_reusing_old_frames(plane_split, tmp_path):
    pytest.importorskip("diffusers")
    import torch

    from gac.checkpoint import save_checkpoint
    from gac.model import build_model, gac_tiny
    from gac.testing import write_tiny_vae

    ckpt = tmp_path / "ckpt"
    torch.manual_seed(0)
    save_checkpoint(ckpt, build_model(gac_tiny()), {"vae": "vae"})
    write_tiny_vae(ckpt / "vae")
    opts = RunOptions(split=plane_split, runs_dir=tmp_path / "runs", progress=False, limit=1,
                      trajectories=("dataset",), estimator="none")  # fmt: skip
    options = {"checkpoint": str(ckpt), "steps": "1", "compile": "false"}
    assert run_method("gac", options, opts).outcomes[0].generated
    assert not run_method("gac", options, opts).outcomes[0].generated  # unchanged: reused
    model = build_model(gac_tiny())
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    save_checkpoint(ckpt, model, {"vae": "vae"})
    again = run_method("gac", options, opts).outcomes[0]
    assert again.generated and again.status == "ok"
    gen = json.loads((tmp_path / "runs" / plane_split / "dataset" / "gac" / "clipa" / "generation.json").read_text())
    assert str(ckpt / "model.safetensors") in gen["weights"] and len(gen["weights"][str(ckpt / "model.safetensors")]) == 64
    prov = gen["provenance"]
    assert prov["created_utc"] and prov["packages"]["torch"] and prov["gac_bench_version"] and prov["command_line"]
    met = json.loads((tmp_path / "runs" / plane_split / "dataset" / "gac" / "clipa" / "metrics.json").read_text())
    assert met["provenance"]["created_utc"] and met["provenance"]["device"] == "cpu"


# ---------------------------------------------------------------------------------------------- bad input


def _camera_file(tmp_path, url=True, duplicate=False):
    from gac_bench import cameras
    from gac_bench.datasets.re10k import format_camera_line

    K = cameras.intrinsics_matrix(0.5, 0.9, 0.5, 0.5)
    lines = ["https://www.youtube.com/watch?v=x"] if url else []
    for i in range(4):
        w2c = np.eye(4)
        w2c[0, 3] = 0.1 * i
        lines.append(format_camera_line(1000 * (i if not (duplicate and i == 3) else 2), K, w2c))
    path = tmp_path / "clip.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_camera_file_without_url_line_is_read_whole_not_shifted(tmp_path):
    from gac_bench.datasets.re10k import parse_camera_file

    with_url, without = parse_camera_file(_camera_file(tmp_path)), parse_camera_file(_camera_file(tmp_path, url=False))
    assert without.url == "" and len(without.timestamps_us) == 4
    np.testing.assert_array_equal(without.timestamps_us, with_url.timestamps_us)
    np.testing.assert_allclose(without.w2c, with_url.w2c)


def test_duplicate_timestamps_and_non_utf8_name_the_file(tmp_path):
    from gac_bench.datasets.clip import ClipDataError
    from gac_bench.datasets.re10k import parse_camera_file
    from gac_bench.split_files import SplitFileError, load_split_file

    with pytest.raises(ClipDataError, match=r"clip.txt:5: timestamp 2000 repeats line 4"):
        parse_camera_file(_camera_file(tmp_path, duplicate=True), unique_timestamps=True)
    assert len(parse_camera_file(_camera_file(tmp_path, duplicate=True)).timestamps_us) == 4  # a method's pose file
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("https://x\n\xe9\n".encode("latin-1"))
    with pytest.raises(ClipDataError, match=r"latin1.txt: not a text camera file"):
        parse_camera_file(bad)
    csv = tmp_path / "s.csv"
    csv.write_bytes(b"# name: s\n\xff\xfe\n")
    with pytest.raises(SplitFileError, match=r"s.csv: not a UTF-8"):
        load_split_file("s", csv)


def test_a_16_bit_frame_is_refused_not_converted(tmp_path):
    from PIL import Image

    from gac_bench.datasets.clip import ClipDataError
    from gac_bench.datasets.re10k import load_image

    path = tmp_path / "f.png"
    Image.fromarray((np.arange(64 * 36, dtype=np.uint16).reshape(36, 64) * 20)).save(path)
    with pytest.raises(ClipDataError, match=r"f.png has mode I;16"):
        load_image(path, "c0")
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png", "c0").shape == (36, 64, 3)


def test_two_concurrent_runs_on_one_runs_dir_neither_fails_nor_redoes_work(plane_root, plane_split, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SLOW_IDENTITY_SECONDS": "0.3", "PYTHONPATH": str(root)}
    args = [sys.executable, "-m", "tests.cli_with_fixture", str(plane_root), "run", "--method",
            "tests.methods_for_tests:SlowIdentity", "--split", plane_split, "--no-progress", "--estimator", "none",
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    procs = [subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    generated = [int(o[1].split("clip-trajectories, ")[1].split(" generated")[0]) for o in outs]
    assert sum(generated) == 6  # each of the 3 clips x 2 trajectories generated exactly once between them
    assert not list((tmp_path / "runs").rglob(".*.tmp")) and not list((tmp_path / "runs").rglob(".frames.*"))


def test_vggt_intrinsics_of_portrait_frames_undo_the_crop_for_every_frame():
    from gac_bench.cameras import intrinsics_matrix
    from gac_bench.poses import vggt as V

    plan = V.vggt_crop_plan(640, 480)  # portrait: VGGT crops rows off the top and bottom
    assert plan.top > 0
    K = intrinsics_matrix(500.0, 500.0, 240.0, 320.0)
    K_net = V.K_to_vggt_input(K, plan)
    stacked = np.repeat(K_net[None], 3, axis=0)
    np.testing.assert_allclose(V.K_from_vggt_input(stacked, plan), np.repeat(K[None], 3, axis=0), atol=1e-9)
    np.testing.assert_allclose(V.K_from_vggt_input(K_net, plan), K, atol=1e-9)


def test_gac_bench_vggt_variable_is_where_the_estimator_looks(tmp_path, monkeypatch):
    from gac_bench.poses import vggt as V

    folder = tmp_path / "vggt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("GAC_BENCH_VGGT", str(folder))
    assert V.find_vggt_weights() == folder / "model.safetensors"
    monkeypatch.setenv("GAC_BENCH_VGGT", str(tmp_path / "nothing.safetensors"))
    assert V.find_vggt_weights() is None


def test_tables_warn_when_rows_cover_different_clips(plane_split, tmp_path):
    from gac_bench import leaderboard

    runs = tmp_path / "runs"
    base = dict(split=plane_split, runs_dir=runs, progress=False, trajectories=("dataset",), estimator="none")
    run_method("identity", {}, RunOptions(**base, limit=1))
    run_method("depth-warp", {}, RunOptions(**base))
    md = leaderboard.to_markdown(leaderboard.collect_rows(runs))
    assert "Warning: these rows are over different clips" in md and "identity 1" in md and "depth-warp 3" in md


def test_score_reads_mp4_clips_with_the_default_trajectory(plane_split, tmp_path):
    import cv2

    from gac_bench import records

    src = tmp_path / "runs"
    run_method("identity", {}, RunOptions(split=plane_split, runs_dir=src, progress=False, trajectories=("dataset",),
                                          estimator="none"))  # fmt: skip
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in ("clipa", "clipb", "clipc"):
        frames = records.read_frames(src / plane_split / "dataset" / "identity" / clip / "frames", 64)
        writer = cv2.VideoWriter(str(videos / f"{clip}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 36))
        assert writer.isOpened()
        for f in frames:
            writer.write(np.ascontiguousarray(f[..., ::-1]))
        writer.release()
    res = CliRunner().invoke(main, ["score", "--method", "from-mp4", "--split", plane_split, "--frames-dir",
                                    str(videos), "--runs-dir", str(tmp_path / "scored"), "--estimator", "none",
                                    "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    met = json.loads((tmp_path / "scored" / plane_split / "dataset" / "from-mp4" / "clipa" / "metrics.json").read_text())
    png = json.loads((src / plane_split / "dataset" / "identity" / "clipa" / "metrics.json").read_text())
    assert met["metrics"]["psnr"]["status"] == "ok"
    assert abs(met["metrics"]["psnr"]["mean"] - png["metrics"]["psnr"]["mean"]) < 1.0  # the same frames, lossy mp4
