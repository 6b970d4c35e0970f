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
