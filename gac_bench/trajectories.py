"""Trajectories of protocol paper-v1 as index maps from output frames to source frames of a clip.

Output frame j takes the pose *and* the ground truth of source frame ``source_index[j]``. For
``forth-and-back`` the return frames 32+k mirror forward frame 31-k, so frame 63 is frame 0 again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench.protocol import PAPER_V1, Protocol


@dataclass(frozen=True)
class Trajectory:
    kind: str
    source_index: np.ndarray  # (N,) int: source frame of the clip for each output frame
    mirror_of: np.ndarray  # (N,) int: the output frame whose ground truth each frame shares (itself when forward)

    @property
    def num_frames(self) -> int:
        return int(len(self.source_index))


def dataset_offsets(num_frames: int) -> np.ndarray:
    """Trajectory ``dataset``: offset i for output frame i."""
    return np.arange(num_frames)


def forth_and_back_offsets(num_frames: int, forward: int) -> np.ndarray:
    """Trajectory ``forth-and-back``: frames 0..forward-1 go forward, frame forward+k returns to forward-1-k."""
    if num_frames != 2 * forward:
        raise ValueError(f"forth-and-back needs num_frames = 2 * forward, got {num_frames} and {forward}")
    fwd = np.arange(forward)
    return np.concatenate([fwd, fwd[::-1]])


def make_trajectory(kind: str, start: int, stride: int, protocol: Protocol = PAPER_V1) -> Trajectory:
    """The trajectory ``kind`` of a clip whose segment starts at source frame ``start`` with ``stride``."""
    n = protocol.num_frames
    if kind == "dataset":
        offsets = dataset_offsets(n)
    elif kind == "forth-and-back":
        offsets = forth_and_back_offsets(n, protocol.forth_and_back_forward)
    else:
        raise ValueError(f"unknown trajectory {kind!r}; known: {', '.join(protocol.trajectories)}")
    return Trajectory(kind=kind, source_index=start + stride * offsets, mirror_of=offsets.copy())


def source_frames_needed(start: int, stride: int, protocol: Protocol = PAPER_V1) -> int:
    """Length a clip must have (in source frames) for every trajectory of the protocol."""
    return start + stride * (protocol.num_frames - 1) + 1
