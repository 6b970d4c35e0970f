"""Time and noise floor of the colmap pose estimator on synthroom's ground truth (issue 17).

    python benchmarks/colmap_speed.py --options '{"mapper": "global", "dedupe": true}' \
        --clips room00,room01 --trajectories dataset,forth-and-back --out rows.json
    python benchmarks/colmap_speed.py --split synthroom-val --clips val00,val01,val02,val03,val04,val05,val06,val07

Tune on synthroom-val; synthroom (the default split) is the evaluation split.

Per clip-trajectory: the wall time of one estimate and the pose errors of the estimate against the ground truth (the
estimator's noise floor); then the median time and the mean errors per trajectory.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gac_bench.poses.colmap import ColmapEstimator
from gac_bench.poses.errors import pose_errors
from gac_bench.splits import get_split
from gac_bench.trajectories import make_trajectory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--options", default="{}", help="ColmapEstimator options as JSON")
    p.add_argument("--split", default="synthroom", help="synthroom (evaluation) or synthroom-val (tuning)")
    p.add_argument("--clips", default=None, help="comma-separated clip ids (default: the split's first 8)")
    p.add_argument("--trajectories", default="dataset,forth-and-back")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    est = ColmapEstimator(**json.loads(args.options))
    split = get_split(args.split)
    specs = {s.clip_id: s for s in split.clips}
    clips = args.clips.split(",") if args.clips else [s.clip_id for s in split.clips[:8]]
    rows = []
    for cid in clips:
        clip = split.load_clip(specs[cid])
        for kind in args.trajectories.split(","):
            traj = make_trajectory(kind, specs[cid].start, specs[cid].stride)
            t0 = time.perf_counter()
            e = est.estimate(clip.frames(traj.source_index), clip.K)
            seconds = time.perf_counter() - t0
            err = pose_errors(clip.c2w[traj.source_index], e.c2w, e.registered)
            rows.append(dict(clip=cid, traj=kind, s=seconds, r=err.r_err_rad, t=err.t_err, reg=int(e.registered.sum()),
                             stages={k: round(v, 3) for k, v in e.info["timing"].items()}))
            print(f"{cid} {kind} {seconds:.1f} s, {rows[-1]['reg']} registered, R_err {err.r_err_rad:.4f} "
                  f"T_err {err.t_err:.4f}", flush=True)  # fmt: skip
    for kind in args.trajectories.split(","):
        sub = [r for r in rows if r["traj"] == kind]
        print(f"{kind}: median {np.median([r['s'] for r in sub]):.1f} s, mean R_err {np.mean([r['r'] for r in sub]):.4f} "
              f"T_err {np.mean([r['t'] for r in sub]):.4f}")  # fmt: skip
    print(f"median over all: {np.median([r['s'] for r in rows]):.1f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
