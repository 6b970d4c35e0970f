"""The pycolmap estimator on frames rendered here from a small textured scene with known cameras."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gac_bench.cameras import intrinsics_matrix, look_at_c2w
from gac_bench.poses import get_estimator, loop_closure, pose_errors, pose_errors_by_subset
from gac_bench.poses.colmap import match_pairs, retrieval_pairs, sequential_pairs

H, W = 144, 256
K = intrinsics_matrix(200.0, 200.0, W / 2, H / 2)
N = 12

# ---------------------------------------------------------------------------------------------- tiny renderer


def _texture(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """Multi-octave value noise plus coloured discs: corners and blobs at every scale for SIFT."""
    img = np.zeros((size, size, 3))
    for cells in (4, 8, 16, 32):
        coarse = rng.random((cells + 1, cells + 1, 3))
        x = np.linspace(0, cells, size)
        i0 = np.minimum(np.floor(x).astype(int), cells - 1)
        f = (x - i0)[:, None, None]
        rows = coarse[i0] * (1 - f) + coarse[i0 + 1] * f
        img += (rows[:, i0] * (1 - f.transpose(1, 0, 2)) + rows[:, i0 + 1] * f.transpose(1, 0, 2)) / 4
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(25):
        cy, cx, r = rng.random(3) * [size, size, size / 10]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < (r + 2) ** 2] = rng.random(3)
    return np.clip(img, 0, 1).astype(np.float32)


def _box(lo, hi, rng) -> list:
    """Six textured faces (origin, edge u, edge v, texture) of an axis-aligned box."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    ex, ey, ez = np.diag(hi - lo)
    faces = [(lo, ey, ez), (lo + ex, ey, ez), (lo, ex, ez), (lo + ey, ex, ez), (lo, ex, ey), (lo + ez, ex, ey)]
    return [(p, u, v, _texture(rng)) for p, u, v in faces]


def make_room(seed: int = 0) -> list:
    """A 6 x 3 x 8 room (y down) with two boxes on the floor in front of the cameras."""
    rng = np.random.default_rng(seed)
    return (
        _box([-3, -1.5, -2], [3, 1.5, 6], rng)
        + _box([-1.6, 0.3, 2.6], [-0.6, 1.5, 3.6], rng)
        + _box([0.7, -0.2, 4.0], [1.8, 1.5, 5.0], rng)
    )


def render(quads: list, c2w: np.ndarray, ss: int = 2) -> np.ndarray:
    """Ray-cast the quads from an OpenCV camera (pixel centres at +0.5), ``ss`` x ``ss`` supersampling."""
    u, v = np.meshgrid((np.arange(W * ss) + 0.5) / ss, (np.arange(H * ss) + 0.5) / ss)
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
    d = d @ c2w[:3, :3].T
    o = c2w[:3, 3]
    best = np.full(len(d), np.inf)
    colour = np.full((len(d), 3), 0.5, np.float32)
    for p0, eu, ev, tex in quads:
        n = np.cross(eu, ev)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((p0 - o) @ n) / (d @ n)
        hit = o + t[:, None] * d - p0
        a, b = hit @ eu / (eu @ eu), hit @ ev / (ev @ ev)
        m = (t > 1e-6) & (t < best) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        best[m] = t[m]
        s = len(tex)
        colour[m] = tex[np.minimum((b[m] * s).astype(int), s - 1), np.minimum((a[m] * s).astype(int), s - 1)]
    img = colour.reshape(H, ss, W, ss, 3).mean((1, 3))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def camera_path(n: int, sweep: float = 1.0) -> np.ndarray:
    """A sideways-and-forward walk (about 1.1 units) panning across the boxes."""
    s = np.linspace(0, 1, n)
    pos = np.stack([-0.8 + 1.6 * sweep * s, -0.1 + 0.1 * np.sin(3 * s), 0.9 * sweep * s], -1)
    tgt = np.stack([0.5 * np.sin(2 * s) - 0.2, 0.3 + 0 * s, 4.0 + 0 * s], -1)
    return np.stack([look_at_c2w(p, t) for p, t in zip(pos, tgt)])


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clip():
    c2w = camera_path(N)
    room = make_room()
    return np.stack([render(room, c) for c in c2w]), c2w


@pytest.fixture(scope="module")
def gt_run(clip):
    frames, _ = clip
    return get_estimator("colmap").estimate(frames, K)


# ---------------------------------------------------------------------------------------------- pairs


def test_pair_lists():
    assert sequential_pairs(5, 2, quadratic=False) == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4)}
    # quadratic overlap adds i + 2^k for k < overlap
    assert (0, 16) in sequential_pairs(20, 5) and (0, 16) not in sequential_pairs(20, 4)
    frames = np.random.default_rng(0).integers(0, 256, (12, 36, 64, 3), dtype=np.uint8)
    frames[11] = frames[0]  # a revisit far apart in time
    assert (0, 11) in retrieval_pairs(frames, k=1, min_gap=3)
    assert all(j - i > 3 for i, j in retrieval_pairs(frames, k=2, min_gap=3))
    assert len(match_pairs(frames, "exhaustive", 3, 2)) == 66


# ---------------------------------------------------------------------------------------------- estimator


def test_ground_truth_frames_give_near_zero_errors(clip, gt_run):
    _, c2w = clip
    assert gt_run.registered.all() and gt_run.num_frames == N
    np.testing.assert_allclose(gt_run.K, np.repeat(K[None], N, 0))  # K held fixed
    e = pose_errors(c2w, gt_run.c2w, gt_run.registered)
    print(f"colmap on GT frames: R_err {e.r_err_rad:.2e} rad, T_err {e.t_err:.2e}, ATE {e.ate_sim3:.2e}, "
          f"{gt_run.info['timing']['total_s']:.1f} s")
    assert e.r_err_rad < 0.01 and e.t_err < 0.02 and e.ate_sim3 < 0.02
    assert gt_run.info["mapping_attempts"][0]["used"] and gt_run.confidence.min() > 0
    json.dumps(gt_run.to_dict(), allow_nan=False)  # records store the estimate


def test_deterministic(clip, gt_run):
    frames, _ = clip
    again = get_estimator("colmap").estimate(frames, K)
    np.testing.assert_array_equal(again.registered, gt_run.registered)
    np.testing.assert_array_equal(again.c2w, gt_run.c2w)


def test_wrong_trajectories_give_large_errors(clip, gt_run):
    frames, c2w = clip
    good = pose_errors(c2w, gt_run.c2w, gt_run.registered)
    reversed_run = get_estimator("colmap").estimate(frames[7::-1].copy(), K)  # frames played backwards
    bad = pose_errors(c2w[:8], reversed_run.c2w, reversed_run.registered)
    assert bad.r_err_rad > 10 * good.r_err_rad + 0.05 and bad.t_err > 0.5
    other_path = camera_path(N, sweep=-0.7)  # frames of one path scored against another
    bad = pose_errors(other_path, gt_run.c2w, gt_run.registered)
    assert bad.r_err_rad > 0.05 and bad.t_err > 0.5


def test_forth_and_back_registers_and_closes_the_loop(clip):
    frames, c2w = clip
    idx = np.r_[0:6, 5:-1:-1]  # 0..5 then back: frame 6 repeats 5 and the last frame repeats 0
    run = get_estimator("colmap").estimate(frames[idx], K)
    assert run.registered.all()
    rows = pose_errors_by_subset(c2w[idx], run.c2w, run.registered, "forth-and-back", forward=6)
    loop = loop_closure(c2w[idx], run.c2w, run.registered)
    print({k: f"R {v.r_err_rad:.2e} T {v.t_err:.2e}" for k, v in rows.items()})
    print(f"loop R {loop.r_err_rad:.2e} T {loop.t_err:.2e}")
    assert rows["return"].r_err_rad < 0.01 and rows["return"].t_err < 0.03
    assert loop.r_err_rad < 0.01 and loop.t_err < 0.03 and loop.gt_translation < 1e-12


def test_unregistrable_frames_are_reported_not_dropped(clip):
    frames, c2w = clip
    broken = frames[:8].copy()
    broken[5] = 128  # a blank frame: no features, cannot be placed
    run = get_estimator("colmap").estimate(broken, K)
    assert run.num_frames == 8 and not run.registered[5] and run.registered[[0, 1, 2, 3, 4, 6, 7]].all()
    assert np.isnan(run.c2w[5]).all() and run.confidence[5] == 0
    assert [a["mapper"] for a in run.info["mapping_attempts"]] == ["global"]
    # version 1's incremental mapper: a missing frame triggers the second mapping attempt (smaller initial angle),
    # and the tie keeps the first
    from gac_bench.poses.colmap import ColmapEstimator

    inc = ColmapEstimator(mapper="incremental").estimate(broken, K)
    assert not inc.registered[5] and [a["used"] for a in inc.info["mapping_attempts"]] == [True, False]
    e = pose_errors(c2w[:8], run.c2w, run.registered)
    assert e.num_registered == 6 and np.isclose(e.coverage, 6 / 7) and np.isnan(e.r_err_rad_per_frame[5])


def test_unknown_K_is_estimated(clip):
    frames, c2w = clip
    run = get_estimator("colmap").estimate(frames, None)
    assert run.registered.all() and not run.info["K_fixed"]
    assert abs(run.K[0, 0, 0] / K[0, 0] - 1) < 0.1 and np.allclose(run.K[0, :2, 2], K[:2, 2])
    e = pose_errors(c2w, run.c2w, run.registered)
    assert e.r_err_rad < 0.02 and e.t_err < 0.05


def test_byte_identical_frames_are_estimated_once_and_share_a_pose(clip):
    from gac_bench.poses.colmap import unique_frames

    frames, c2w = clip
    idx = np.r_[0:6, 5:-1:-1]
    keep, inverse = unique_frames(frames[idx])
    assert keep.tolist() == [0, 1, 2, 3, 4, 5] and inverse.tolist() == [0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0]
    run = get_estimator("colmap", dedupe=True).estimate(frames[idx], K)
    assert run.info["unique_frames"] == 6
    np.testing.assert_array_equal(run.c2w[6], run.c2w[5])
    np.testing.assert_array_equal(run.c2w[11], run.c2w[0])
    same = get_estimator("colmap", dedupe=True).estimate(np.repeat(frames[:1], 4, axis=0), K)
    assert not same.registered.any()  # one distinct image: nothing to reconstruct, reported, not invented


def test_small_frame_sets_match_every_pair_and_large_ones_stay_sequential():
    from gac_bench.poses.colmap import ColmapEstimator

    est = ColmapEstimator()
    assert est._matching_for(32) == "exhaustive" and est._matching_for(33) == "sequential"
    assert ColmapEstimator(exhaustive_up_to=0)._matching_for(12) == "sequential"
    assert ColmapEstimator(matching="sequential+retrieval")._matching_for(12) == "sequential+retrieval"
    assert est.options()["exhaustive_up_to"] == 32


def test_a_short_clip_is_matched_exhaustively(clip, gt_run):
    frames, _ = clip
    n = len(frames)
    assert gt_run.info["num_pairs"] == n * (n - 1) // 2
    off = get_estimator("colmap", exhaustive_up_to=0).estimate(frames, K)
    assert off.info["num_pairs"] < n * (n - 1) // 2 and off.registered.all()


# ---------------------------------------------------------------------------------------------- version 4


def test_threads_do_not_change_the_poses(clip, gt_run):
    """SIFT and two-view verification on the default threads (the cores, at most 8), on one and on three give the
    same poses, bit for bit."""
    from gac_bench.poses.colmap import default_threads

    frames, _ = clip
    threads = default_threads()
    assert 1 <= threads == min(8, len(os.sched_getaffinity(0)))
    assert gt_run.info["options"]["extract_threads"] == threads == gt_run.info["options"]["verify_threads"]
    for n in (1, 3):
        other = get_estimator("colmap", extract_threads=n, verify_threads=n).estimate(frames, K)
        assert other.info["options"]["extract_threads"] == n
        np.testing.assert_array_equal(other.c2w, gt_run.c2w)
    inside = get_estimator("colmap", extract_threads=1, verify_threads=0).estimate(frames, K)  # version 3's matcher
    np.testing.assert_array_equal(inside.c2w, gt_run.c2w)


def test_threaded_extraction_numbers_images_in_frame_order(clip, tmp_path):
    """A textured frame (slow SIFT) before flat ones (fast): a two-thread extractor left to number the images itself
    writes 0001 first (20 of 20 tries); importing the images first keeps ids in frame order."""
    import pycolmap

    from gac_bench.poses.colmap import ColmapEstimator

    frames = np.full((6, H, W, 3), 128, np.uint8)
    frames[0] = clip[0][0]
    est = ColmapEstimator(extract_threads=2)
    previous, pycolmap.logging.minloglevel = pycolmap.logging.minloglevel, 2
    try:
        image_dir, db = est._write_images(tmp_path, frames)
        est._extract(pycolmap, db, image_dir, frames, K)
    finally:
        pycolmap.logging.minloglevel = previous
    with pycolmap.Database.open(db) as d:
        images = sorted(d.read_all_images(), key=lambda im: im.image_id)
        assert [im.name for im in images] == [f"{i:04d}.bmp" for i in range(6)]
        assert d.num_keypoints_for_image(images[0].image_id) > 50 and d.num_cameras() == 1


def test_version_4_options_are_recorded_and_version_3_stays_reachable(clip, gt_run):
    frames, c2w = clip
    assert gt_run.info["version"] == "4"
    o = gt_run.info["options"]
    assert (o["tracks_per_view"], o["ba_fixed_rotation_stage"], o["extract_colors"], o["ransac_min_num_trials"]) == (
        75, False, False, 100)  # fmt: skip
    v3_options = {"tracks_per_view": 0, "ba_fixed_rotation_stage": True, "extract_colors": True}
    v3 = get_estimator("colmap", **v3_options).estimate(frames, K)
    assert v3.info["options"]["tracks_per_view"] == 0 and v3.registered.all()
    e = pose_errors(c2w, v3.c2w, v3.registered)
    assert e.r_err_rad < 0.01 and e.t_err < 0.02
    # each knob reaches pycolmap: one changed at a time moves the poses (by 1e-6 to 1e-3 on this clip)
    for knob in ({"tracks_per_view": 0}, {"ba_fixed_rotation_stage": True}, {"ransac_min_num_trials": 20}):
        assert not np.array_equal(get_estimator("colmap", **knob).estimate(frames, K).c2w, gt_run.c2w), knob
