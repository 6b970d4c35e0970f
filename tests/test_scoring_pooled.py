"""FID pooling and pose-error plumbing through the runner, with clearly-labelled test doubles."""

import json

import numpy as np
import pytest
import torch

from gac_bench import leaderboard
from gac_bench.metrics.fid import fid_from_features, load_features
from gac_bench.runner import RunOptions, run_method, run_noise_floor
from gac_bench.scoring import FeatureNet, Scorer


class TinyFeatureNet(torch.nn.Module):
    """A fixed random conv net standing in for Inception in tests (its numbers are never reported)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=2)

    def forward(self, x_uint8):
        assert x_uint8.dtype == torch.uint8  # the extractor receives uint8, as Inception does
        return self.conv(x_uint8.float() / 255).relu().mean(dim=(2, 3))


def test_fid_is_pooled_over_clips_from_per_clip_features(plane_split, tmp_path):
    scorer = Scorer(fid_net=FeatureNet(TinyFeatureNet().eval(), "tiny-test-net", "none"), split_name=plane_split)
    run_method("identity", {}, RunOptions(split=plane_split, runs_dir=tmp_path, progress=False,
                                           trajectories=("dataset",)), scorer=scorer)
    folder = tmp_path / plane_split / "dataset" / "identity"
    gen = np.concatenate([load_features(folder / c / "fid_features.npy") for c in ("clipa", "clipb", "clipc")])
    ref = np.concatenate([load_features(folder / c / "fid_features_gt.npy") for c in ("clipa", "clipb", "clipc")])
    assert gen.shape == (3 * 63, 8)
    row = leaderboard.collect_rows(tmp_path)[0]
    assert row.cells["fid"].mean == pytest.approx(fid_from_features(gen, ref))
    per_clip = np.mean([fid_from_features(gen[i:i + 63], ref[i:i + 63]) for i in (0, 63, 126)])
    assert row.cells["fid"].mean != pytest.approx(per_clip)  # pooled, not an average of per-clip FIDs
    assert row.pooled["kid_mean"] is not None
    split_metrics = json.loads((folder / "split_metrics.json").read_text())  # the runs-layout record agrees
    assert split_metrics["pooled"]["all"]["fid"] == pytest.approx(row.cells["fid"].mean)
    assert split_metrics["clips"] == ["clipa", "clipb", "clipc"]


def test_pose_errors_flow_into_records_and_noise_floor_row(plane_split, tmp_path, monkeypatch):
    from gac_bench.poses import registry

    monkeypatch.setitem(registry.ESTIMATORS, "fixture-poses", "tests.methods_for_tests:FixturePoseEstimator")
    opts = RunOptions(split=plane_split, runs_dir=tmp_path, progress=False, trajectories=("dataset",),
                      clips=("clipa",), estimator="fixture-poses")
    run_method("identity", {}, opts)
    floor = run_noise_floor(opts, Scorer(estimator="fixture-poses", split_name=plane_split))
    assert floor.outcomes[0].status == "ok"
    m = json.loads((tmp_path / plane_split / "dataset" / "identity" / "clipa" / "metrics.json").read_text())
    assert m["pose"]["estimator"] == "fixture-poses"
    assert m["metrics"]["r_err"]["mean"] == pytest.approx(0.1, abs=1e-9)
    rows = {r.method: r for r in leaderboard.collect_rows(tmp_path)}
    assert set(rows) == {"identity", "noise-floor-fixture-poses"}
    assert rows["noise-floor-fixture-poses"].cells["r_err"].mean == pytest.approx(0.1, abs=1e-9)
    assert rows["noise-floor-fixture-poses"].cells["psnr"] is None


def test_missing_estimator_is_reported_not_replaced(plane_split, tmp_path):
    scorer = Scorer(estimator="vggt", split_name=plane_split)  # the vggt package and weights are absent here
    assert "vggt" in scorer.unavailable["r_err"] and scorer.pose_suite_missing()


def test_secondary_pose_columns_and_estimator_in_footer(plane_split, tmp_path, monkeypatch):
    from gac_bench.poses import registry

    monkeypatch.setitem(registry.ESTIMATORS, "fixture-poses", "tests.methods_for_tests:FixturePoseEstimator")
    run_method("identity", {}, RunOptions(split=plane_split, runs_dir=tmp_path, progress=False,
                                           trajectories=("dataset",), clips=("clipa",), estimator="fixture-poses"))
    rows = leaderboard.collect_rows(tmp_path)
    rec = leaderboard.to_records(rows)[0]
    assert rec["pose_r_err_sum_rad"] == pytest.approx(0.1 * 63, abs=1e-6)  # CameraCtrl-style sum over frames
    assert rec["pose_coverage"] == 1.0 and rec["pose_estimator"] == "fixture-poses"
    assert "Pose estimator: fixture-poses" in leaderboard.to_markdown(rows)
