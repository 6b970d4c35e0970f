"""`gac-bench run --split re10k-test-150 --data-root FIXTURE --limit 2 --method identity`, end to end.

The fixture holds the first two clips of the committed split (at their recorded lengths, rendered by
``synthroom`` at 64x36 and upsampled by the reader to 640x352) in the raw layout and
as pixelSplat chunks with the same JPEG bytes; the numbers of both runs must be identical. The chunk copy lacks
the second clip, which must be recorded as failed (naming clip and file) while the run goes on.
SSIM at 640x352 dominates the run time, so the second run scores the dataset trajectory only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gac_bench.cli import main
from gac_bench.split_files import load_split_file
from tests.test_datasets_fixtures import make_synthroom_clip, write_chunks, write_raw

SPLIT = "re10k-test-150"


@pytest.fixture(scope="module")
def fixture_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("re10k_fixture")
    specs = load_split_file(SPLIT).clips[:2]
    clips = [make_synthroom_clip(s.clip_id, s.length, seed=i) for i, s in enumerate(specs)]
    for c in clips:
        write_raw(root / "raw", c, naming="timestamp", ext="jpg")
    write_chunks(root / "chunks", clips[:1])  # this copy lacks the second clip
    return root, [s.clip_id for s in specs]


def run_cli(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output  # 1 may signal failed clips; anything else is a crash
    return result.output


def per_frame(runs: Path, trajectory: str, clip_id: str) -> dict:
    record = json.loads((runs / SPLIT / trajectory / "identity" / clip_id / "metrics.json").read_text())
    return {k: record["metrics"][k]["per_frame"] for k in ("psnr", "ssim")}


def test_run_on_both_layouts_gives_identical_numbers(fixture_roots, tmp_path):
    root, (first, second) = fixture_roots
    runs_raw, runs_chunks = tmp_path / "runs_raw", tmp_path / "runs_chunks"
    base = ["run", "--split", SPLIT, "--limit", "2", "--method", "identity", "--no-progress"]

    run_cli(base + ["--data-root", str(root / "raw"), "--runs-dir", str(runs_raw)])
    for trajectory in ("dataset", "forth-and-back"):
        for clip_id in (first, second):
            values = per_frame(runs_raw, trajectory, clip_id)
            assert len(values["psnr"]) == 64 and values["psnr"][0] is None
            assert all(v is not None for v in values["psnr"][1:] + values["ssim"][1:])

    run_cli(base + ["--data-root", str(root / "chunks"), "--runs-dir", str(runs_chunks), "--trajectory", "dataset"])
    assert per_frame(runs_chunks, "dataset", first) == per_frame(runs_raw, "dataset", first)

    failed = json.loads((runs_chunks / SPLIT / "dataset" / "identity" / second / "generation.json").read_text())
    assert failed["status"] == "failed"
    assert second in failed["error"] and "index.json" in failed["error"]
    assert not (runs_chunks / SPLIT / "dataset" / "identity" / second / "metrics.json").exists()
