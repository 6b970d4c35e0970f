"""Render synthroom clips to disk in the RealEstate10K raw layout.

::

    <root>/cameras/<clip_id>.txt                  URL line + one 19-number line per frame (re10k.write_camera_file)
    <root>/frames/<clip_id>/<timestamp_us>.png    lossless uint8 RGB
    <root>/depth/<clip_id>/<timestamp_us>.npy     float32 z-depth in world units (np.save, no pickle)
    <root>/manifest.json                          written last: its presence marks a complete tree

Frames are rendered in chunks by a pool of worker processes (spawned, so the parent's threads and
libraries never leak into them). Every frame is a pure function of (config, clip, frame index), so the
output bytes do not depend on the number of workers or on the order chunks finish.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench.cameras import invert_rigid
from gac_bench.datasets.re10k import write_camera_file
from gac_bench.datasets.synthroom.camera_path import FPS, MOTION_KINDS, intrinsics, make_camera_path
from gac_bench.datasets.synthroom.raycast import render_view
from gac_bench.datasets.synthroom.layout import make_scene
from gac_bench.datasets.synthroom.scene import Scene
from gac_bench.datasets.synthroom.textures import texture_atlas
from gac_bench.host import available_cores

GENERATOR = "gac_bench.datasets.synthroom"
CHUNK_FRAMES = 25
PNG_COMPRESS_LEVEL = 1  # level 6 triples the encode time for 5% smaller files; zlib output is deterministic


@dataclass(frozen=True)
class SynthroomConfig:
    seed: int = 0
    num_clips: int = 8
    num_frames: int = 200
    width: int = 256
    height: int = 144
    prefix: str = "room"
    """Clip ids are ``<prefix><index>``: ``room00`` for the evaluation split, ``train000`` / ``val00`` for the
    GaC training and validation rooms (other seeds), so an id alone says which set a clip belongs to."""

    @property
    def clip_ids(self) -> tuple[str, ...]:
        digits = max(2, len(str(self.num_clips - 1)))
        return tuple(f"{self.prefix}{i:0{digits}d}" for i in range(self.num_clips))

    def manifest_core(self, version: str) -> dict:
        """The fields that must match for a tree on disk to be reused."""
        fields = asdict(self)
        if fields["prefix"] == "room":  # manifests written before the prefix existed stay valid
            del fields["prefix"]
        return {"generator": GENERATOR, "version": version, **fields, "fps": FPS, "clip_ids": list(self.clip_ids)}


def timestamps_us(num_frames: int) -> np.ndarray:
    return np.array([round(i * 1e6 / FPS) for i in range(num_frames)], dtype=np.int64)


def clip_seed(seed: int, clip_index: int) -> int:
    """Independent seed of clip ``clip_index`` of the split drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, clip_index]).generate_state(1)[0])


@lru_cache(maxsize=4)
def clip_setup(cfg: SynthroomConfig, clip_index: int) -> tuple[Scene, np.ndarray, np.ndarray]:
    """(scene, c2w (num_frames, 4, 4), K) of one clip; cycling the motion kinds keeps every split varied."""
    s = clip_seed(cfg.seed, clip_index)
    scene = make_scene(s, name=cfg.clip_ids[clip_index])
    kind = MOTION_KINDS[clip_index % len(MOTION_KINDS)]
    c2w, K = make_camera_path(scene, cfg.num_frames, s, cfg.width, cfg.height, kind=kind)
    return scene, c2w, K


def clip_url(cfg: SynthroomConfig, version: str, clip_id: str) -> str:
    return f"synthroom://v{version}/seed={cfg.seed}/{clip_id}"


def write_cameras(cfg: SynthroomConfig, version: str, root: Path, clip_index: int) -> Path:
    _, c2w, _ = clip_setup(cfg, clip_index)
    K_norm, _ = intrinsics(cfg.width, cfg.height)
    clip_id = cfg.clip_ids[clip_index]
    path = root / "cameras" / f"{clip_id}.txt"
    K_norms = np.repeat(K_norm[None], len(c2w), axis=0)
    write_camera_file(path, clip_url(cfg, version, clip_id), timestamps_us(cfg.num_frames), K_norms, invert_rigid(c2w))
    return path


def render_chunk(cfg: SynthroomConfig, version: str, root: Path, clip_index: int, start: int, stop: int) -> int:
    """Render frames [start, stop) of one clip into ``root``; the first chunk also writes the camera file."""
    scene, c2w, K = clip_setup(cfg, clip_index)
    clip_id = cfg.clip_ids[clip_index]
    if start == 0:
        write_cameras(cfg, version, root, clip_index)
    stamps = timestamps_us(cfg.num_frames)
    for i in range(start, stop):
        rgb, depth_z = render_view(scene, K, c2w[i], cfg.height, cfg.width)
        frame_path = root / "frames" / clip_id / f"{stamps[i]}.png"
        Image.fromarray(rgb).save(frame_path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        np.save(root / "depth" / clip_id / f"{stamps[i]}.npy", depth_z, allow_pickle=False)
    return stop - start


def _worker_init() -> None:
    """Keep freed numpy temporaries in the heap instead of returning them to the OS after every frame.

    Without this, glibc unmaps and re-faults the ~50 MB of per-frame temporaries, which doubles the render
    time (half of it in page faults). Only done in our own worker processes, never in the caller's, and
    after the texture atlas is built so the heap does not keep that one-off peak.
    """
    texture_atlas()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
            libc.mallopt(m_mmap_threshold, 1 << 30)
            libc.mallopt(m_trim_threshold, (1 << 31) - 1)
            libc.mallopt(m_top_pad, 64 << 20)
        except (OSError, AttributeError):
            pass


def _chunks(cfg: SynthroomConfig) -> list[tuple[int, int, int]]:
    starts = range(0, cfg.num_frames, CHUNK_FRAMES)
    return [(c, a, min(a + CHUNK_FRAMES, cfg.num_frames)) for c in range(cfg.num_clips) for a in starts]


def default_workers(cfg: SynthroomConfig) -> int:
    """One render process per available core (the GPU hosts have 16-32), never more than there are chunks."""
    return max(1, min(available_cores(), len(_chunks(cfg))))


def render_tree(cfg: SynthroomConfig, version: str, root: Path, progress: bool, workers: int | None = None) -> None:
    """Render every clip into ``root`` (frames, depth, cameras); ``workers=0`` renders in this process."""
    root = Path(root)
    for sub in ("frames", "depth"):
        for clip_id in cfg.clip_ids:
            (root / sub / clip_id).mkdir(parents=True, exist_ok=True)
    (root / "cameras").mkdir(parents=True, exist_ok=True)
    chunks = _chunks(cfg)
    workers = default_workers(cfg) if workers is None else workers
    bar = _progress_bar(cfg, progress)
    try:
        if workers == 0:
            for c, a, b in chunks:
                bar.update(render_chunk(cfg, version, root, c, a, b))
            return
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            futures = [pool.submit(render_chunk, cfg, version, root, c, a, b) for c, a, b in chunks]
            for future in futures:
                bar.update(future.result())
    finally:
        bar.close()


def _progress_bar(cfg: SynthroomConfig, progress: bool):
    from tqdm.auto import tqdm

    total = cfg.num_clips * cfg.num_frames
    return tqdm(total=total, desc="rendering synthroom", unit="frame", disable=not progress, file=sys.stderr)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(cfg: SynthroomConfig, version: str, root: Path) -> Path:
    """Written last and atomically (temp file + rename): a tree is complete iff its manifest exists."""
    manifest = {
        **cfg.manifest_core(version),
        "layout": "re10k-raw: cameras/<id>.txt, frames/<id>/<timestamp_us>.png, depth/<id>/<timestamp_us>.npy",
        "depth": "float32 z-depth along the optical axis, world units (metres), at pixel centres",
        "world": "right-handed, z up, floor at z = 0; poses are OpenCV camera-to-world",
        "camera_sha256": {cid: sha256_file(root / "cameras" / f"{cid}.txt") for cid in cfg.clip_ids},
    }
    path = Path(root) / "manifest.json"
    tmp = path.with_name(f".manifest.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((Path(root) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def is_complete(root: Path, cfg: SynthroomConfig, version: str) -> bool:
    """True when ``root`` holds a finished render of ``cfg``: manifest matches, files present and unchanged."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None or {k: manifest.get(k) for k in cfg.manifest_core(version)} != cfg.manifest_core(version):
        return False
    for clip_id in cfg.clip_ids:
        camera = root / "cameras" / f"{clip_id}.txt"
        if not camera.is_file() or sha256_file(camera) != manifest.get("camera_sha256", {}).get(clip_id):
            return False
        for sub, suffix in (("frames", ".png"), ("depth", ".npy")):
            folder = root / sub / clip_id
            if not folder.is_dir() or sum(1 for p in os.scandir(folder) if p.name.endswith(suffix)) != cfg.num_frames:
                return False
    return True


def scene_fingerprint(scene: Scene) -> str:
    """sha256 of everything that defines a scene's geometry and appearance (its name excluded): two rooms with
    the same fingerprint render identically from every camera."""
    content = repr((scene.cells, scene.portals, scene.solids, scene.materials, scene.lights))
    return hashlib.sha256(content.encode()).hexdigest()


def set_fingerprints(cfg: SynthroomConfig) -> dict[str, str]:
    """Scene fingerprint of every clip of a room set, by clip id (builds the scenes, renders nothing)."""
    return {cid: scene_fingerprint(make_scene(clip_seed(cfg.seed, i))) for i, cid in enumerate(cfg.clip_ids)}
