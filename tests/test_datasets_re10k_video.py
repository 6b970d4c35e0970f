"""RealEstate10K as one video per clip (CameraCtrl's layout and an mp4 next to the camera file), read frame-exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gac_bench.datasets.clip import ClipDataError
from gac_bench.datasets.re10k import write_camera_file
from gac_bench.datasets.re10k_layouts import Re10kDataRoot, detect_re10k_layout
from tests.test_datasets_fixtures import make_clip, url

cv2 = pytest.importorskip("cv2")

W, H = 128, 64
N = 12


def level(i: int) -> int:
    """Frame i of a video is a flat grey at a level far from its neighbours' (survives lossy coding)."""
    return 10 + 10 * i


def write_video(path: Path, num_frames: int, fps: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert out.isOpened()
    for i in range(num_frames):
        out.write(np.full((H, W, 3), level(i), np.uint8))
    out.release()
    return path


def write_cameras(path: Path, clip, n: int, step_us: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = 1_000_000 + step_us * np.arange(n, dtype=np.int64)
    write_camera_file(path, url(clip), ts, clip.K_norm[:n], clip.w2c[:n])


def measured_level(frame: np.ndarray) -> float:
    return float(frame.astype(np.float64).mean())


def test_cameractrl_layout_one_frame_per_line(tmp_path):
    clip = make_clip("0123456789abcdef", N)
    write_cameras(tmp_path / "pose_files" / f"{clip.clip_id}.txt", clip, N, 33_333)
    write_video(tmp_path / "video_clips" / "yt_abc" / f"{clip.clip_id}.mp4", N, 30.0)
    layout = detect_re10k_layout(tmp_path)
    root = Re10kDataRoot(layout, W, H)
    assert root.has_clip(clip.clip_id)
    loaded = root.load_clip(clip.clip_id)
    assert "video_clips/yt_abc" in loaded.layout and loaded.num_frames == N
    for i in (0, 1, 5, N - 1):
        assert abs(measured_level(loaded.frame(i)) - level(i)) < 4, i


def test_longer_video_is_matched_by_timestamp(tmp_path):
    """Camera lines every 2/30 s over a 30 fps video: line i is video frame 2 i."""
    clip = make_clip("fedcba9876543210", N)
    write_cameras(tmp_path / "test" / f"{clip.clip_id}.txt", clip, N, 66_667)
    write_video(tmp_path / "test" / f"{clip.clip_id}.mp4", 2 * N, 30.0)
    loaded = Re10kDataRoot(detect_re10k_layout(tmp_path), W, H).load_clip(clip.clip_id)
    for i in (0, 1, 3, N - 1):
        assert abs(measured_level(loaded.frame(i)) - level(2 * i)) < 4, i


def test_video_with_fewer_frames_than_lines_names_both_counts(tmp_path):
    clip = make_clip("00000000000000aa", N)
    write_cameras(tmp_path / "test" / f"{clip.clip_id}.txt", clip, N, 33_333)
    video = write_video(tmp_path / "test" / f"{clip.clip_id}.mp4", N - 3, 30.0)
    root = Re10kDataRoot(detect_re10k_layout(tmp_path), W, H)
    with pytest.raises(ClipDataError, match=rf"clip {clip.clip_id}: .*{video.name} has {N - 3} frames but the camera "
                                            rf"file has {N} lines"):  # fmt: skip
        root.load_clip(clip.clip_id)


def test_unreadable_video_is_a_clip_error(tmp_path):
    clip = make_clip("00000000000000bb", N)
    write_cameras(tmp_path / "test" / f"{clip.clip_id}.txt", clip, N, 33_333)
    (tmp_path / "test" / f"{clip.clip_id}.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ClipDataError, match=f"clip {clip.clip_id}"):
        Re10kDataRoot(detect_re10k_layout(tmp_path), W, H).load_clip(clip.clip_id)
