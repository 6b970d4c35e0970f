"""Speed/quality points of the shipped synthroom GaC (issue 14, items 1-3), on the GPU machine.

    python benchmarks/gac_sampling_points.py --runs-dir /tmp/gs/runs --out gac_sampling_points.json [--jobs 4]

1. ``tune``: the timestep shift for 12, 20 and 32 steps, chosen by PSNR on held-out ``synthroom-val`` rooms
   (val00-val02, dataset trajectory), never on ``synthroom``.
2. ``score``: the harness on ``synthroom`` (both trajectories) for: the layered CGA (``fold_cga=false``, the code
   before issue 14), the folded default, FP8 GEMMs, and 32/20/12 steps at the default shift and at the tuned one.
3. ``compare``: per-frame PSNR of the folded and of the FP8 frames against the layered ones.

Every run is one ``gac-bench run`` process (argument lists, no shell), ``--jobs`` at a time on the one GPU, so the
seconds per view they record are measured under sharing. Writes one JSON with the choices, every run's leaderboard
cells and the frame comparisons (``results/gac/sampling_points.md`` reports them). ``--base-steps 0`` skips the
layered/folded/FP8 runs (the step table alone, e.g. on a CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from gac_bench.leaderboard import clip_values, read_method_records

CLI = "import baselines.identity, baselines.depth_warp, gac.method; from gac_bench.cli import main; main()"
TUNE_ROOMS = "val00,val01,val02"
STEPS = (32, 20, 12)
SHIFTS = (1.0, 3.0, 6.0)
DEFAULT_SHIFT = 3.0
TRAJECTORIES = ("dataset", "forth-and-back")


def run(args_list: list[str], log: Path) -> int:
    with open(log, "w") as f:
        return subprocess.run([sys.executable, "-c", CLI, *args_list], stdout=f, stderr=subprocess.STDOUT).returncode


def gac_run(name: str, options: dict, split: str, clips: str | None, trajectory: str, runs_dir: Path,
            estimator: str, logs: Path) -> tuple[str, int, float]:  # fmt: skip
    argv = ["run", "--method", "gac", "--name", name, "--split", split, "--trajectory", trajectory,
            "--runs-dir", str(runs_dir), "--estimator", estimator, "--no-progress"]  # fmt: skip
    if clips:
        argv += ["--clips", clips]
    for k, v in options.items():
        argv += ["--option", f"{k}={v}"]
    t0 = time.time()
    rc = run(argv, logs / f"{name}_{split}_{trajectory}.log")
    seconds = time.time() - t0
    print(f"{name} {split} {trajectory}: rc {rc}, {seconds:.0f} s", flush=True)
    return name, rc, seconds


def psnr_by_clip(runs_dir: Path, split: str, trajectory: str, name: str) -> dict[str, float]:
    """Mean PSNR per clip, from the run's records (the harness's own numbers)."""
    folder = runs_dir / split / trajectory / name
    if not folder.is_dir():
        return {}
    return clip_values(read_method_records(folder), "psnr", trajectory)[0]


def frame_psnr(a: Path, b: Path) -> float:
    x = np.asarray(Image.open(a), dtype=np.float64)
    y = np.asarray(Image.open(b), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def compare_frames(runs_dir: Path, trajectory: str, name: str, against: str) -> dict:
    """Per-frame PSNR of ``name``'s frames against ``against``'s, over every clip of synthroom (frames 1..N-1)."""
    values = []
    folder = runs_dir / "synthroom" / trajectory / against
    for clip_dir in sorted(folder.iterdir() if folder.is_dir() else []):
        frames = sorted((clip_dir / "frames").glob("*.png"))[1:]
        for f in frames:
            other = runs_dir / "synthroom" / trajectory / name / clip_dir.name / "frames" / f.name
            if other.exists():
                values.append(frame_psnr(other, f))
    finite = [v for v in values if np.isfinite(v)]
    return {"frames": len(values), "identical_frames": len(values) - len(finite),
            "min_db": min(finite) if finite else None, "median_db": float(np.median(finite)) if finite else None}


def leaderboard(runs_dir: Path, logs: Path) -> dict:
    run(["table", "--runs-dir", str(runs_dir)], logs / "table.log")
    path = runs_dir / "leaderboard.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--estimator", default="none", help="pose estimator of the synthroom runs")
    p.add_argument("--steps", default=",".join(map(str, STEPS)), help="reduced step counts, e.g. 32,20,12")
    p.add_argument("--shifts", default=",".join(f"{s:g}" for s in SHIFTS))
    p.add_argument("--score-clips", default=None, help="synthroom rooms to score (default: all 8)")
    p.add_argument("--tune-rooms", default=TUNE_ROOMS)
    p.add_argument("--trajectories", default=",".join(TRAJECTORIES), help="of the synthroom runs")
    p.add_argument("--base-steps", type=int, default=50,
                   help="steps of the layered/folded/FP8 runs (smoke: 2; 0: skip them)")
    args = p.parse_args()
    steps_list = [int(n) for n in args.steps.split(",")]
    shifts = [float(s) for s in args.shifts.split(",")]
    logs = args.runs_dir.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict = {"steps": steps_list, "shifts": shifts, "tune_rooms": args.tune_rooms,
                    "base_steps": args.base_steps}

    # 1. the shift per step count, on held-out rooms
    tune = [(f"gac-s{n}-shift{s:g}", {"steps": n, "shift": s}) for n in steps_list for s in shifts]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda r: gac_run(r[0], r[1], "synthroom-val", args.tune_rooms, "dataset", args.runs_dir,
                                        "none", logs), tune))  # fmt: skip
    chosen = {}
    for n in steps_list:
        mean = {s: np.mean(list(psnr_by_clip(args.runs_dir, "synthroom-val", "dataset", f"gac-s{n}-shift{s:g}")
                                .values()) or [np.nan]) for s in shifts}  # fmt: skip
        best = max((s for s in shifts if np.isfinite(mean[s])), key=lambda s: mean[s], default=DEFAULT_SHIFT)
        chosen[n] = {"shift": best, "val_psnr_by_shift": {f"{s:g}": float(mean[s]) for s in shifts}}
    result["tuned"] = chosen
    print("tuned shifts:", {n: c["shift"] for n, c in chosen.items()}, flush=True)

    # 2. the harness on synthroom
    base = {"steps": args.base_steps}
    runs = [("gac-layered", {**base, "fold_cga": "false"}), ("gac-folded", base), ("gac-fp8", {**base, "fp8": "true"})]
    with_base = args.base_steps > 0
    runs = runs if with_base else []
    for n in steps_list:
        runs.append((f"gac-s{n}", {"steps": n}))
        if chosen[n]["shift"] != DEFAULT_SHIFT:
            runs.append((f"gac-s{n}-shift{chosen[n]['shift']:g}", {"steps": n, "shift": chosen[n]["shift"]}))
    trajectories = args.trajectories.split(",")
    jobs = [(name, opts, traj) for name, opts in runs for traj in trajectories]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda r: gac_run(r[0], r[1], "synthroom", args.score_clips, r[2], args.runs_dir,
                                               args.estimator, logs), jobs))  # fmt: skip
    result["runs"] = [{"name": n, "rc": rc, "seconds": round(s, 1)} for n, rc, s in done]

    # 3. frames against the layered implementation
    result["frames_vs_layered"] = {
        f"{name}/{traj}": compare_frames(args.runs_dir, traj, name, "gac-layered")
        for name in ("gac-folded", "gac-fp8") for traj in trajectories if with_base
    }
    result["leaderboard"] = leaderboard(args.runs_dir, logs)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["frames_vs_layered"], indent=1))
    return 0 if all(r["rc"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
