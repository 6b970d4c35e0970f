"""Covering an N-pose trajectory with a method's fixed frame count per call.

Two shapes:

* ``plan_chained(n, frames_per_call, overlap)``: consecutive calls share ``overlap`` poses. Call k>0 starts at
  the last pose(s) of call k-1 and is conditioned on the frame call k-1 generated there (CameraCtrl,
  ViewCrafter, Voyager). The last call is padded to ``frames_per_call`` by repeating the last pose.
* ``plan_held(n, frames_per_call, hold)``: chained calls whose first ``hold`` poses all repeat the anchor (the
  pose of the frame the call is conditioned on), for an upstream that drops its first ``hold`` decoded frames
  (Voyager): the frames it returns are exactly the call's new poses. Consecutive calls share the anchor pose.
* ``plan_single(n, frame_count)``: one call with the whole trajectory, padded to ``frame_count`` poses by
  repeating the last pose (GEN3C's 120k+1 rule, SEVA's any-count call).

Each output frame is *owned* by exactly one call: the overlap frames of call k>0 re-generate poses that call k-1
already produced (and that call k is conditioned on), so they belong to call k-1; padded frames belong to nobody.
``stitch`` assembles the owned frames and checks that every pose got exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """One upstream call: the global pose index of each of its frames (padding repeats the last pose)."""

    index: int
    pose_index: tuple[int, ...]
    num_real: int  # frames 0..num_real-1 are distinct trajectory poses; the rest are padding
    keep_from: int  # frames before this one are overlap frames, owned by the previous call

    @property
    def frames_per_call(self) -> int:
        return len(self.pose_index)

    @property
    def owned_local(self) -> range:
        """Local frame indices whose output this call provides."""
        return range(self.keep_from, self.num_real)

    @property
    def owned_global(self) -> list[int]:
        return [self.pose_index[i] for i in self.owned_local]

    @property
    def last_real_local(self) -> int:
        return self.num_real - 1

    def record(self) -> dict:
        return {
            "index": self.index,
            "pose_index": list(self.pose_index),
            "num_real": self.num_real,
            "padding": self.frames_per_call - self.num_real,
            "owned_global": self.owned_global,
        }


def _padded(indices: list[int], count: int) -> tuple[int, ...]:
    return tuple(indices + [indices[-1]] * (count - len(indices)))


def plan_chained(num_frames: int, frames_per_call: int, overlap: int = 1) -> list[Chunk]:
    """Chained calls of ``frames_per_call`` poses sharing ``overlap`` poses; the last is padded."""
    if num_frames < 1:
        raise ValueError("a trajectory needs at least one pose")
    if not 1 <= overlap < frames_per_call:  # a chained call starts from a frame its predecessor generated
        raise ValueError(f"overlap must be in [1, frames_per_call), got {overlap} and {frames_per_call}")
    chunks, start, covered = [], 0, 0
    while covered < num_frames:
        real = list(range(start, min(start + frames_per_call, num_frames)))
        keep_from = 0 if not chunks else overlap
        chunks.append(Chunk(len(chunks), _padded(real, frames_per_call), len(real), keep_from))
        covered = real[-1] + 1
        start = start + frames_per_call - overlap
    return chunks


def plan_held(num_frames: int, frames_per_call: int, hold: int) -> list[Chunk]:
    """Chained calls of ``hold`` anchor poses then ``frames_per_call - hold`` new poses; the last is padded.

    Call 0's anchor is pose 0 (the reference): it owns pose 0 through its last held frame (the caller fills the
    held frames with the condition image). Call k>0's anchor is call k-1's last pose, owned by call k-1."""
    if num_frames < 1:
        raise ValueError("a trajectory needs at least one pose")
    if not 1 <= hold < frames_per_call:
        raise ValueError(f"hold must be in [1, frames_per_call), got {hold} and {frames_per_call}")
    chunks, anchor = [], 0
    while True:
        new = list(range(anchor + 1, min(anchor + 1 + frames_per_call - hold, num_frames)))
        real = [anchor] * hold + new
        keep_from = hold - 1 if not chunks else hold
        chunks.append(Chunk(len(chunks), _padded(real, frames_per_call), len(real), keep_from))
        if not new or new[-1] == num_frames - 1:
            return chunks
        anchor = new[-1]


def plan_single(num_frames: int, frame_count: int) -> list[Chunk]:
    """One call of ``frame_count >= num_frames`` poses, padded by repeating the last pose."""
    if frame_count < num_frames:
        raise ValueError(f"frame_count {frame_count} < trajectory length {num_frames}")
    return [Chunk(0, _padded(list(range(num_frames)), frame_count), num_frames, 0)]


def coverage(chunks: list[Chunk], num_frames: int) -> np.ndarray:
    """How many calls own each pose (must be all ones)."""
    counts = np.zeros(num_frames, dtype=int)
    for chunk in chunks:
        for g in chunk.owned_global:
            counts[g] += 1
    return counts


def stitch(chunks: list[Chunk], outputs: list[np.ndarray], num_frames: int) -> np.ndarray:
    """Assemble (num_frames, ...) from each call's output frames (F_k, ...), taking only owned frames."""
    counts = coverage(chunks, num_frames)
    if not np.all(counts == 1):
        raise ValueError(f"chunk plan covers poses {counts.tolist()} times; each must be covered exactly once")
    if len(outputs) != len(chunks):
        raise ValueError(f"{len(outputs)} outputs for {len(chunks)} chunks")
    first = outputs[0]
    out = np.empty((num_frames,) + first.shape[1:], dtype=first.dtype)
    for chunk, frames in zip(chunks, outputs):
        if len(frames) != chunk.frames_per_call:
            raise ValueError(
                f"chunk {chunk.index}: upstream returned {len(frames)} frames for {chunk.frames_per_call} poses"
            )
        for local in chunk.owned_local:
            out[chunk.pose_index[local]] = frames[local]
    return out
