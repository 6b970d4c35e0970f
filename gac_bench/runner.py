"""The runner: generate what is missing, score what is unscored, one clip at a time, resumable.

For every (clip, trajectory) of the selected split the runner
  1. reuses ``generation.json`` + ``frames/`` when they are valid for this method version, options, seed and
     trajectory; otherwise loads the clip, calls ``method.generate`` and checks what comes back;
  2. reuses ``metrics.json`` when it was computed from this generation by the same metric suite; otherwise
     scores the frames against the ground truth.
A failure at any stage (bad data, a method that raises or returns the wrong shape, a metric that breaks) is
written as that clip's record and the run goes on; killing the run loses at most the clip in flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gac_bench import __version__, records
from gac_bench.api import GenerationDeferred, GenerationRequest, Method, MethodUnavailable
from gac_bench.datasets.clip import Clip
from gac_bench.protocol import PAPER_V1, Protocol
from gac_bench.registry import get_method_class
from gac_bench.scoring import Scorer
from gac_bench.splits import ClipSpec, Split, get_split
from gac_bench.trajectories import Trajectory, make_trajectory
from gac_bench.weights import file_sha256

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    split: str = "synthroom"
    trajectories: tuple[str, ...] = PAPER_V1.trajectories
    data_root: Path | None = None
    runs_dir: Path = Path("runs")
    limit: int | None = None
    shard: tuple[int, int] | None = None
    clips: tuple[str, ...] | None = None
    device: str = "auto"
    seed: int = 0
    retry_failed: bool = True
    progress: bool = True
    protocol: Protocol = PAPER_V1
    estimator: str = "auto"  # pose estimator: auto (the split's default), colmap, vggt, or none
    timeout_s: float | None = None  # per clip-trajectory generation; None: no limit


@dataclass
class ClipOutcome:
    clip_id: str
    trajectory: str
    status: str  # "ok", "failed" or "deferred"
    generated: bool = False  # generated in this run (False: reused)
    scored: bool = False
    error: str | None = None


@dataclass
class MethodRun:
    method: str
    outcomes: list[ClipOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[ClipOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


class ClipTimeout(Exception):
    """A method's generate() ran past the per-clip time limit."""


@contextlib.contextmanager
def clip_timeout(seconds: float | None, clip_id: str):
    """Raise :class:`ClipTimeout` inside the block after ``seconds`` (SIGALRM; main thread on Unix only, where a
    hanging Python-level generate() is interrupted; elsewhere the limit is not enforced and says so once)."""
    if not seconds:
        yield
        return
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        log.warning("--timeout is enforced only in the main thread on Unix; running clip %s without it", clip_id)
        yield
        return

    def on_alarm(signum, frame):
        raise ClipTimeout(f"generation of clip {clip_id} exceeded --timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def shard_from_env() -> tuple[int, int] | None:
    """Under torchrun every rank takes its own shard of clips."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]) + 1, int(os.environ["WORLD_SIZE"])
    return None


def method_dirname(name: str) -> str:
    """A method name as a folder name (``pkg.mod:Class`` specs contain ':')."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def clip_seed(seed: int, clip_id: str) -> int:
    """A per-clip seed that does not depend on the clip's position (shards and limits give the same seeds)."""
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def select_clips(split: Split, opts: RunOptions) -> list[ClipSpec]:
    clips = split.clips
    if opts.clips:
        wanted = set(opts.clips)
        unknown = sorted(wanted - {c.clip_id for c in clips})
        if unknown:
            raise KeyError(f"clip(s) not in split {split.name}: {', '.join(unknown)}")
        clips = [c for c in clips if c.clip_id in wanted]
    split_view = dataclasses.replace(split, clips=clips)
    return split_view.select(opts.limit, opts.shard or shard_from_env())


# ---------------------------------------------------------------------------------------------- generation


def check_generated(frames: object, request: GenerationRequest) -> np.ndarray:
    """The method's output as uint8 (N, H, W, 3), or ValueError saying what is wrong with it."""
    expected = (request.num_frames, request.height, request.width, 3)
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"method returned {type(frames).__name__}, expected a numpy uint8 array {expected}")
    if frames.dtype != np.uint8:
        nan = " and contains NaN" if np.issubdtype(frames.dtype, np.floating) and np.isnan(frames).any() else ""
        raise ValueError(f"method returned dtype {frames.dtype}{nan}; expected uint8 {expected}")
    if frames.shape != expected:
        raise ValueError(f"method returned shape {frames.shape}, expected {expected}")
    return frames


# Metrics whose failure fails the clip. A pose estimator that cannot reconstruct a method's frames is a result of
# the method (recorded in the pose columns), not a failure of the run.
REQUIRED_METRICS = ("psnr", "ssim", "lpips", "fid")


def failed_metrics(metrics: dict | None) -> dict[str, str]:
    """{metric: error} of the required metrics that failed in a metrics record."""
    if not metrics:
        return {}
    entries = metrics.get("metrics") or {}
    return {k: str(v.get("error")) for k, v in entries.items() if k in REQUIRED_METRICS and v.get("status") == "failed"}


def build_request(clip: Clip, traj: Trajectory, method_cls: type[Method], seed: int, scratch: Path, trajectory: str,
                  report_progress: Callable[[int, int], None] | None = None):  # fmt: skip
    c2w = clip.c2w[traj.source_index]
    depth = clip.depth(int(traj.source_index[0])) if (method_cls.uses_dataset_depth and clip.has_depth) else None
    return GenerationRequest(
        clip_id=clip.clip_id,
        reference_image=clip.frame(int(traj.source_index[0])),
        K=clip.K.copy(),
        c2w=c2w,
        height=clip.height,
        width=clip.width,
        seed=seed,
        trajectory=trajectory,
        scratch_dir=scratch,
        reference_depth=depth,
        report_progress=report_progress,
    )


def generation_key(method: Method, traj: Trajectory, seed: int, protocol: Protocol, weights: dict | None = None) -> dict:
    """Everything that must match for stored frames to be reused: protocol, method version, options, seed, the
    trajectory, and the content hash of every weight file the method reads."""
    return {
        "protocol": protocol.name,
        "method_version": type(method).version,
        "options": method.options_dict(),
        "seed": seed,
        "source_index": [int(i) for i in traj.source_index],
        "weights": weights if weights is not None else weight_hashes(method),
    }


def weight_hashes(method: Method) -> dict[str, str]:
    """{path: sha256} of the method's weight files (hashed once per process and file version)."""
    out = {}
    for path in method.weight_files():
        path = Path(path)
        try:
            out[str(path)] = file_sha256(path)  # memoised per file version
        except OSError:
            out[str(path)] = "missing"
    return out


def generation_is_valid(record: dict | None, key: dict, folder: Path, retry_failed: bool) -> bool:
    if record is None or record.get("schema") != records.SCHEMA_VERSION:
        return False
    if any(records.jsonable(record.get(k)) != records.jsonable(v) for k, v in key.items()):
        return False
    if record.get("status") == "ok":
        return records.frames_complete(folder / "frames", len(key["source_index"]))
    return record.get("status") == "failed" and not retry_failed


# ---------------------------------------------------------------------------------------------- the loop


def check_method(method_name: str, options: dict[str, str]) -> type:
    """The method's class, or UnknownMethodError / MethodUnavailable (cheap: no weights, no data)."""
    cls = get_method_class(method_name)
    missing = cls.check_available(options)
    if missing:
        raise MethodUnavailable(f"method {method_name!r} cannot run here: {missing}")
    return cls


class _ClipRunner:
    """Runs one method over the selected clips; holds the method instance and the scorer."""

    def __init__(self, method_name: str, options: dict[str, str], split: Split, opts: RunOptions, scorer: Scorer,
                 label: str | None = None):  # fmt: skip
        self.cls = check_method(method_name, options)
        self.device = resolve_device(opts.device)
        self.method = self.cls(options, device=self.device)
        self.name = method_dirname(label or self.method.record_name or method_name)
        self.split, self.opts, self.scorer = split, opts, scorer
        self.on_progress: Callable[[int, int], None] | None = None  # frames done / total of the current clip
        self._setup_done = False
        self._weights: dict | None = None

    def _ensure_setup(self) -> None:
        if not self._setup_done:
            self.method.setup()  # MethodUnavailable here aborts the run: no clip could succeed
            self._setup_done = True

    def run_clip(self, spec: ClipSpec, trajectory: str, clip_cache: dict) -> ClipOutcome:
        folder = records.clip_dir(self.opts.runs_dir, self.split.name, trajectory, self.name, spec.clip_id)
        with records.clip_lock(folder):  # another run on this runs dir waits here, then reuses what this one wrote
            return self._run_clip_locked(spec, trajectory, clip_cache, folder)

    def _run_clip_locked(self, spec: ClipSpec, trajectory: str, clip_cache: dict, folder: Path) -> ClipOutcome:
        records.clean_stale_temporaries(folder)
        traj = make_trajectory(trajectory, spec.start, spec.stride, self.opts.protocol)
        seed = clip_seed(self.opts.seed, spec.clip_id)
        if self._weights is None:
            self._weights = weight_hashes(self.method)
        key = generation_key(self.method, traj, seed, self.opts.protocol, self._weights)
        gen = records.read_json(folder / "generation.json")
        outcome = ClipOutcome(spec.clip_id, trajectory, status="ok")
        if not generation_is_valid(gen, key, folder, self.opts.retry_failed):
            gen = self._generate(spec, traj, trajectory, key, folder, clip_cache)
            outcome.generated = True
        if gen["status"] != "ok":
            outcome.status = gen["status"]
            outcome.error = gen.get("error") or gen.get("message")
            return outcome
        metrics = records.read_json(folder / "metrics.json")
        stale = not self.scorer.record_is_valid(metrics, gen)
        if stale or (self.opts.retry_failed and failed_metrics(metrics)):
            clip = None
            try:  # unreadable ground truth or stored frames fail this clip's scores, never the run
                clip = self._load_clip(spec, clip_cache)
                metrics = self.scorer.score_clip(clip, traj, folder, gen)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("clip %s (%s): scoring failed: %s", spec.clip_id, trajectory, error)
                metrics = self.scorer.failed_record(clip, spec.clip_id, traj, gen, error)
            records.write_json_atomic(folder / "metrics.json", metrics)
            outcome.scored = True
        failed = failed_metrics(metrics)
        if failed:
            by_error: dict[str, list[str]] = {}
            for name, err in failed.items():
                by_error.setdefault(err, []).append(name)
            outcome.status = "failed"
            outcome.error = "; ".join(f"{', '.join(names)}: {err}" for err, names in by_error.items())
        return outcome

    def _load_clip(self, spec: ClipSpec, clip_cache: dict) -> Clip:
        if spec.clip_id not in clip_cache:
            clip_cache.clear()  # one clip in memory at a time
            clip_cache[spec.clip_id] = self.split.load_clip(spec)
        return clip_cache[spec.clip_id]

    def _generate(self, spec, traj, trajectory, key, folder: Path, clip_cache) -> dict:
        record = {
            "schema": records.SCHEMA_VERSION,
            **key,
            "gac_bench_version": __version__,
            "split": self.split.name,
            "trajectory": trajectory,
            "method": self.name,
            "method_class": f"{self.cls.__module__}:{self.cls.__qualname__}",
            "clip_id": spec.clip_id,
            "device": self.device,
            "uses_dataset_depth": self.cls.uses_dataset_depth,
            "generation_id": uuid.uuid4().hex,
            "provenance": records.provenance(self.device),
        }
        stage, t0 = "data", time.perf_counter()
        try:
            clip = self._load_clip(spec, clip_cache)
            record["data_layout"] = clip.layout
            # the clip's own folder: adapters put their upstream inputs in <clip>/upstream/ (frames/ and the
            # JSON records are the runner's)
            folder.mkdir(parents=True, exist_ok=True)
            request = build_request(clip, traj, self.cls, key["seed"], folder, trajectory, self.on_progress)
            stage = "setup"
            self._ensure_setup()
            stage = "generate"
            self.method.info = {}
            with clip_timeout(self.opts.timeout_s, spec.clip_id):
                frames = check_generated(self.method.generate(request), request)
            record["info"] = dict(self.method.info)
            record.update(num_frames=len(frames), height=request.height, width=request.width)
            stage = "write"
            records.write_frames_atomic(folder / "frames", frames)
            record.update(status="ok", error=None)
        except MethodUnavailable:
            raise
        except GenerationDeferred as exc:  # e.g. a dry run: inputs written, nothing to score, not a failure
            record.update(status="deferred", error=None, message=str(exc))
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as exc:  # recorded per clip (a plugin's SystemExit too); the run goes on
            record.update(status="failed", error_stage=stage, error=f"{type(exc).__name__}: {exc}")
            record["traceback"] = traceback.format_exc(limit=8)
            log.warning("clip %s (%s): %s failed: %s", spec.clip_id, trajectory, stage, exc)
        record["wall_time_s"] = time.perf_counter() - t0
        records.write_json_atomic(folder / "generation.json", record)
        return record


def estimator_for(opts: RunOptions, split: Split) -> str | None:
    name = split.default_estimator if opts.estimator == "auto" else opts.estimator
    return None if name == "none" else name


def make_scorer(opts: RunOptions, split: Split | None = None) -> Scorer:
    split = split or get_split(opts.split, opts.data_root)
    return Scorer(resolve_device(opts.device), protocol=opts.protocol, estimator=estimator_for(opts, split),
                  split_name=split.name)


def run_method(method_name: str, options: dict[str, str], opts: RunOptions, scorer: Scorer | None = None,
               name: str | None = None) -> MethodRun:  # fmt: skip
    """Generate and score one method on the selected clips and trajectories of ``opts.split``; ``name`` labels its
    row and runs folder (variants of one method side by side)."""
    get_method_class(method_name)  # an unknown name fails before any data is touched
    split = get_split(opts.split, opts.data_root)
    scorer = scorer or make_scorer(opts, split)
    runner = _ClipRunner(method_name, options, split, opts, scorer, name)
    clips = select_clips(split, opts)
    result = MethodRun(runner.name)
    bar = tqdm(total=len(clips) * len(opts.trajectories), desc=runner.name, unit="clip", disable=not opts.progress)
    clip_cache: dict = {}
    with logging_redirect_tqdm():  # a method's warnings print above the bar instead of breaking it
        for spec in clips:
            for trajectory in opts.trajectories:
                bar.set_postfix_str(f"{spec.clip_id} {trajectory}")
                runner.on_progress = _frame_progress(bar, f"{spec.clip_id} {trajectory}")
                outcome = runner.run_clip(spec, trajectory, clip_cache)
                result.outcomes.append(outcome)
                bar.update(1)
    bar.close()
    scorer.finish_split(opts.runs_dir, split, runner.name, opts.trajectories)
    return result


def _frame_progress(bar, label: str) -> Callable[[int, int], None]:
    """What a slow method calls as frames finish: 'room00 dataset frame 12/64' on the clip bar."""

    def report(done: int, total: int) -> None:
        bar.set_postfix_str(f"{label} frame {int(done)}/{int(total)}")

    return report


def noise_floor_name(estimator: str) -> str:
    return f"noise-floor-{estimator}"


def _noise_floor_clip(spec, trajectory: str, split: Split, name: str, opts: RunOptions, scorer: Scorer,
                      clip_holder: dict) -> ClipOutcome:  # fmt: skip
    """Score the estimator on one clip's ground-truth frames (skipped when a valid record exists)."""
    folder = records.clip_dir(opts.runs_dir, split.name, trajectory, name, spec.clip_id)
    traj = make_trajectory(trajectory, spec.start, spec.stride, opts.protocol)
    gen = {"schema": records.SCHEMA_VERSION, "protocol": opts.protocol.name, "status": "ok",
           "method": name, "clip_id": spec.clip_id, "trajectory": trajectory,
           "source_index": [int(i) for i in traj.source_index],
           "generation_id": f"ground-truth:{spec.clip_id}:{trajectory}:{scorer.suite()['pose']}"}  # fmt: skip
    outcome = ClipOutcome(spec.clip_id, trajectory, "ok")
    if scorer.record_is_valid(records.read_json(folder / "metrics.json"), gen):
        return outcome
    try:
        if "clip" not in clip_holder:
            clip_holder["clip"] = split.load_clip(spec)
        metrics = scorer.score_ground_truth(clip_holder["clip"], traj, gen)
        records.write_json_atomic(folder / "generation.json", gen)
        records.write_json_atomic(folder / "metrics.json", metrics)
        outcome.scored = True
    except Exception as exc:
        gen.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        records.write_json_atomic(folder / "generation.json", gen)
        outcome.status, outcome.error = "failed", gen["error"]
    return outcome


def run_noise_floor(opts: RunOptions, scorer: Scorer) -> MethodRun | None:
    """The pose estimator on the ground-truth frames themselves: the R_err/T_err a perfect method would get.

    Recorded like a method (``noise-floor-<estimator>``) with pose columns only; pixel columns are not
    applicable. Nothing is generated, so the record keys on the estimator and the trajectory alone.
    """
    if scorer.pose_suite_missing():
        return None
    split = get_split(opts.split, opts.data_root)
    name = noise_floor_name(scorer.estimator_name)
    result = MethodRun(name)
    clips = select_clips(split, opts)
    bar = tqdm(total=len(clips) * len(opts.trajectories), desc=name, unit="clip", disable=not opts.progress)
    with logging_redirect_tqdm():
        for spec in clips:
            clip_holder: dict = {}  # the clip loads once, and only when a trajectory needs scoring
            for trajectory in opts.trajectories:
                result.outcomes.append(_noise_floor_clip(spec, trajectory, split, name, opts, scorer, clip_holder))
                bar.update(1)
    bar.close()
    return result
