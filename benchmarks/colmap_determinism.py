"""Repeat the colmap estimator on one clip and report the largest c2w difference between runs, and the time per run.

    python benchmarks/colmap_determinism.py --threads 1 --runs 20

The clip is the 12-frame textured room of tests/test_poses_colmap.py (rendered here, no data needed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.test_poses_colmap as scene  # noqa: E402
from gac_bench.poses import get_estimator  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=8)
    args = p.parse_args()
    room = scene.make_room()
    frames = np.stack([scene.render(room, c) for c in scene.camera_path(scene.N)])
    t0 = time.perf_counter()
    runs = [get_estimator("colmap", num_threads=args.threads).estimate(frames, scene.K).c2w for _ in range(args.runs)]
    per_run = (time.perf_counter() - t0) / args.runs
    diffs = [float(np.abs(c2w - runs[0]).max()) for c2w in runs[1:]]
    print(f"threads {args.threads}: {per_run:.2f} s per run, {sum(d > 0 for d in diffs)} of {len(diffs)} repeats "
          f"differ from the first (max |diff| {max(diffs, default=0.0):.3g})")


if __name__ == "__main__":
    main()
