"""Pose errors (protocol paper-v1), the estimator interface, and VGGT's conventions (no package or weights needed)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gac_bench.cameras import intrinsics_matrix, invert_rigid, look_at_c2w, rotation_about_axis
from gac_bench.poses import (
    EstimatorUnavailable,
    PoseEstimate,
    UnknownEstimatorError,
    forth_and_back_subsets,
    frame_subsets,
    get_estimator,
    known_estimators,
    loop_closure,
    pose_errors,
    pose_errors_by_subset,
    pose_errors_for_frames,
)
from gac_bench.poses import vggt as V
from gac_bench.poses.errors import WORST_R_ERR_RAD, WORST_T_ERR, umeyama_sim3

N = 16


def trajectory(n: int = N, seed: int = 0) -> np.ndarray:
    """A curved walk with changing yaw and pitch, OpenCV c2w."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, n)
    pos = np.stack([2.0 * s, 0.3 * np.sin(3 * s), 1.5 * s**2], -1) + rng.normal(0, 0.01, (n, 3))
    tgt = np.stack([1.0 + np.sin(2 * s), 0.2 * s, 5.0 + s], -1)
    return np.stack([look_at_c2w(p, t) for p, t in zip(pos, tgt)])


def similarity(c2w: np.ndarray, R_w: np.ndarray, t_w: np.ndarray, scale: float) -> np.ndarray:
    """The same cameras in another world frame: x' = scale R_w x + t_w."""
    out = c2w.copy()
    out[:, :3, :3] = R_w @ c2w[:, :3, :3]
    out[:, :3, 3] = scale * c2w[:, :3, 3] @ R_w.T + t_w
    return out


def random_rotation(rng) -> np.ndarray:
    return rotation_about_axis(rng.normal(size=3), rng.uniform(0.3, 3.0))


# ---------------------------------------------------------------------------------------------- errors


def test_constant_rotation_offset_gives_exact_r_err():
    gt = trajectory()
    est = gt.copy()
    est[1:, :3, :3] = est[1:, :3, :3] @ rotation_about_axis([0, 1, 0], 0.1)
    e = pose_errors(gt, est)
    assert abs(e.r_err_rad - 0.1) < 1e-9
    assert np.allclose(e.r_err_rad_per_frame[1:], 0.1, atol=1e-9) and np.isnan(e.r_err_rad_per_frame[0])
    assert e.t_err < 1e-12  # a rotation about the camera centre moves no centre
    assert abs(e.r_err_sum_rad - 0.1 * (N - 1)) < 1e-8


def test_invariant_to_world_frame_and_scale():
    rng = np.random.default_rng(1)
    gt = trajectory()
    for scale in (1e-3, 0.5, 7.0, 1e3):
        est = similarity(gt, random_rotation(rng), rng.normal(size=3) * 10, scale)
        e = pose_errors(gt, est)
        assert e.r_err_rad < 1e-7 and e.t_err < 1e-9 and e.ate_sim3 < 1e-9
        assert e.num_registered == N - 1 and e.coverage == 1.0 and not e.degenerate_gt
        assert np.isclose(e.est_scale, scale * e.gt_scale)


def straight_line(n: int = N) -> np.ndarray:
    c2w = np.repeat(np.eye(4)[None], n, 0)
    c2w[:, 0, 3] = np.linspace(0.0, 1.0, n)  # furthest distance exactly 1
    return c2w


def test_known_translation_error():
    gt = straight_line()
    est = gt.copy()
    est[5, 1, 3] += 0.1  # still closer than the furthest frame, so the normalisation is unchanged
    est[:, :3, 3] *= 3.0  # and the estimator's own scale does not matter
    e = pose_errors(gt, est)
    assert np.isclose(e.t_err_per_frame[5], 0.1, atol=1e-12)
    assert np.isclose(e.t_err, 0.1 / (N - 1), atol=1e-12)
    assert e.r_err_rad == 0.0


def test_matches_brute_force_loop():
    rng = np.random.default_rng(2)
    gt = trajectory(seed=3)
    est = similarity(gt, random_rotation(rng), rng.normal(size=3), 2.5)
    for i in range(1, N):  # per-frame noise in rotation and position
        est[i, :3, :3] = est[i, :3, :3] @ rotation_about_axis(rng.normal(size=3), rng.uniform(0.01, 0.5))
        est[i, :3, 3] += rng.normal(0, 0.2, 3)
    e = pose_errors(gt, est)

    def rel(c2w, i):
        return np.linalg.inv(c2w[0]) @ c2w[i]

    s_gt = max(np.linalg.norm(rel(gt, i)[:3, 3]) for i in range(N))
    s_est = max(np.linalg.norm(rel(est, i)[:3, 3]) for i in range(N))
    r, t = [], []
    for i in range(1, N):
        a, b = rel(gt, i), rel(est, i)
        r.append(np.arccos(np.clip((np.trace(a[:3, :3].T @ b[:3, :3]) - 1) / 2, -1, 1)))
        t.append(np.linalg.norm(a[:3, 3] / s_gt - b[:3, 3] / s_est))
    assert np.allclose(e.r_err_rad_per_frame[1:], r, atol=1e-7)
    assert np.allclose(e.t_err_per_frame[1:], t, atol=1e-12)
    assert np.isclose(e.r_err_rad, np.mean(r), atol=1e-7) and np.isclose(e.t_err, np.mean(t), atol=1e-12)
    assert np.isclose(e.r_err_sum_rad, np.sum(r), atol=1e-6) and np.isclose(e.t_err_sum, np.sum(t), atol=1e-10)


def test_degenerate_gt_is_flagged_not_dropped():
    gt = trajectory()
    pan = gt.copy()
    pan[:, :3, 3] = pan[0, :3, 3]  # pure rotation: furthest distance 0
    e = pose_errors(pan, gt)
    assert e.degenerate_gt and "min_translation" in e.degenerate_reason
    assert np.isfinite(e.t_err) and np.isfinite(e.r_err_rad)  # still scored: zero motion reads as t = 0
    t_rel = np.linalg.norm(gt[:, :3, 3] - gt[0, :3, 3], axis=1)  # rotations do not change distances to frame 0
    assert np.isclose(e.t_err, np.mean(t_rel[1:] / t_rel.max()))  # GT normalised translations read as 0

    jitter = pan.copy()
    jitter[1:, :3, 3] += np.random.default_rng(0).normal(0, 1e-6, (N - 1, 3))
    assert pose_errors(jitter, gt).degenerate_gt

    small = straight_line()
    small[:, :3, 3] *= 0.05  # 5 cm baseline
    assert not pose_errors(small, small).degenerate_gt  # no scene depth: only the absolute test applies
    flagged = pose_errors(small, small, scene_depth=5.0)  # 0.57 deg at 5 m < 1.5 deg
    assert flagged.degenerate_gt and "parallax" in flagged.degenerate_reason
    assert not pose_errors(small, small, scene_depth=1.0).degenerate_gt  # 2.9 deg at 1 m
    assert pose_errors(gt, gt).degenerate_reason == ""


def test_zero_motion_estimate_is_a_finite_error():
    gt = straight_line()
    est = np.repeat(np.eye(4)[None], N, 0)  # "the camera never moved"
    e = pose_errors(gt, est)
    assert e.est_scale == 0.0 and np.isclose(e.t_err, np.mean(np.linspace(0, 1, N)[1:]))


def test_unregistered_frames_are_reported():
    gt = trajectory()
    est = similarity(gt, rotation_about_axis([1, 2, 3], 0.7), np.ones(3), 3.0)
    est[1:, :3, :3] = est[1:, :3, :3] @ rotation_about_axis([0, 0, 1], 0.2)
    registered = np.ones(N, dtype=bool)
    registered[[5, 9]] = False
    est[~registered] = np.nan
    e = pose_errors(gt, est, registered)
    assert np.isnan(e.r_err_rad_per_frame[[0, 5, 9]]).all() and np.isnan(e.t_err_per_frame[[0, 5, 9]]).all()
    assert e.num_scored == N - 1 and e.num_registered == N - 3 and np.isclose(e.coverage, (N - 3) / (N - 1))
    assert np.isclose(e.r_err_rad, 0.2)  # mean over registered frames
    assert np.isclose(e.r_err_rad_worst, (0.2 * (N - 3) + 2 * WORST_R_ERR_RAD) / (N - 1))
    assert np.isclose(e.t_err_worst, (e.t_err * (N - 3) + 2 * WORST_T_ERR) / (N - 1))
    assert np.isfinite(e.ate_sim3) and e.failure == ""
    # the default mask is "finite rows"
    assert pose_errors(gt, est).num_registered == N - 3


def test_exact_on_registered_frames_scores_zero_even_without_the_furthest_frame():
    gt = trajectory()
    est = similarity(gt, rotation_about_axis([0, 1, 0], 1.0), np.zeros(3), 0.3)
    est[N - 1] = np.nan  # the furthest camera is the one that failed
    e = pose_errors(gt, est)
    assert e.t_err < 1e-12 and e.r_err_rad < 1e-7 and e.num_registered == N - 2


def test_reference_frame_unregistered_fails_every_frame():
    gt = trajectory()
    est = gt.copy()
    est[0] = np.nan
    e = pose_errors(gt, est)
    assert "frame 0" in e.failure and e.num_registered == 0 and e.coverage == 0.0
    assert np.isnan(e.r_err_rad) and np.isnan(e.t_err) and np.isnan(e.r_err_rad_per_frame).all()
    assert np.isclose(e.r_err_rad_worst, WORST_R_ERR_RAD) and np.isclose(e.t_err_worst, WORST_T_ERR)
    json.dumps(e.to_dict(), allow_nan=False)


def test_registered_rows_must_be_finite():
    gt = trajectory()
    est = gt.copy()
    est[3] = np.nan
    with pytest.raises(ValueError, match="registered but not finite"):
        pose_errors(gt, est, np.ones(N, dtype=bool))
    with pytest.raises(ValueError, match="frame 0 is the reference"):
        pose_errors(gt, gt, frames=[0, 1])


def test_subsets_share_one_computation():
    n = 64
    fwd = trajectory(32, seed=4)
    gt = np.concatenate([fwd, fwd[::-1]])  # forth-and-back: frame 32 + k mirrors 31 - k
    assert np.allclose(gt[63], gt[0])
    rng = np.random.default_rng(5)
    est = gt.copy()
    for i in range(1, n):
        est[i, :3, :3] = est[i, :3, :3] @ rotation_about_axis(rng.normal(size=3), 0.05 * (i >= 32))
    subsets = forth_and_back_subsets()
    assert subsets["forward"] == tuple(range(1, 32)) and subsets["return"] == tuple(range(32, 64))
    assert frame_subsets("dataset", n) == {"all": tuple(range(1, 64))}
    rows = pose_errors_by_subset(gt, est, None, "forth-and-back")
    assert set(rows) == {"all", "forward", "return"}
    assert rows["forward"].r_err_rad < 1e-7 and np.isclose(rows["return"].r_err_rad, 0.05)
    assert np.isclose(rows["all"].r_err_rad, 0.05 * 32 / 63)
    for row in rows.values():
        np.testing.assert_array_equal(row.r_err_rad_per_frame, rows["all"].r_err_rad_per_frame)
    assert pose_errors_for_frames(gt, est, None, range(32, 64)).r_err_rad == rows["return"].r_err_rad

    loop = loop_closure(gt, est)
    assert loop.frame == 63 and loop.registered
    assert loop.gt_angle_rad < 1e-7 and loop.gt_translation < 1e-12
    assert np.isclose(loop.est_angle_rad, 0.05) and np.isclose(loop.r_err_rad, 0.05) and loop.t_err < 1e-12
    est[63] = np.nan
    assert not loop_closure(gt, est).registered and np.isnan(loop_closure(gt, est).r_err_rad)


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(6)
    src = rng.normal(size=(20, 3))
    R, t, s = random_rotation(rng), rng.normal(size=3), 2.7
    s_hat, R_hat, t_hat = umeyama_sim3(src, s * src @ R.T + t)
    assert np.isclose(s_hat, s) and np.allclose(R_hat, R) and np.allclose(t_hat, t)


def test_ate_sim3_measures_centre_noise():
    gt = straight_line()
    est = gt.copy()
    est[1:, 1, 3] += np.where(np.arange(1, N) % 2, 0.01, -0.01)  # zig-zag off the line
    e = pose_errors(gt, est)
    assert 0.005 < e.ate_sim3 < 0.011


def test_records_are_json():
    gt = trajectory()
    est = gt.copy()
    est[4] = np.nan
    json.dumps(pose_errors(gt, est).to_dict(), allow_nan=False)
    json.dumps(loop_closure(gt, est).to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------------------------- interface


def test_registry():
    assert known_estimators() == ["colmap", "vggt"]
    with pytest.raises(UnknownEstimatorError, match="known estimators: colmap, vggt"):
        get_estimator("vgt")
    with pytest.raises(TypeError, match="unexpected keyword|unknown"):
        get_estimator("colmap", bogus=1)
    assert get_estimator("colmap").check_available() is None


def test_pose_estimate_validation():
    c2w = trajectory(4)
    K = np.repeat(intrinsics_matrix(100, 100, 64, 36)[None], 4, 0)
    est = PoseEstimate(c2w, K, np.ones(4, dtype=bool), None, "x")
    assert est.num_registered == 4
    with pytest.raises(ValueError, match="shapes"):
        PoseEstimate(c2w, K[:3], np.ones(4, dtype=bool))
    c2w[2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        PoseEstimate(c2w, K, np.ones(4, dtype=bool))
    ok = PoseEstimate(c2w, K, np.array([True, True, False, True]), np.arange(4.0), "x")
    json.dumps(ok.to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------------------------- VGGT conventions


def test_vggt_crop_sizes():
    assert V.vggt_crop_plan(144, 256).out_hw == (294, 518)  # 144 * 518 / 256 = 291.4 -> 21 patches
    assert V.vggt_crop_plan(360, 640).out_hw == (294, 518)  # RealEstate10K native
    assert V.vggt_crop_plan(352, 640).out_hw == (280, 518)  # paper-v1 evaluation resolution
    portrait = V.vggt_crop_plan(1000, 500)
    assert portrait.resized_hw == (1036, 518) and portrait.top == 259 and portrait.out_hw == (518, 518)


def _dot_image(h: int, w: int, u: float, v: float, sigma: float) -> np.ndarray:
    """A Gaussian blob centred at continuous pixel coordinates (u, v) (pixel centres at +0.5)."""
    x, y = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    g = np.exp(-((x - u) ** 2 + (y - v) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255 + 0.5).astype(np.uint8)[..., None], 3, -1)


def _centroid(img: np.ndarray) -> tuple[float, float]:
    m = img.astype(np.float64)
    m = np.clip(m - 0.05 * m.max(), 0, None)  # cut bicubic ringing
    x, y = np.meshgrid(np.arange(m.shape[1]) + 0.5, np.arange(m.shape[0]) + 0.5)
    return float((x * m).sum() / m.sum()), float((y * m).sum() / m.sum())


@pytest.mark.parametrize("hw", [(144, 256), (600, 300)])  # landscape (no crop) and portrait (crop)
def test_vggt_preprocessing_and_K_mapping(hw):
    h, w = hw
    K = intrinsics_matrix(0.9 * w, 0.9 * w, 0.47 * w, 0.55 * h)
    point_cam = np.array([0.1, -0.05, 1.0])
    u, v = (K @ point_cam)[:2] / point_cam[2]
    frames = _dot_image(h, w, u, v, sigma=4.0)[None]
    images, plan = V.vggt_preprocess_crop(frames)
    assert images.shape == (1, 3) + plan.out_hw and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    K_net = V.K_to_vggt_input(K, plan)
    u_net, v_net = (K_net @ point_cam)[:2] / point_cam[2]
    cu, cv = _centroid(images[0, 0])
    assert abs(cu - u_net) < 0.1 and abs(cv - v_net) < 0.1
    assert np.allclose(V.K_from_vggt_input(K_net, plan), K)


def test_quaternion_is_xyzw_scalar_last():
    q = np.array([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)])  # +90 degrees about z
    R = V.quat_xyzw_to_matrix(q)
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0]) and np.allclose(R @ [0, 1, 0], [-1, 0, 0])
    assert np.allclose(V.quat_xyzw_to_matrix(3.0 * q), R)  # unnormalised network outputs are fine
    qs = np.random.default_rng(7).normal(size=(50, 4))
    assert np.allclose(V.quat_xyzw_to_matrix(qs), Rotation.from_quat(qs).as_matrix())  # scipy: scalar last
    back = V.matrix_to_quat_xyzw(V.quat_xyzw_to_matrix(qs))
    unit = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    assert np.allclose(back, unit * np.sign(unit[:, 3:]))  # w >= 0


def test_pose_encoding_hand_built():
    enc = np.array([[1.0, 2.0, 3.0, 0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4), 1.0, 1.2]])
    w2c, K = V.pose_encoding_to_w2c_K(enc, (294, 518))
    assert np.allclose(w2c[0, :3, 3], [1, 2, 3]) and np.allclose(w2c[0, :3, :3] @ [1, 0, 0], [0, 1, 0])
    assert np.isclose(K[0, 1, 1], 147 / np.tan(0.5)) and np.isclose(K[0, 0, 0], 259 / np.tan(0.6))
    assert np.allclose(K[0, :2, 2], [259, 147])
    c2w = invert_rigid(w2c[0])
    assert np.allclose(c2w[:3, 3], -w2c[0, :3, :3].T @ [1, 2, 3])  # camera centre


def test_pose_encoding_round_trip_to_our_c2w():
    c2w = trajectory(6)
    plan = V.vggt_crop_plan(144, 256)
    K = intrinsics_matrix(200.0, 201.0, 128.0, 72.0)  # principal point at the centre: VGGT cannot encode others
    K_net = V.K_to_vggt_input(K, plan)
    enc = V.w2c_K_to_pose_encoding(invert_rigid(c2w), np.repeat(K_net[None], 6, 0), plan.out_hw)
    c2w_back, K_back = V.pose_encoding_to_c2w_K(enc, plan)
    assert np.allclose(c2w_back, c2w, atol=1e-12) and np.allclose(K_back, K)


def test_vggt_check_available_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "vggt", None)  # as if not installed, even where it is
    message = get_estimator("vggt", device="cpu").check_available()
    assert "vggt package" in message and "pip install git+https://github.com/facebookresearch/vggt" in message
    with pytest.raises(EstimatorUnavailable, match="pip install"):
        get_estimator("vggt", device="cpu").estimate(np.zeros((2, 8, 8, 3), np.uint8))


# ---------------------------------------------------------------------------------------------- VGGT wiring


def _install_fake_vggt(monkeypatch, encodings: np.ndarray, expect_hw: tuple[int, int]) -> None:
    """A stand-in ``vggt`` package: the camera head returns ``encodings``; decoding via scipy (independent)."""
    import torch

    class FakeVGGT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)
            self.aggregator = self._aggregate
            self.camera_head = self._camera

        def _aggregate(self, x):
            assert x.shape[:2] == (1, len(encodings)) and tuple(x.shape[-2:]) == expect_hw
            assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
            return [x.mean(dim=(2, 3, 4))], 5

        def _camera(self, tokens):
            assert tokens[-1].dtype == torch.float32
            return [torch.as_tensor(encodings, dtype=torch.float32)[None]]

    def pose_encoding_to_extri_intri(enc, image_size_hw):
        e = enc[0].double().numpy()
        h, w = image_size_hw
        extri = np.concatenate([Rotation.from_quat(e[:, 3:7]).as_matrix(), e[:, :3, None]], -1)
        intri = np.zeros((len(e), 3, 3))
        intri[:, 0, 0] = w / 2 / np.tan(e[:, 8] / 2)
        intri[:, 1, 1] = h / 2 / np.tan(e[:, 7] / 2)
        intri[:, 0, 2], intri[:, 1, 2], intri[:, 2, 2] = w / 2, h / 2, 1
        return torch.from_numpy(extri)[None], torch.from_numpy(intri)[None]

    modules = {name: types.ModuleType(name) for name in ("vggt", "vggt.models", "vggt.models.vggt", "vggt.utils",
                                                           "vggt.utils.pose_enc")}
    modules["vggt.models.vggt"].VGGT = FakeVGGT
    modules["vggt.utils.pose_enc"].pose_encoding_to_extri_intri = pose_encoding_to_extri_intri
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return FakeVGGT


def test_vggt_estimator_end_to_end_with_a_stand_in_model(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    n, h, w = 5, 144, 256
    gt = trajectory(n)
    K = intrinsics_matrix(200.0, 200.0, 128.0, 72.0)
    plan = V.vggt_crop_plan(h, w)
    world = similarity(gt, rotation_about_axis([0, 1, 0], 0.4), np.ones(3), 0.2)  # VGGT's own frame and scale
    enc = V.w2c_K_to_pose_encoding(invert_rigid(world), np.repeat(V.K_to_vggt_input(K, plan)[None], n, 0), plan.out_hw)
    FakeVGGT = _install_fake_vggt(monkeypatch, enc, plan.out_hw)

    estimator = get_estimator("vggt", device="cpu", dtype="fp32", weights_path=str(tmp_path / "model.safetensors"))
    assert "weights_path=" in estimator.check_available()
    save_file(FakeVGGT().state_dict(), str(tmp_path / "model.safetensors"))
    assert estimator.check_available() is None

    frames = np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    est = estimator.estimate(frames, K)
    assert est.registered.all() and est.confidence is None and est.estimator == "vggt"
    assert np.allclose(est.K, K, atol=1e-3)  # float32 encodings
    e = pose_errors(gt, est.c2w, est.registered)
    assert e.r_err_rad < 1e-5 and e.t_err < 1e-5
    assert est.info["dtype"] == "fp32" and est.info["decode_check_max_abs_diff"] < 1e-5
    assert est.info["preprocessing"]["out_hw"] == (294, 518)


def test_vggt_options_are_validated():
    with pytest.raises(ValueError, match="dtype"):
        get_estimator("vggt", dtype="fp16")


def test_normalisation_uses_the_furthest_camera_even_mid_trajectory():
    """Furthest camera in the middle, last camera closer: normalising by the last registered frame instead of the
    furthest gives 0.1333 here instead of the protocol's 0.0556."""
    gt = np.repeat(np.eye(4)[None], 4, 0)
    est = gt.copy()
    gt[:, 0, 3] = [0.0, 1.0, 3.0, 2.0]
    est[:, 0, 3] = [0.0, 1.0, 3.0, 2.5]
    e = pose_errors(gt, est)
    assert e.gt_scale == 3.0 and e.est_scale == 3.0
    np.testing.assert_allclose(e.t_err_per_frame[1:], [0.0, 0.0, 0.5 / 3.0], atol=1e-12)
    assert e.t_err == pytest.approx(0.5 / 9.0, abs=1e-12)
