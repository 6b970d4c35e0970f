"""Declared image transforms between the protocol resolution and a method's native resolution.

Inputs go protocol -> native with the rule of the evaluation crops (``gac_bench.cameras.resize_crop_plan``):
resize so the image covers the target (bicubic, one scale factor for both axes), then centre-crop; K follows
with ``K_after_resize_crop``.

Frames come back native -> protocol in one of two declared ways (option ``frames_back``):

=========  ===========================================================================================
inverse    (default) the exact inverse of the input transform: the native frame is scaled back by 1/s and
           put where it came from, so every pixel keeps the harness K; the margins the input crop removed
           (the method never saw them) are filled by repeating the frame's edge pixels. The covered box is
           recorded (``covered_box_xyxy``) so a metric can restrict itself to it.
cover      the input rule again (resize to cover, centre-crop): the whole frame is generated content, but
           it is zoomed relative to the harness K whenever the two aspects differ.
=========  ===========================================================================================

Each adapter records both transforms in ``upstream/clip.json`` and in ``method.info``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.re10k import resize_crop_image


@dataclass(frozen=True)
class ResizeCrop:
    """Resize to cover ``dst_wh`` then centre-crop, from an image of ``src_wh`` (both width, height)."""

    src_wh: tuple[int, int]
    dst_wh: tuple[int, int]

    def image(self, img: np.ndarray, nearest: bool = False) -> np.ndarray:
        if (img.shape[1], img.shape[0]) != tuple(self.src_wh):
            raise ValueError(f"image is {img.shape[1]}x{img.shape[0]}, the transform expects {self.src_wh}")
        return resize_crop_image(img, self.dst_wh, resample=Image.NEAREST if nearest else Image.BICUBIC)

    def K(self, K: np.ndarray) -> np.ndarray:
        return cameras.K_after_resize_crop(K, self.src_wh, self.dst_wh)

    def record(self) -> dict:
        resized, (left, top) = cameras.resize_crop_plan(self.src_wh, self.dst_wh)
        return {
            "rule": "resize to cover (bicubic), then centre crop",
            "from_wh": list(self.src_wh),
            "resized_wh": list(resized),
            "crop_left_top": [left, top],
            "to_wh": list(self.dst_wh),
        }


@dataclass(frozen=True)
class UndoResizeCrop:
    """Inverse of a :class:`ResizeCrop` (protocol -> native): native frames back onto the protocol pixel grid."""

    forward: ResizeCrop

    def _geometry(self):
        (rw, rh), (left, top) = cameras.resize_crop_plan(self.forward.src_wh, self.forward.dst_wh)
        return rw, rh, left, top

    def covered_box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the protocol frame that the native frame covers, in protocol pixels."""
        rw, rh, left, top = self._geometry()
        (w0, h0), (wn, hn) = self.forward.src_wh, self.forward.dst_wh
        return (left * w0 / rw, top * h0 / rh, (left + wn) * w0 / rw, (top + hn) * h0 / rh)

    def image(self, img: np.ndarray) -> np.ndarray:
        rw, rh, left, top = self._geometry()
        wn, hn = self.forward.dst_wh
        if (img.shape[1], img.shape[0]) != (wn, hn):
            raise ValueError(f"frame is {img.shape[1]}x{img.shape[0]}, the transform expects {self.forward.dst_wh}")
        # the protocol frame spans [-left, rw - left] x [-top, rh - top] in native pixels: pad, then resample it
        pad_x, pad_y = max(left, rw - left - wn) + 2, max(top, rh - top - hn) + 2
        padded = np.pad(img, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
        box = (pad_x - left, pad_y - top, pad_x - left + rw, pad_y - top + rh)
        return np.asarray(Image.fromarray(padded).resize(self.forward.src_wh, Image.BICUBIC, box=box))

    def record(self) -> dict:
        return {
            "rule": "inverse of the input transform; margins the input crop removed are edge-replicated",
            "from_wh": list(self.forward.dst_wh),
            "to_wh": list(self.forward.src_wh),
            "covered_box_xyxy": [round(v, 3) for v in self.covered_box()],
        }


FRAMES_BACK = ("inverse", "cover")


@dataclass(frozen=True)
class NativeResolution:
    """The two declared transforms of a method: protocol -> native for inputs, native -> protocol for frames."""

    protocol_wh: tuple[int, int]
    native_wh: tuple[int, int]
    frames_back: str = "inverse"

    def __post_init__(self):
        if self.frames_back not in FRAMES_BACK:
            raise ValueError(f"frames_back={self.frames_back!r}: expected one of {', '.join(FRAMES_BACK)}")

    @property
    def to_native(self) -> ResizeCrop:
        return ResizeCrop(self.protocol_wh, self.native_wh)

    @property
    def to_protocol(self) -> ResizeCrop | UndoResizeCrop:
        if self.frames_back == "cover":
            return ResizeCrop(self.native_wh, self.protocol_wh)
        return UndoResizeCrop(self.to_native)

    def frames_to_protocol(self, frames_native: np.ndarray) -> np.ndarray:
        """(N, H_native, W_native, 3) uint8 -> (N, H, W, 3) uint8 at the protocol resolution."""
        back = self.to_protocol
        return np.stack([back.image(np.ascontiguousarray(f)) for f in frames_native])

    def record(self) -> dict:
        return {"inputs": self.to_native.record(), "frames_back": self.to_protocol.record()}
