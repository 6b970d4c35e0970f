"""FID / KID: the distance formulas, the input conventions the network sees, pooling, weights and the cache.

The feature networks here are TEST networks (a tiny seeded conv net, a recorder, a random-weight Inception):
they pin conventions and invariants only; no number computed with them is ever reported.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gac_bench.metrics import fid
from gac_bench.metrics.fid_reference import reference_cache_path, reference_features, reference_key
from gac_bench.weights import WeightsMissing


def _gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm (as pytorch-fid / TTUR write it)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


class TinyTestNet(torch.nn.Module):
    """A fixed, seeded TEST feature network taking uint8 (B, 3, H, W) like Inception. Never reported."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 5, stride=2)

    def forward(self, x_uint8):
        assert x_uint8.dtype == torch.uint8
        x = (x_uint8.float() - 128) / 128
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class RecordingNet(torch.nn.Module):
    """Records what the wrapper hands to the network."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return torch.zeros(len(x), 2048)


def _frames(n: int, seed: int = 0, h: int = 24, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


# --- formulas --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_frechet_matches_scipy_sqrtm(shift):
    a, b = _gaussian(600, 32, seed=1), _gaussian(500, 32, seed=2, shift=shift)
    ours, ref = fid.fid_from_features(a, b), _scipy_fid(a, b)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_matches_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = _gaussian(400, 16, seed=3), _gaussian(400, 16, seed=4, shift=0.1)
    stats = [fid_features_to_statistics(torch.from_numpy(x)) for x in (a, b)]
    ref = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert fid.fid_from_features(a, b) == pytest.approx(ref, rel=1e-6)


def test_frechet_is_finite_and_nonnegative_when_covariances_are_singular():
    a, b = _gaussian(20, 64, seed=5), _gaussian(20, 64, seed=6)  # N < D: rank-deficient covariances
    value = fid.fid_from_features(a, b)
    assert np.isfinite(value) and value > 0
    # Identical sets: 0 up to eigenvalue round-off of the near-zero spectrum (relative to the total variance).
    assert abs(fid.fid_from_features(a, a)) < 1e-6 * np.trace(np.cov(a, rowvar=False))


def test_fid_real_vs_real_is_zero_with_a_fixed_network():
    net = TinyTestNet()
    frames = _frames(40)
    feats = fid.inception_features(net, frames, "cpu", batch_size=7)
    again = fid.inception_features(net, frames, "cpu", batch_size=40)
    assert feats.dtype == np.float64 and feats.shape == (40, 16)
    np.testing.assert_allclose(feats, again, rtol=0, atol=1e-5)  # batching does not change features
    assert fid.fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-9)
    darker = fid.inception_features(net, (frames // 2).astype(np.uint8), "cpu")
    assert fid.fid_from_features(feats, darker) > 1e-3


def test_kid_zero_for_identical_and_positive_for_shifted():
    a = _gaussian(300, 16, seed=7)
    same, _ = fid.kid_from_features(a, a, subsets=20, subset_size=100)
    shifted, _ = fid.kid_from_features(a, a + 0.5, subsets=20, subset_size=100)
    assert abs(same) < 0.05 * shifted and shifted > 0
    assert fid.kid_from_features(a, a + 0.5, 20, 100, seed=3) == fid.kid_from_features(a, a + 0.5, 20, 100, seed=3)


def test_kid_caps_subset_size_at_the_number_of_samples():
    a, b = _gaussian(50, 8, seed=8), _gaussian(60, 8, seed=9)
    capped = fid.kid_from_features(a, b, subsets=3, subset_size=1000)  # no error: 1000 -> 50
    assert capped == fid.kid_from_features(a, b, subsets=3, subset_size=50)
    # Two independent draws of one distribution: near 0 (the unbiased estimator may be slightly negative).
    draw = _gaussian(400, 8, seed=20)
    same = fid.kid_from_features(draw[:200], draw[200:], 10, 200)[0]
    assert abs(same) < 0.05 * fid.kid_from_features(draw[:200], draw[200:] + 0.5, 10, 200)[0]


def test_kid_equals_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    a, b = _gaussian(120, 16, seed=9), _gaussian(110, 16, seed=10, shift=0.2)
    ref = kid_features_to_metric(
        torch.from_numpy(a), torch.from_numpy(b), kid_subsets=7, kid_subset_size=50, rng_seed=5, verbose=False
    )
    mean, std = fid.kid_from_features(a, b, subsets=7, subset_size=50, seed=5)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)


# --- input conventions -----------------------------------------------------------------------------------------


def test_wrapper_passes_uint8_0_255_nchw_unscaled():
    net, frames = RecordingNet(), _frames(5)
    frames[0, 0, 0] = (0, 128, 255)  # make the extremes certain
    feats = fid.inception_features(net, frames, "cpu", batch_size=2)
    assert feats.shape == (5, 2048) and feats.dtype == np.float64
    assert [len(x) for x in net.seen] == [2, 2, 1]
    seen = torch.cat(net.seen)
    assert seen.dtype == torch.uint8 and tuple(seen.shape) == (5, 3, 24, 40)
    assert int(seen.min()) == 0 and int(seen.max()) == 255
    assert torch.equal(seen, torch.from_numpy(frames).permute(0, 3, 1, 2))  # no scaling, no resize on our side


@pytest.mark.parametrize("bad", [np.float32, np.float64])
def test_wrapper_rejects_float_frames(bad):
    frames01 = _frames(2).astype(bad) / 255.0  # [0,1] floats: the bug seen in other harnesses
    with pytest.raises(TypeError, match="uint8"):
        fid.inception_features(RecordingNet(), frames01, "cpu")
    with pytest.raises(TypeError, match="uint8"):
        fid.inception_features(RecordingNet(), frames01 * 2 - 1, "cpu")


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """A TEST file with the exact key layout of the real weights but random values (timing/conventions only)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    mp = pytest.MonkeyPatch()
    mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)  # never download
    mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    try:
        torch.manual_seed(0)
        state = fe.FeatureExtractorInceptionV3("test", ["2048"]).state_dict()
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("weights") / "random-test-inception.pth"
    torch.save(state, path)
    return path


def test_real_extractor_receives_uint8_resizes_to_299_and_maps_to_minus1_1(random_inception_file):
    model = fid.load_inception("cpu", weights_path=random_inception_file)
    seen = {}
    conv = model.extractor.Conv2d_1a_3x3
    conv.register_forward_pre_hook(lambda m, args: seen.update(x=args[0].detach().clone()))
    frames = np.zeros((2, 36, 64, 3), np.uint8)
    frames[1] = 255
    feats = fid.inception_features(model, frames, "cpu")
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    x = seen["x"]
    assert x.dtype == torch.float32 and tuple(x.shape) == (2, 3, 299, 299)
    assert float(x[0].min()) == -1.0 and float(x[1].max()) == pytest.approx(127 / 128)
    with pytest.raises(Exception, match="uint8"):  # torch-fidelity itself refuses floats
        model(torch.zeros(1, 3, 32, 32))


# --- weights -------------------------------------------------------------------------------------------------------


def test_missing_weights_raise_with_path_and_url(tmp_path, monkeypatch):
    monkeypatch.delenv("GAC_BENCH_INCEPTION", raising=False)
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path))
    with pytest.raises(WeightsMissing) as err:
        fid.load_inception("cpu")
    message = str(err.value)
    expected = tmp_path / "weights" / "weights-inception-2015-12-05-6726825d.pth"
    assert str(expected) in message and "github.com/toshas/torch-fidelity" in message and "\n" not in message
    monkeypatch.setenv("GAC_BENCH_INCEPTION", str(tmp_path / "elsewhere.pth"))
    with pytest.raises(WeightsMissing, match="elsewhere.pth"):
        fid.load_inception("cpu")
    with pytest.raises(WeightsMissing, match="given.pth"):
        fid.load_inception("cpu", weights_path=tmp_path / "given.pth")


# --- pooling ---------------------------------------------------------------------------------------------------


def test_pooled_over_all_files_not_averaged_per_file(tmp_path):
    ref = _gaussian(400, 8, seed=11)
    clip_a, clip_b = _gaussian(150, 8, seed=12, shift=0.3), _gaussian(150, 8, seed=13, shift=-0.3)
    files = [tmp_path / "a" / fid.FEATURES_FILE_NAME, tmp_path / "b" / fid.FEATURES_FILE_NAME]
    fid.save_features(files[0], clip_a)
    fid.save_features(files[1], clip_b)
    out = fid.pooled_fid_kid(files, ref, kid_subsets=5, kid_subset_size=100)
    pooled = fid.fid_from_features(np.concatenate([clip_a, clip_b]), ref)
    per_file_mean = np.mean([fid.fid_from_features(clip_a, ref), fid.fid_from_features(clip_b, ref)])
    assert out["fid"] == pytest.approx(pooled, rel=1e-12)
    assert abs(pooled - per_file_mean) > 0.05 * pooled  # the two recipes really differ here
    assert (out["n_gen"], out["n_ref"], out["n_clips"]) == (300, 400, 2)
    assert out["kid_mean"] == fid.kid_from_features(np.concatenate([clip_a, clip_b]), ref, 5, 100)[0]
    with pytest.raises(FileNotFoundError):
        fid.pooled_fid_kid(files + [tmp_path / "c" / fid.FEATURES_FILE_NAME], ref)


def test_feature_files_are_plain_npy(tmp_path):
    path = tmp_path / fid.FEATURES_FILE_NAME
    fid.save_features(path, np.ones((3, 4), np.float32))
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.float64 and loaded.shape == (3, 4)
    assert [p.name for p in tmp_path.iterdir()] == [fid.FEATURES_FILE_NAME]  # no temp file left behind


# --- reference cache -------------------------------------------------------------------------------------------


def _key(**changes):
    args = dict(
        protocol="paper-v1",
        split_name="synthroom",
        trajectory="dataset",
        height=144,
        width=256,
        frame_selection="frames 1..63",
        clip_ids=["c0", "c1"],
        weights_sha256="ab" * 32,
    )
    args.update(changes)
    return reference_key(**args)


def test_reference_cache_reuses_and_invalidates(tmp_path, monkeypatch):
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return _gaussian(10, 4, seed=len(calls))

    first = reference_features("synthroom", _key(), compute)
    again = reference_features("synthroom", _key(), compute)
    assert len(calls) == 1 and np.array_equal(first, again)
    path = reference_cache_path(_key())
    assert path.parent == tmp_path / "cache" / "fid-ref" and path.is_file() and path.with_suffix(".json").is_file()
    for change in (
        {"protocol": "paper-v2"},
        {"height": 352, "width": 640},
        {"frame_selection": "frames 0..63"},
        {"clip_ids": ["c0", "c1", "c2"]},
        {"weights_sha256": "cd" * 32},
        {"feature_extractor": "another-extractor"},
        {"trajectory": "forth-and-back"},
    ):
        n = len(calls)
        reference_features("synthroom", _key(**change), compute)
        assert len(calls) == n + 1, change
    assert len({reference_cache_path(_key(protocol=p)) for p in ("paper-v1", "paper-v2")}) == 2


def test_reference_cache_rejects_incomplete_keys_and_recovers_from_corrupt_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path))
    key = _key()
    with pytest.raises(ValueError, match="lacks"):
        reference_features("synthroom", {k: v for k, v in key.items() if k != "clip_ids"}, lambda: np.ones((2, 2)))
    with pytest.raises(ValueError, match="split"):
        reference_features("tanks-150", key, lambda: np.ones((2, 2)))
    path = reference_cache_path(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npy file")
    out = reference_features("synthroom", key, lambda: np.full((3, 2), 7.0))
    assert np.array_equal(out, np.full((3, 2), 7.0)) and np.array_equal(np.load(path, allow_pickle=False), out)


def test_inception_file_that_is_not_a_plain_state_dict_is_refused(tmp_path):
    """torch-fidelity unpickles without weights_only; we gate it with the restricted loader first."""
    import collections
    import pickle

    from gac_bench.metrics.fid import load_inception

    bad = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    with open(bad, "wb") as f:
        pickle.dump({"x": collections.OrderedDict, "y": print}, f)  # references to callables: not plain weights
    with pytest.raises(ValueError, match="not a plain state dict"):
        load_inception("cpu", weights_path=bad)


def test_inception_file_is_unpickled_once_and_only_by_the_restricted_loader(random_inception_file, monkeypatch):
    """torch-fidelity's own torch.load(weights_only=False) must never run: the file is read once, safely."""
    import torch

    calls = []
    original = torch.load

    def spy(f, *args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    fid.load_inception("cpu", weights_path=random_inception_file)
    assert calls == [True]
