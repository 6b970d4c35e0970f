"""The clip object every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


class ClipDataError(ValueError):
    """A clip's data is missing or malformed. The message names the clip and the file."""


@dataclass
class Clip:
    """One clip at the evaluation resolution.

    Attributes:
        clip_id: id within its split.
        K: (3, 3) pixel intrinsics at (height, width) after the declared resize and crop.
        c2w: (N, 4, 4) OpenCV camera-to-world of every source frame.
        height, width: evaluation resolution.
        source: where the clip was read from, for error messages and records.
        layout: which on-disk layout the reader detected.
    """

    clip_id: str
    K: np.ndarray
    c2w: np.ndarray
    height: int
    width: int
    source: str
    layout: str
    _frame_loader: Callable[[int], np.ndarray] = field(repr=False)
    _depth_loader: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    frame_paths: list[Path] | None = field(default=None, repr=False)
    timestamps_us: np.ndarray | None = field(default=None, repr=False)  # (N,) int, where the dataset has them

    def frame_file_names(self) -> list[str]:
        """Per-frame names that prepared depth files carry: the timestamp in microseconds where the dataset has
        one (RealEstate10K, every layout), else the frame file's stem (DL3DV)."""
        if self.timestamps_us is not None:
            return [str(int(t)) for t in self.timestamps_us]
        if self.frame_paths is not None:
            return [Path(p).stem for p in self.frame_paths]
        raise ClipDataError(f"clip {self.clip_id}: frames have neither timestamps nor files to name depth by "
                            f"({self.source})")  # fmt: skip

    @property
    def num_frames(self) -> int:
        return int(len(self.c2w))

    @property
    def has_depth(self) -> bool:
        return self._depth_loader is not None

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.num_frames:
            raise ClipDataError(
                f"clip {self.clip_id}: source frame {i} requested but the clip has {self.num_frames} frames ({self.source})"
            )

    def frame(self, i: int) -> np.ndarray:
        """uint8 (height, width, 3) RGB of source frame ``i``."""
        self._check_index(i)
        img = self._frame_loader(i)
        if img.shape != (self.height, self.width, 3) or img.dtype != np.uint8:
            raise ClipDataError(
                f"clip {self.clip_id}: frame {i} has shape {img.shape} {img.dtype}, "
                f"expected ({self.height}, {self.width}, 3) uint8 ({self.source})"
            )
        return img

    def frames(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (len(indices), height, width, 3); each distinct frame is read once."""
        cache: dict[int, np.ndarray] = {}
        out = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
        for j, i in enumerate(indices):
            i = int(i)
            if i not in cache:
                cache[i] = self.frame(i)
            out[j] = cache[i]
        return out

    def depth(self, i: int) -> np.ndarray:
        """float32 (height, width) z-depth of source frame ``i`` in world units."""
        self._check_index(i)
        if self._depth_loader is None:
            raise ClipDataError(f"clip {self.clip_id}: the dataset provides no depth ({self.source})")
        return self._depth_loader(i)
