#!/usr/bin/env python
"""Derive the committed split files ``splits/re10k-test-150.csv`` and ``splits/tanks-150.csv``.

    python tools/make_splits.py                    # write both files
    python tools/make_splits.py --check            # exit 1 if a committed file differs from its derivation
    python tools/make_splits.py --shared-data DIR  # where the DepthSplat list lives (default ../shared/data)

Both rules rank with SHA-256 of ``"<salt>|<label>|<value>"`` (UTF-8, hex digest compared as a string), never
with an RNG, so they give the same result on every machine and Python version.

re10k-test-150 (salt ``gac-bench:re10k-test-150:v1``)
    1. Population: the 1,600 RealEstate10K test clip ids of DepthSplat's ``assets/re10k_ctx_6v_video.json``
       (cvg/depthsplat, sha256 below). Each entry's ``target`` is ``0..N-1``, which gives the clip length N.
    2. Keep clips with N >= 190, the frames a 64-frame trajectory with stride 3 needs from start 0.
    3. Sort by ``sha256(salt|rank|<id>)`` and keep the first 150, in that order.
    4. start = int(sha256(salt|start|<id>), 16) mod (N - 190 + 1), so the segment always fits; stride = 3.

tanks-150 (salt ``gac-bench:tanks-150:v1``)
    1. The 21 scenes of the Tanks-and-Temples toolbox (gac_bench.datasets.tanks.SCENES).
    2. 150 = 21 x 7 + 3: every scene gets 7 segments; the 3 scenes first in ``sha256(salt|extra|<scene>)``
       order get an 8th.
    3. Segments use stride 1 and lie in the first 150 images of the scene's image list (natural name order):
       a scene with n segments starts them at round_half_up(k * 86 / (n - 1)), k = 0..n-1, where
       86 = 150 - 64. Every clip therefore needs at most 150 images in its scene's list.
    4. Clip id = ``<Scene>-<start, 4 digits>``; file order = scene order, then start.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gac_bench.datasets.tanks import SCENES  # noqa: E402
from gac_bench.split_files import format_split_file, split_file_path, tanks_clip_id  # noqa: E402
from gac_bench.splits import ClipSpec  # noqa: E402
from gac_bench.trajectories import source_frames_needed  # noqa: E402

SPLIT_SIZE = 150

RE10K_SALT = "gac-bench:re10k-test-150:v1"
RE10K_STRIDE = 3
DEPTHSPLAT_LIST = "re10k_test_depthsplat_ctx_6v_video_ge200frames.json"
DEPTHSPLAT_SHA256 = "7098ee1a514a7635fbc9f995b2167ea3e75f14157d51c0da76093636f11f8ac6"
DEPTHSPLAT_SOURCE = (
    "cvg/depthsplat assets/re10k_ctx_6v_video.json (commit 2dad25a7be, git blob 2a7afdbe9d, "
    f"sha256 {DEPTHSPLAT_SHA256}; MIT, Copyright 2024 Haofei Xu)"
)

TANKS_SALT = "gac-bench:tanks-150:v1"
TANKS_STRIDE = 1
TANKS_IMAGES_USED = 150  # segments lie within the first 150 images of each scene's list
TANKS_SCENES_CSV = "tanks_and_temples_scenes.csv"


def hash_key(salt: str, label: str, value: str) -> str:
    return hashlib.sha256(f"{salt}|{label}|{value}".encode("utf-8")).hexdigest()


def default_shared_data() -> Path:
    return REPO.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------- re10k


def read_depthsplat_lengths(path: Path) -> dict[str, int]:
    """Clip id -> length N from the DepthSplat list, after checking it is the expected file."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DEPTHSPLAT_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the DepthSplat list this split was made from")
    lengths = {}
    for clip_id, entry in json.loads(data).items():
        target = entry["target"]
        if target != list(range(len(target))):
            raise SystemExit(f"{path}: entry {clip_id} has a target that is not 0..N-1")
        lengths[clip_id] = len(target)
    return lengths


def derive_re10k_test_150(lengths: dict[str, int]) -> list[ClipSpec]:
    needed = source_frames_needed(0, RE10K_STRIDE)
    eligible = [cid for cid, n in lengths.items() if n >= needed]
    ranked = sorted(eligible, key=lambda cid: hash_key(RE10K_SALT, "rank", cid))[:SPLIT_SIZE]
    clips = []
    for cid in ranked:
        n = lengths[cid]
        start = int(hash_key(RE10K_SALT, "start", cid), 16) % (n - needed + 1)
        clips.append(ClipSpec(cid, start=start, stride=RE10K_STRIDE, length=n))
    return clips


def re10k_text(lengths: dict[str, int]) -> str:
    needed = source_frames_needed(0, RE10K_STRIDE)
    header = {
        "dataset": "RealEstate10K, official test split (clip id = stem of RealEstate10K/test/<id>.txt; "
        "CC BY 4.0, Google LLC)",
        "protocol": "paper-v1: 64 frames, dataset-trajectory frame i = source frame start + i*stride; "
        "reference = frame 0",
        "eval-resolution": "640x352 (resize to cover, centre crop; K updated)",
        "made-by": "python tools/make_splits.py (rule re10k-hash-rank/1)",
        "population": DEPTHSPLAT_SOURCE,
        "salt": RE10K_SALT,
    }
    comments = [
        "Rule (h(label, v) = SHA-256 hex digest of '<salt>|<label>|<v>', UTF-8):",
        f"1. population: the {len(lengths)} ids of the DepthSplat list; length N = len(target) (target = 0..N-1).",
        f"2. keep N >= {needed} (64 frames at stride {RE10K_STRIDE} from start 0).",
        f"3. sort by h('rank', id) ascending; keep the first {SPLIT_SIZE}, in that order.",
        f"4. start = int(h('start', id), 16) mod (N - {needed} + 1); stride = {RE10K_STRIDE}; length = N.",
        "Frame indices count the lines of the clip's camera file (= rows of a pixelSplat example).",
    ]
    return format_split_file("re10k-test-150", header, comments, derive_re10k_test_150(lengths))


# ---------------------------------------------------------------------------------------------- tanks


def check_tanks_scenes(csv_path: Path) -> None:
    """The embedded scene list must be the CSV's, in the same order."""
    with open(csv_path, newline="") as f:
        rows = [(r["scene"], r["group"]) for r in csv.DictReader(f)]
    if rows != list(SCENES.items()):
        raise SystemExit(f"{csv_path}: scene list differs from gac_bench.datasets.tanks.SCENES")


def tanks_starts(num_segments: int) -> list[int]:
    max_start = TANKS_IMAGES_USED - source_frames_needed(0, TANKS_STRIDE)
    d = num_segments - 1
    return [(2 * k * max_start + d) // (2 * d) for k in range(num_segments)]  # round half up, integers only


def derive_tanks_150() -> list[ClipSpec]:
    scenes = list(SCENES)
    base, extra = divmod(SPLIT_SIZE, len(scenes))
    extra_scenes = set(sorted(scenes, key=lambda s: hash_key(TANKS_SALT, "extra", s))[:extra])
    clips = []
    for scene in scenes:
        for start in tanks_starts(base + (scene in extra_scenes)):
            clips.append(ClipSpec(tanks_clip_id(scene, start), start=start, stride=TANKS_STRIDE, scene=scene))
    return clips


def tanks_text() -> str:
    clips = derive_tanks_150()
    counts = {s: sum(c.scene == s for c in clips) for s in SCENES}
    extra_scenes = [s for s in SCENES if counts[s] > SPLIT_SIZE // len(SCENES)]
    max_start = TANKS_IMAGES_USED - source_frames_needed(0, TANKS_STRIDE)
    header = {
        "dataset": "Tanks-and-Temples, 21 scenes (training, intermediate, advanced); images + COLMAP model per scene",
        "protocol": "paper-v1: 64 frames, dataset-trajectory frame i = image start + i*stride of the scene's list",
        "eval-resolution": "640x352 (resize the short side to cover, centre crop; K updated)",
        "made-by": "python tools/make_splits.py (rule tanks-even-segments/1)",
        "image-list": "image files directly in <scene>/images (.jpg/.jpeg/.png), natural name order "
        "(digit runs compare as numbers)",
        "min-images": f"{TANKS_IMAGES_USED} per scene (a clip whose images are missing fails with an error)",
        "salt": TANKS_SALT,
    }
    comments = [
        "Rule (h(label, v) = SHA-256 hex digest of '<salt>|<label>|<v>', UTF-8):",
        f"1. scenes: the 21 of the T&T toolbox; each gets {SPLIT_SIZE // len(SCENES)} segments, and the "
        f"{SPLIT_SIZE % len(SCENES)} first in h('extra', scene) order get one more: {', '.join(extra_scenes)}.",
        f"2. stride {TANKS_STRIDE}; a scene with n segments starts them at round_half_up(k * {max_start} / (n - 1)), "
        f"k = 0..n-1 ({max_start} = {TANKS_IMAGES_USED} - 64).",
        "3. clip id = <Scene>-<start, 4 digits>; poses come from the scene's COLMAP model, which must register",
        "   every image of a segment.",
    ]
    return format_split_file("tanks-150", header, comments, clips)


# ---------------------------------------------------------------------------------------------- main


def derived_texts(shared_data: Path) -> dict[str, str]:
    texts = {"re10k-test-150": re10k_text(read_depthsplat_lengths(shared_data / DEPTHSPLAT_LIST))}
    if (shared_data / TANKS_SCENES_CSV).is_file():
        check_tanks_scenes(shared_data / TANKS_SCENES_CSV)
    texts["tanks-150"] = tanks_text()
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=default_shared_data())
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args(argv)
    status = 0
    for name, text in derived_texts(args.shared_data).items():
        path = split_file_path(name)
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{name}: {'matches' if same else 'DIFFERS from'} {path}")
            status |= 0 if same else 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
