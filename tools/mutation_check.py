"""Seed realistic bugs into a copy of the project, one at a time, and report which ones the unit tests miss.

    python tools/mutation_check.py [--out results/mutation_report.md] [--only NAME ...]

Each mutation replaces one exact snippet of one module (it must occur exactly once, so a refactor that moves the
code makes the script fail loudly instead of testing nothing), then runs the unit tests that cover that module
in a fresh copy of the repository. A mutation *survives* when those tests still pass. Integration tests are left
out on purpose: a bug should be caught where it is made. Runs in a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


IMAGE = ("tests/test_metrics_image.py",)
LEADER = ("tests/test_leaderboard.py",)
POSES = ("tests/test_poses.py",)
TRAJ = ("tests/test_trajectories.py",)
MASKS = ("tests/test_gac_masks.py",)

MUTATIONS = (
    Mutation("psnr-floor-only-at-zero", "gac_bench/metrics/image.py", ".clamp_min(MSE_FLOOR)",
             ".where(((a - b) ** 2).mean(dim=(1, 2, 3)) > 0, torch.tensor(MSE_FLOOR))", IMAGE,
             "PSNR floor applied only when the MSE is exactly 0 (issue 18)"),
    Mutation("psnr-data-range-255", "gac_bench/metrics/image.py", "torch.log10(1.0 / mse)",
             "torch.log10(255.0**2 / mse)", IMAGE, "PSNR with data range 255 on [0, 1] floats"),
    Mutation("psnr-mean-over-batch", "gac_bench/metrics/image.py", "((a - b) ** 2).mean(dim=(1, 2, 3))",
             "((a - b) ** 2).mean().expand(len(a))", IMAGE, "one MSE for the whole batch instead of per frame"),
    Mutation("ssim-c2-wrong", "gac_bench/metrics/image.py", "(0.03 * data_range) ** 2", "(0.01 * data_range) ** 2",
             IMAGE, "SSIM's C2 constant"),
    Mutation("ssim-zero-pad", "gac_bench/metrics/image.py", 'a = F.pad(a, (pad, pad, pad, pad), mode="reflect")',
             'a = F.pad(a, (pad, pad, pad, pad), mode="constant")', IMAGE, "SSIM padding (torchmetrics reflects)"),
    Mutation("bootstrap-90", "gac_bench/leaderboard.py", "np.percentile(means, [2.5, 97.5])",
             "np.percentile(means, [5.0, 95.0])", LEADER, "a 90% interval called 95% (issue 18)"),
    Mutation("bootstrap-no-replacement", "gac_bench/leaderboard.py",
             "values[rng.integers(0, len(values), size=(resamples, len(values)))]",
             "values[np.argsort(rng.random((resamples, len(values))), axis=1)]", LEADER,
             "resampling without replacement (every mean equals the mean)"),
    Mutation("subset-loop-wrong-frame", "gac_bench/leaderboard.py", '"loop": np.array([n - 1]),',
             '"loop": np.array([n - 2]),', LEADER, "loop closure scored on frame 62"),
    Mutation("subset-forward-from-0", "gac_bench/leaderboard.py", '"forward": np.arange(protocol.scored_from, f),',
             '"forward": np.arange(0, f),', LEADER, "the forward subset includes the input frame 0"),
    Mutation("pose-norm-last-frame", "gac_bench/poses/errors.py", "scale = float(norms.max()) if len(norms) else 0.0",
             "scale = float(norms[-1]) if len(norms) else 0.0", POSES,
             "normalisation by the last registered frame instead of the furthest (issue 18)"),
    Mutation("pose-rotation-transposed", "gac_bench/poses/errors.py",
             "return geodesic_angle_rad(np.broadcast_to(np.eye(3), R.shape), R)",
             "return geodesic_angle_rad(np.broadcast_to(np.eye(3), R.shape), R) * 0.5", POSES,
             "half the rotation angle"),
    Mutation("fab-no-mirror", "gac_bench/trajectories.py", "return np.concatenate([fwd, fwd[::-1]])",
             "return np.concatenate([fwd, fwd])", TRAJ, "forth-and-back repeats instead of returning"),
    Mutation("fab-off-by-one", "gac_bench/trajectories.py", "return np.concatenate([fwd, fwd[::-1]])",
             "return np.concatenate([fwd, np.minimum(fwd[::-1] + 1, forward - 1)])", TRAJ,
             "return frames shifted by one pose"),
    Mutation("traj-stride-ignored", "gac_bench/trajectories.py", "source_index=start + stride * offsets",
             "source_index=start + offsets", TRAJ, "the split's stride ignored"),
    Mutation("mask-strict-causal", "gac/masks.py", "earlier = kv_idx <= q_idx", "earlier = kv_idx < q_idx", MASKS,
             "a text token cannot see itself (issue 18)"),
    Mutation("mask-noise-visible", "gac/masks.py", "hidden_noise = (split_mode[kv_idx] == NOISE) & ~same_split",
             "hidden_noise = (split_mode[kv_idx] == NOISE) & ~same_split & (split_mode[q_idx] == NOISE)", MASKS,
             "clean tokens see noisy copies of other items"),
    Mutation("mask-samples-mix", "gac/masks.py", "ok = ok & (sample_id[q_idx] == sample_id[kv_idx])", "ok = ok",
             MASKS, "packed samples see each other"),
    Mutation("mask-full-causal", "gac/masks.py", "bidirectional = same_split & (split_mode[q_idx] != CAUSAL)",
             "bidirectional = same_split & (split_mode[q_idx] == NOISE)", MASKS,
             "clean items causal inside instead of bidirectional"),
)


def apply(root: Path, m: Mutation) -> None:
    path = root / m.path
    text = path.read_text()
    count = text.count(m.old)
    if count != 1:
        raise SystemExit(f"mutation {m.name}: the snippet occurs {count} times in {m.path}; update tools/mutation_check.py")
    path.write_text(text.replace(m.old, m.new))


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, float]:
    """pytest's exit status (0 passed, 1 a test failed, other: the run itself broke) and the seconds it took."""
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(root)}  # the mutated copy, not an editable install of the original
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=root, capture_output=True, text=True, timeout=900, env=env)  # fmt: skip
    return proc.returncode, time.perf_counter() - t0


def copy_repo(dst: Path) -> None:
    for name in ("gac_bench", "gac", "baselines", "tests", "splits", "results", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "weights"))
        else:
            shutil.copy(src, dst / name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "mutation_report.md"))
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "clean"
        copy_repo(base)
        rc, _ = run_tests(base, tuple(sorted({t for m in chosen for t in m.tests})))
        if rc != 0:
            print("mutation_check: the unmutated tests fail; fix them first", file=sys.stderr)
            return 2
        for m in chosen:
            work = Path(tmp) / m.name
            shutil.copytree(base, work)
            apply(work, m)
            rc, seconds = run_tests(work, m.tests)
            if rc not in (0, 1):  # a mutation that breaks collection proves nothing about the tests
                raise SystemExit(f"mutation {m.name}: pytest exited {rc} (not a test failure); fix the mutation")
            survived = rc == 0
            rows.append((m, survived, seconds))
            print(f"{'SURVIVED' if survived else 'killed  '} {m.name:28s} {seconds:5.1f} s  {m.why}", flush=True)
            shutil.rmtree(work)
    survivors = [m for m, s, _ in rows if s]
    lines = ["# Mutation check", "", f"`python tools/mutation_check.py`: {len(rows)} seeded bugs, "
             f"{len(rows) - len(survivors)} killed by unit tests, {len(survivors)} survived.", "",
             "| mutation | module | tests run | result | the bug |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for m, s, sec in rows:
        lines.append(f"| {m.name} | `{m.path}` | {', '.join(f'`{t}`' for t in m.tests)} | "
                     f"{'**survived**' if s else 'killed'} ({sec:.0f} s) | {m.why} |")  # fmt: skip
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
