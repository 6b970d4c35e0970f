"""RealEstate10K readers: layout detection, identical clips across layouts, and bad data errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gac_bench import cameras
from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout
from gac_bench.splits import get_split
from tests.test_datasets_fixtures import make_clip, write_chunks, write_npz, write_raw

W, H = 640, 352
N = 200


@pytest.fixture(scope="module")
def clips():
    return [make_clip("0123456789abcdef", N, seed=1), make_clip("fedcba9876543210", N, seed=2)]


def reader(root):
    layout = detect_re10k_layout(root)
    assert layout is not None
    return Re10kDataRoot(layout, W, H)


def assert_same_clip(a, b, indices=(0, 1, 77, N - 1)):
    np.testing.assert_allclose(a.K, b.K, rtol=1e-6)
    np.testing.assert_allclose(a.c2w, b.c2w, atol=1e-6)
    for i in indices:
        np.testing.assert_array_equal(a.frame(i), b.frame(i))


def test_every_layout_gives_the_same_clip(clips, tmp_path):
    clip = clips[0]
    roots = {
        "raw-timestamp-jpg": tmp_path / "a",
        "raw-index-png": tmp_path / "b",
        "raw-frames-dir": tmp_path / "c",
        "official-tarball+downloader": tmp_path / "d",
        "npz": tmp_path / "e",
        "chunks": tmp_path / "f",
    }
    write_raw(roots["raw-timestamp-jpg"], clip, naming="timestamp", ext="jpg")
    write_raw(roots["raw-index-png"], clip, naming="index", ext="png")
    write_raw(roots["raw-frames-dir"], clip, cameras_dir="cameras", frames_dir="frames")
    write_raw(roots["official-tarball+downloader"], clip, cameras_dir="RealEstate10K/test", frames_dir="dataset/test")
    write_npz(roots["npz"], clip)
    write_chunks(roots["chunks"], clips, per_chunk=2)
    loaded = {name: reader(root).load_clip(clip.clip_id) for name, root in roots.items()}
    expected_layouts = {
        "raw-timestamp-jpg": "named by timestamp, jpg",
        "raw-index-png": "named by index, png",
        "raw-frames-dir": "re10k-raw",
        "official-tarball+downloader": "re10k-raw",
        "npz": "data.npz",
        "chunks": "re10k-pixelsplat-chunks",
    }
    for name, c in loaded.items():
        assert expected_layouts[name] in c.layout, (name, c.layout)
        assert (c.height, c.width, c.num_frames) == (H, W, N)
        assert_same_clip(loaded["raw-timestamp-jpg"], c)


def test_K_follows_the_resize_and_crop(clips, tmp_path):
    write_chunks(tmp_path, clips[:1])
    c = reader(tmp_path).load_clip(clips[0].clip_id)
    K_src = cameras.K_norm_to_pixels(clips[0].K_norm[0], 64, 36)
    np.testing.assert_allclose(c.K, cameras.K_after_resize_crop(K_src, (64, 36), (W, H)))
    np.testing.assert_allclose(c.c2w, cameras.w2c_to_c2w(clips[0].w2c), atol=1e-6)
    assert c.frame(5).shape == (H, W, 3) and c.frame(5).dtype == np.uint8


def test_chunks_are_read_lazily_through_the_index(clips, tmp_path):
    stage = write_chunks(tmp_path, clips, per_chunk=1)
    (stage / "000000.torch").write_bytes(b"not a torch file")  # never touched when reading clip 2
    r = reader(tmp_path)
    assert r.load_clip(clips[1].clip_id).num_frames == N
    with pytest.raises(ClipDataError) as err:
        r.load_clip(clips[0].clip_id)
    assert clips[0].clip_id in str(err.value) and "000000.torch" in str(err.value)


def test_chunks_refuse_pickled_objects(clips, tmp_path):
    from fractions import Fraction

    import torch

    stage = write_chunks(tmp_path, clips[:1])
    # any class outside the weights-only allow-list stands for arbitrary code in a pickle
    torch.save([{"key": clips[0].clip_id, "evil": Fraction(1, 3)}], stage / "000000.torch")
    with pytest.raises(ClipDataError, match="cannot load chunk"):
        reader(tmp_path).load_clip(clips[0].clip_id)


def test_detection_reports_nothing_for_an_empty_root(tmp_path):
    assert detect_re10k_layout(tmp_path) is None


# ---------------------------------------------------------------------------------------------- bad data


def _message(fn) -> str:
    with pytest.raises(ClipDataError) as err:
        fn()
    return str(err.value)


def test_missing_clip_names_clip_and_file(clips, tmp_path):
    write_raw(tmp_path / "raw", clips[0])
    msg = _message(lambda: reader(tmp_path / "raw").load_clip("00000000deadbeef"))
    assert "00000000deadbeef" in msg and "00000000deadbeef.txt" in msg
    write_chunks(tmp_path / "chunks", clips[:1])
    msg = _message(lambda: reader(tmp_path / "chunks").load_clip("00000000deadbeef"))
    assert "00000000deadbeef" in msg and "index.json" in msg


def test_malformed_camera_line_names_clip_file_and_line(clips, tmp_path):
    write_raw(tmp_path, clips[0])
    cam = tmp_path / "test" / f"{clips[0].clip_id}.txt"
    lines = cam.read_text().splitlines()
    lines[7] = lines[7].rsplit(" ", 3)[0]
    cam.write_text("\n".join(lines) + "\n")
    msg = _message(lambda: reader(tmp_path).load_clip(clips[0].clip_id))
    assert f"clip {clips[0].clip_id}" in msg and f"{cam}:8" in msg and "expected 19 numbers" in msg


def test_too_few_frames_for_the_trajectory(tmp_path):
    short = make_clip("51606f24d69a31c5", 150)  # first clip of re10k-test-150: start 80, needs 270 frames
    write_raw(tmp_path, short)
    split = get_split("re10k-test-150", tmp_path)
    msg = _message(lambda: split.load_clip(split.clips[0]))
    assert "51606f24d69a31c5" in msg and "150 frames" in msg and "51606f24d69a31c5.txt" in msg


def test_undecodable_image_names_clip_and_file(clips, tmp_path):
    folder = write_raw(tmp_path / "raw", clips[0])
    bad = sorted(folder.iterdir())[3]
    bad.write_bytes(b"\xff\xd8 truncated")
    clip = reader(tmp_path / "raw").load_clip(clips[0].clip_id)
    msg = _message(lambda: clip.frames(np.arange(10)))
    assert clips[0].clip_id in msg and str(bad) in msg
    # the same in a chunk: image 3 of the example
    broken = make_clip(clips[1].clip_id, N, seed=2)
    broken.jpeg[3] = b"garbage"
    write_chunks(tmp_path / "chunks", [broken])
    clip = reader(tmp_path / "chunks").load_clip(broken.clip_id)
    msg = _message(lambda: clip.frame(3))
    assert broken.clip_id in msg and "000000.torch" in msg


def test_missing_frames_folder_and_partial_frames(clips, tmp_path):
    write_raw(tmp_path, clips[0])
    folder = tmp_path / "test" / clips[0].clip_id
    sorted(folder.iterdir())[10].unlink()
    msg = _message(lambda: reader(tmp_path).load_clip(clips[0].clip_id))
    assert clips[0].clip_id in msg and str(folder) in msg
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    msg = _message(lambda: reader(tmp_path).load_clip(clips[0].clip_id))
    assert clips[0].clip_id in msg and "no frames folder" in msg


def test_split_without_data_root_fails_per_clip_with_a_hint(monkeypatch):
    monkeypatch.delenv("GAC_BENCH_RE10K", raising=False)
    split = get_split("re10k-test-150", None)
    msg = _message(lambda: split.load_clip(split.clips[0]))
    assert split.clips[0].clip_id in msg and "--data-root" in msg and "GAC_BENCH_RE10K" in msg


def test_env_var_points_at_the_data(clips, tmp_path, monkeypatch):
    from gac_bench.split_files import load_split_file

    spec = load_split_file("re10k-test-150").clips[1]
    write_chunks(tmp_path, [make_clip(spec.clip_id, spec.length, seed=5)])
    monkeypatch.setenv("GAC_BENCH_RE10K", str(tmp_path))
    split = get_split("re10k-test-150")
    assert str(tmp_path) in split.data_location
    assert split.load_clip(split.clips[1]).num_frames == spec.length
    index = json.loads((tmp_path / "test" / "index.json").read_text())
    assert list(index) == [spec.clip_id]
