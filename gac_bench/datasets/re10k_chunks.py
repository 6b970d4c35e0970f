"""RealEstate10K as pixelSplat ``.torch`` chunks (the processed copy used by pixelSplat, MVSplat, DepthSplat).

Stage folder (``<root>/test``)::

    000000.torch, 000001.torch, ...   each a list of examples written by torch.save
    index.json                        {clip_id: "<chunk file name relative to the stage folder>"}

An example is a dict: ``key`` (clip id), ``url``, ``timestamps`` (int64 [N], microseconds), ``cameras``
(float32 [N, 18] = normalised fx fy cx cy, two zeros, row-major 3x4 world-to-camera in OpenCV axes) and
``images`` (N uint8 1-D tensors, each the bytes of one JPEG file). Frame i is example row i, the same index as
line i+1 of the official camera txt.

Reading is lazy: ``index.json`` says which chunk holds a clip, only that chunk is loaded (with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers), and the last
chunk stays cached because split order often visits clips of one chunk in a row. Frames are decoded on demand.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench import cameras
from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.datasets.re10k import Re10kCameras, evaluation_view

CAMERA_VECTOR = 18


def decode_image_bytes(data: bytes, clip_id: str, where: str) -> np.ndarray:
    """uint8 HxWx3 RGB from encoded image bytes; undecodable data raises ClipDataError naming ``where``."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ClipDataError(f"clip {clip_id}: cannot decode image {where}: {exc}") from None


def cameras_from_vectors(vectors: np.ndarray, timestamps_us: np.ndarray, url: str, where: str) -> Re10kCameras:
    """[N, 18] pixelSplat camera vectors (+ timestamps) to :class:`Re10kCameras`."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] != CAMERA_VECTOR:
        raise ClipDataError(f"{where}: cameras must be [N, {CAMERA_VECTOR}], got {list(vectors.shape)}")
    if len(timestamps_us) != len(vectors):
        raise ClipDataError(f"{where}: {len(timestamps_us)} timestamps for {len(vectors)} cameras")
    if not np.all(np.isfinite(vectors)):
        raise ClipDataError(f"{where}: non-finite camera values")
    K_norm = np.stack([cameras.intrinsics_matrix(*v[:4]) for v in vectors])
    w2c = cameras.to_homogeneous(vectors[:, 6:].reshape(-1, 3, 4))
    # float32 storage: orthonormal to ~1e-7, far inside this tolerance
    if not cameras.is_rigid(w2c, atol=1e-3):
        raise ClipDataError(f"{where}: a 3x4 pose is not a rotation and translation")
    return Re10kCameras(url, np.asarray(timestamps_us, dtype=np.int64), K_norm, w2c)


@dataclass
class Re10kChunkReader:
    """Clips of one pixelSplat stage folder (``<root>/test``) at ``width`` x ``height``."""

    stage_dir: Path
    width: int
    height: int
    _index: dict[str, str] | None = field(default=None, repr=False)
    _cached: tuple[Path, list] | None = field(default=None, repr=False)

    @property
    def index_path(self) -> Path:
        return Path(self.stage_dir) / "index.json"

    def index(self) -> dict[str, str]:
        if self._index is None:
            try:
                index = json.loads(self.index_path.read_text())
            except (OSError, ValueError) as exc:
                raise ClipDataError(f"cannot read the chunk index {self.index_path}: {exc}") from None
            if not isinstance(index, dict) or not all(isinstance(v, str) for v in index.values()):
                raise ClipDataError(f"{self.index_path}: expected a JSON object {{clip_id: chunk file name}}")
            self._index = index
        return self._index

    def has_clip(self, clip_id: str) -> bool:
        return clip_id in self.index()

    def _chunk(self, path: Path, clip_id: str) -> list:
        if self._cached is not None and self._cached[0] == path:
            return self._cached[1]
        import torch  # noqa: PLC0415  (heavy; only this layout needs it)

        if not path.is_file():
            raise ClipDataError(f"clip {clip_id}: chunk file {path} (named in {self.index_path}) not found")
        try:
            examples = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt or non-weights-only files
            raise ClipDataError(f"clip {clip_id}: cannot load chunk {path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(examples, list):
            raise ClipDataError(f"clip {clip_id}: chunk {path} is not a list of examples")
        self._cached = (path, examples)
        return examples

    def load_clip(self, clip_id: str) -> Clip:
        rel = self.index().get(clip_id)
        if rel is None:
            raise ClipDataError(f"clip {clip_id}: not listed in {self.index_path} (this copy lacks the clip)")
        chunk_path = Path(self.stage_dir) / rel
        examples = self._chunk(chunk_path, clip_id)
        example = next((e for e in examples if isinstance(e, dict) and e.get("key") == clip_id), None)
        if example is None:
            raise ClipDataError(f"clip {clip_id}: {self.index_path} names {chunk_path}, which has no example {clip_id}")
        return self._clip_from_example(clip_id, example, chunk_path)

    def _clip_from_example(self, clip_id: str, example: dict, chunk_path: Path) -> Clip:
        where = f"clip {clip_id} in {chunk_path}"
        missing = [k for k in ("timestamps", "cameras", "images") if k not in example]
        if missing:
            raise ClipDataError(f"{where}: example lacks {', '.join(missing)}")
        cams = cameras_from_vectors(
            np.asarray(example["cameras"]), np.asarray(example["timestamps"]), str(example.get("url", "")), where
        )
        images = list(example["images"])
        if len(images) != len(cams.timestamps_us):
            raise ClipDataError(f"{where}: {len(images)} images for {len(cams.timestamps_us)} cameras")

        def decode(i: int) -> np.ndarray:
            return decode_image_bytes(np.asarray(images[i], dtype=np.uint8).tobytes(), clip_id, f"{i} of {chunk_path}")

        dst_wh = (self.width, self.height)
        K, frame = evaluation_view(cams, decode, lambda i: f"image {i} of {chunk_path}", clip_id, dst_wh)

        return Clip(
            clip_id=clip_id,
            K=K,
            c2w=cams.c2w,
            height=self.height,
            width=self.width,
            source=str(chunk_path),
            layout=f"re10k-pixelsplat-chunks ({chunk_path.name} via {self.index_path})",
            _frame_loader=frame,
            timestamps_us=cams.timestamps_us,
        )


def write_chunk(path: Path, examples: list[dict]) -> None:
    """Write examples as a pixelSplat chunk (for fixtures and conversions)."""
    import torch  # noqa: PLC0415

    torch.save(examples, path)


def make_example(clip_id: str, url: str, timestamps_us, K_norm, w2c, jpeg_bytes: list[bytes]) -> dict:
    """One pixelSplat example from RE10K cameras and encoded frames."""
    import torch  # noqa: PLC0415

    K_norm, w2c = np.asarray(K_norm), np.asarray(w2c)
    vectors = np.concatenate(
        [
            np.stack([K_norm[:, 0, 0], K_norm[:, 1, 1], K_norm[:, 0, 2], K_norm[:, 1, 2]], axis=1),
            np.zeros((len(w2c), 2)),
            w2c[:, :3, :4].reshape(len(w2c), 12),
        ],
        axis=1,
    )
    return {
        "key": clip_id,
        "url": url,
        "timestamps": torch.as_tensor(np.asarray(timestamps_us, dtype=np.int64)),
        "cameras": torch.as_tensor(vectors, dtype=torch.float32),
        "images": [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in jpeg_bytes],
    }
