"""Frames of a video file, decoded sequentially (frame-exact, unlike seeking) through OpenCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gac_bench.datasets.clip import ClipDataError


def video_info(video: Path, clip_id: str) -> tuple[int, float]:
    """(frame count as the container states it, frames per second)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ClipDataError(f"clip {clip_id}: cannot open video {video}")
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


def read_video_frames(video: Path, clip_id: str, stop: int | None = None) -> np.ndarray:
    """Frames 0 .. stop-1 (every frame when ``stop`` is None) as uint8 RGB (N, H, W, 3)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ClipDataError(f"clip {clip_id}: cannot open video {video}")
    frames = []
    try:
        while stop is None or len(frames) < stop:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr[..., ::-1])
    finally:
        cap.release()
    if not frames:
        raise ClipDataError(f"clip {clip_id}: no decodable frame in {video}")
    return np.ascontiguousarray(np.stack(frames))


def frame_indices_for_timestamps(timestamps_us: np.ndarray, num_video_frames: int, fps: float, video: Path,
                                 clip_id: str) -> np.ndarray:  # fmt: skip
    """Which video frame belongs to each camera line.

    One frame per line (CameraCtrl's ``video_clips/<yt_id>/<id>.mp4``: frame i is line i) when the counts agree;
    a longer video is taken to start at the first timestamp and is indexed by time, round((t - t0) * fps); a
    video with fewer frames than lines is an error."""
    n = len(timestamps_us)
    if num_video_frames == n:
        return np.arange(n)
    if num_video_frames < n:
        raise ClipDataError(f"clip {clip_id}: {video} has {num_video_frames} frames but the camera file has {n} "
                            "lines (one frame per line is needed)")  # fmt: skip
    if fps <= 0:
        raise ClipDataError(f"clip {clip_id}: {video} has {num_video_frames} frames for {n} camera lines and no "
                            "frame rate to match them by timestamp")  # fmt: skip
    t = np.asarray(timestamps_us, dtype=np.float64)
    idx = np.rint((t - t[0]) * 1e-6 * fps).astype(np.int64)
    if idx.max() >= num_video_frames:
        raise ClipDataError(f"clip {clip_id}: camera timestamps reach {(t[-1] - t[0]) * 1e-6:.2f} s after the first, "
                            f"beyond the {num_video_frames} frames of {video} at {fps:g} fps")  # fmt: skip
    return idx
