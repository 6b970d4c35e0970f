"""The embedded synthroom split: determinism, exact depth, camera paths, on-disk round trip, caching."""

from __future__ import annotations

import numpy as np
import pytest

from gac_bench import cameras
from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets import synthroom
from gac_bench.datasets.re10k import Re10kRawReader, parse_camera_file
from gac_bench.datasets.synthroom import writer
from gac_bench.datasets.synthroom.floorplan import floor_plan
from gac_bench.datasets.synthroom.raycast import render_depth, render_view

# tiny config: 16:9 so fy_norm = 0.5625 * 64 / 36 = 1 exactly, like the default 256x144
TINY = dict(num_clips=1, num_frames=6, width=64, height=36)


@pytest.fixture(scope="module")
def clip0():
    """Scene and full-length path of clip 0 of seed 0 (as the writer makes them), at 96x54 pixels."""
    cfg = writer.SynthroomConfig(seed=0, num_clips=1, num_frames=synthroom.NUM_FRAMES, width=96, height=54)
    scene, c2w, K = writer.clip_setup(cfg, 0)
    return scene, c2w, K, cfg


def _bilinear(img: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample (H, W, ...) at continuous pixel coordinates (pixel centres at +0.5); also the 4 taps."""
    x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    taps = [img[y0, x0], img[y0, x0 + 1], img[y0 + 1, x0], img[y0 + 1, x0 + 1]]
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = taps[0] * (1 - fx) + taps[1] * fx
    bottom = taps[2] * (1 - fx) + taps[3] * fx
    return top * (1 - fy) + bottom * fy, np.stack(taps)


# ---------------------------------------------------------------------------------------------- rendering


def test_render_is_deterministic(clip0):
    scene, c2w, K, _ = clip0
    a = render_view(scene, K, c2w[10], 54, 96)
    b = render_view(synthroom.make_scene(writer.clip_seed(0, 0)), K, c2w[10], 54, 96)
    assert a[0].dtype == np.uint8 and a[0].shape == (54, 96, 3)
    assert a[1].dtype == np.float32 and a[1].shape == (54, 96)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.all(np.isfinite(a[1])) and a[1].min() > 0.2
    c2w_again, K_again = synthroom.make_camera_path(scene, 20, writer.clip_seed(0, 0), 96, 54, kind="walk")
    assert np.array_equal(c2w_again, c2w[:20]) and np.array_equal(K_again, K)


def test_depth_is_exact_z_depth_at_pixel_centres(clip0):
    """Unproject frame a, project into frame b: inverse depth must match b's (bilinear is exact on planes).

    Ray-length depth (up to 30% off at the borders) or K off by half a pixel (errors ~1e-3 on slanted
    planes) fail the 2e-5 median by orders of magnitude.
    """
    scene, c2w, K, _ = clip0
    h, w = 54, 96
    rgb_a, depth_a = render_view(scene, K, c2w[0], h, w)
    rgb_b, depth_b = render_view(scene, K, c2w[12], h, w)
    points = cameras.unproject_depth(depth_a.astype(np.float64), K, c2w[0]).reshape(-1, 3)
    uv, z = cameras.project_points(points, K, c2w[12])
    inside = (z > 0) & (uv[:, 0] > 0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] > 0.5) & (uv[:, 1] < h - 0.5)
    inv_b, taps = _bilinear(1.0 / depth_b.astype(np.float64), uv[inside])
    planar = np.abs(taps[0] - taps[1] - taps[2] + taps[3]) < 1e-5 * taps[0]  # the 4 taps lie on one plane
    rel = np.abs(inv_b * z[inside] - 1.0)
    visible = planar & (rel < 0.01)  # points hidden in b (b sees something nearer) drop out here
    assert visible.sum() > 0.5 * inside.sum()
    assert np.median(rel[visible]) < 2e-5
    assert np.quantile(rel[visible], 0.99) < 1e-3
    # colours agree where the point is visible; misregistering by 2 px makes them disagree much more
    colour_a = rgb_a.reshape(-1, 3)[inside][visible].astype(np.float64)
    good = np.abs(_bilinear(rgb_b.astype(np.float64), uv[inside][visible])[0] - colour_a).mean()
    shifted_uv = np.clip(uv[inside][visible] + [2.0, 0.0], 0.5, w - 1.5)
    bad = np.abs(_bilinear(rgb_b.astype(np.float64), shifted_uv)[0] - colour_a).mean()
    assert good < 12.0 and bad > 3.0 * good  # measured: about 8 and 42 (of 255)


def test_crop_consistency(clip0):
    """Rendering a crop with K_after_crop equals cropping the render (pixel-centre convention)."""
    scene, c2w, K, _ = clip0
    rgb, depth = render_view(scene, K, c2w[30], 54, 96)
    K_crop = cameras.K_after_crop(K, 17, 9)
    rgb_c, depth_c = render_view(scene, K_crop, c2w[30], 20, 40)
    assert np.allclose(depth_c, depth[9:29, 17:57], rtol=1e-5)
    assert np.abs(rgb_c.astype(int) - rgb[9:29, 17:57]).max() <= 1


# ---------------------------------------------------------------------------------------------- paths


@pytest.mark.parametrize("clip_index", range(synthroom.NUM_CLIPS))
def test_camera_paths(clip_index):
    cfg = writer.SynthroomConfig(width=64, height=36)
    scene, c2w, K = writer.clip_setup(cfg, clip_index)
    n = synthroom.NUM_FRAMES
    assert c2w.shape == (n, 4, 4) and cameras.is_rigid(c2w, atol=1e-6)
    assert np.allclose(K, cameras.intrinsics_matrix(36.0, 36.0, 32.0, 18.0))
    # eye height, room interior, clearance in plan
    assert np.all((c2w[:, 2, 3] >= 1.4) & (c2w[:, 2, 3] <= 1.7))
    assert floor_plan(scene).clearance(c2w[:, :2, 3]).min() >= 0.3
    # smooth: bounded per-frame motion and acceleration
    step = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    turn = np.rad2deg(cameras.geodesic_angle_rad(c2w[:-1, :3, :3], c2w[1:, :3, :3]))
    assert step.max() < 0.03 and turn.max() < 1.5
    assert np.abs(np.diff(step)).max() < 0.003
    # RealEstate10K-like span over the 190 source frames of a stride-3 trajectory
    span = np.linalg.norm(c2w[189, :3, 3] - c2w[0, :3, 3])
    angle = np.rad2deg(cameras.geodesic_angle_rad(c2w[0, :3, :3], c2w[189, :3, :3]))
    assert 0.5 <= span <= 3.2 and angle <= 65.0 and (span >= 1.0 or angle >= 25.0)
    # 3-D clearance along every visible direction: ray length to the first hit stays above 0.3 m
    for i in (0, 95, 189):
        depth = render_depth(scene, K, c2w[i], 36, 64)
        u, v = np.meshgrid(np.arange(64) + 0.5, np.arange(36) + 0.5)
        stretch = np.sqrt(1 + ((u - K[0, 2]) / K[0, 0]) ** 2 + ((v - K[1, 2]) / K[1, 1]) ** 2)
        assert (depth * stretch).min() > 0.3


# ---------------------------------------------------------------------------------------------- disk


def test_write_round_trip(tmp_path):
    root = synthroom.write_synthroom(tmp_path / "sr", progress=False, workers=0, **TINY)
    assert (root / "manifest.json").is_file()
    reader = Re10kRawReader(cameras_dir=root / "cameras", frames_dir=root / "frames", depth_dir=root / "depth",
                            width=TINY["width"], height=TINY["height"])  # fmt: skip
    clip = reader.load_clip("room00")
    cfg = writer.SynthroomConfig(**TINY)
    scene, c2w, K = writer.clip_setup(cfg, 0)
    assert clip.num_frames == TINY["num_frames"] and clip.has_depth
    assert np.allclose(clip.c2w, c2w, atol=1e-6) and np.allclose(clip.K, K, atol=1e-9)
    cams = parse_camera_file(root / "cameras" / "room00.txt")
    assert cams.url == "synthroom://v1/seed=0/room00"
    assert cams.timestamps_us.tolist() == [round(i * 1e6 / 30) for i in range(TINY["num_frames"])]
    for i in (0, TINY["num_frames"] - 1):
        rgb, depth = render_view(scene, K, c2w[i], TINY["height"], TINY["width"])
        assert np.array_equal(clip.frame(i), rgb)
        assert np.array_equal(clip.depth(i), depth)
    assert np.load(root / "depth" / "room00" / "0.npy", allow_pickle=False).dtype == np.float32


def test_worker_processes_write_identical_bytes(tmp_path):
    a = synthroom.write_synthroom(tmp_path / "a", progress=False, workers=0, **TINY)
    b = synthroom.write_synthroom(tmp_path / "b", progress=False, workers=1, **TINY)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_ensure_caches_and_ignores_interrupted_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path / "home"))
    folder = synthroom.cache_dir(None, 0, writer.SynthroomConfig(**TINY))
    # a leftover of a render killed before its rename: complete-looking, but never used
    leftover = folder.parent / f".{folder.name}.tmp-999-deadbeef"
    synthroom.write_synthroom(leftover, progress=False, workers=0, **TINY)
    # an interrupted render: the renderer dies half way, nothing valid is left behind
    real_chunk = writer.render_chunk
    calls = []

    def dying_chunk(*args):
        calls.append(args)
        if args[4] >= 3:  # the second chunk of the clip
            raise KeyboardInterrupt
        return real_chunk(*args)

    monkeypatch.setattr(writer, "render_chunk", dying_chunk)
    monkeypatch.setattr(writer, "CHUNK_FRAMES", 3)
    with pytest.raises(KeyboardInterrupt):
        synthroom.ensure_synthroom(progress=False, workers=0, **TINY)
    assert not (folder / "manifest.json").exists()
    monkeypatch.setattr(writer, "render_chunk", real_chunk)

    root = synthroom.ensure_synthroom(progress=False, workers=0, **TINY)
    assert root == folder and writer.is_complete(root, writer.SynthroomConfig(**TINY), synthroom.VERSION)
    assert not leftover.exists() and not list(folder.parent.glob(f".{folder.name}.tmp-*"))
    stamp = (root / "manifest.json").stat().st_mtime_ns

    def no_render(*args, **kwargs):
        raise AssertionError("a complete cache must not be re-rendered")

    monkeypatch.setattr(synthroom, "render_tree", no_render)
    assert synthroom.ensure_synthroom(progress=False, workers=0, **TINY) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp
    # a missing frame makes the cache invalid again
    next((root / "frames" / "room00").iterdir()).unlink()
    with pytest.raises(AssertionError, match="re-rendered"):
        synthroom.ensure_synthroom(progress=False, workers=0, **TINY)


def test_default_cache_location_and_constants(monkeypatch, tmp_path):
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path))
    assert synthroom.cache_dir(None) == tmp_path / "data" / f"synthroom-v{synthroom.VERSION}-seed0"
    assert synthroom.cache_dir(tmp_path / "mine") == tmp_path / "mine"
    assert synthroom.CLIP_IDS == tuple(f"room{i:02d}" for i in range(8))
    assert (synthroom.WIDTH, synthroom.HEIGHT, synthroom.NUM_FRAMES, synthroom.STRIDE) == (256, 144, 200, 3)


def test_rerenders_a_tree_that_lost_its_manifest(tmp_path):
    root = synthroom.write_synthroom(tmp_path / "sr", progress=False, workers=0, **TINY)
    (root / "manifest.json").unlink()
    assert synthroom.write_synthroom(root, progress=False, workers=0, **TINY) == root
    assert writer.is_complete(root, writer.SynthroomConfig(**TINY), synthroom.VERSION)


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / "frames" / "clipA").mkdir(parents=True)
    (tmp_path / "frames" / "clipA" / "0.png").write_bytes(b"not ours")
    with pytest.raises(ClipDataError, match="not a synthroom render"):
        synthroom.write_synthroom(tmp_path, progress=False, workers=0, **TINY)
    assert (tmp_path / "frames" / "clipA" / "0.png").read_bytes() == b"not ours"
