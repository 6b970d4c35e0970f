"""``UpstreamMethod``: the shared mechanics of an adapter that runs an official repository in its own environment.

A subclass says what the upstream needs (requirements, native resolution, chunk plan) and how to write one
call's inputs (``write_chunk``); this base class does the rest:

1. ``setup()`` resolves the repository, interpreter and checkpoints (options, else environment variables) and
   raises :class:`MethodUnavailable` naming every one that is missing -- before any clip runs.
2. ``generate()`` converts the request once per clip (``prepare``), then for each chunk writes the inputs to
   ``<scratch>/upstream/chunk_XX/`` and asks the resident worker to run them. A chained chunk is conditioned
   on the frame the previous chunk generated at its first pose. The owned frames are stitched and brought
   back to the protocol resolution with the declared transform.
3. With ``dry_run=true`` every chunk's inputs and the worker command are written, then
   :class:`DryRunComplete` is raised (the model never runs).

Layout of ``<scratch>/upstream/``: ``clip.json`` (conversions, transforms, chunk plan, scale), ``chunk_XX/``
(``job.json`` + inputs, ``output/`` after a run), ``worker_command.json``, ``scale.json``, ``worker.log``.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from gac_bench.api import GenerationRequest, Method, MethodUnavailable

from baselines.upstream import files
from baselines.upstream.chunking import Chunk, stitch
from baselines.upstream.errors import DryRunComplete
from baselines.upstream.requirements import Requirement, availability, problems
from baselines.upstream.transforms import NativeResolution
from baselines.upstream.worker import ResidentWorker, WorkerSpec

FRAME_PATTERN = "frame_{:04d}.png"


@dataclass(frozen=True)
class UpstreamInfo:
    """Where the upstream code comes from and under which terms."""

    name: str
    repository: str
    branch: str
    commit: str  # the commit the adapter was written against
    licence: str

    def record(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class UpstreamConfig:
    """Options every upstream adapter takes (subclass configs add their own)."""

    repo: Path | None = None  # the official repository checkout (else $GAC_BENCH_<M>_REPO)
    python: Path | None = None  # the interpreter of its environment (else $GAC_BENCH_<M>_PYTHON)
    ckpt: Path | None = None  # its checkpoint file or folder (else $GAC_BENCH_<M>_CKPT)
    dry_run: bool = False  # write the upstream inputs of each clip, do not run the model
    frames_back: str = "inverse"  # inverse | cover: how frames return to the protocol size (upstream/transforms.py)
    keep_upstream: bool = False  # keep each chunk's bulky files (outputs, renders) after a successful clip
    timeout_s: float = 3600.0  # per upstream call
    startup_timeout_s: float = 1800.0  # loading the model
    worker: Path | None = None  # replaces the shipped upstream_worker.py (debugging; the tests' fake upstream)


@dataclass
class ClipContext:
    """One clip converted once: what every chunk of it needs."""

    request: GenerationRequest
    up_dir: Path
    native: NativeResolution
    image_native: np.ndarray  # uint8 (H_native, W_native, 3)
    K_native: np.ndarray  # pixel K at the native resolution
    chunks: list[Chunk]
    scale: dict  # the scale spec (see baselines.upstream.scale)
    record: dict = field(default_factory=dict)  # method-specific facts for clip.json
    data: dict = field(default_factory=dict)  # method-specific arrays shared by the chunks

    def chunk_dir(self, chunk: Chunk) -> Path:
        return self.up_dir / f"chunk_{chunk.index:02d}"


class UpstreamMethod(Method):
    """Base class of the five adapters; see the module docstring."""

    Config: ClassVar[type] = UpstreamConfig
    upstream: ClassVar[UpstreamInfo]
    env_prefix: ClassVar[str]  # e.g. GAC_BENCH_CAMERACTRL
    repo_marker: ClassVar[str]  # a file that proves the checkout is the right repository
    ckpt_kind: ClassVar[str] = "file"
    ckpt_what: ClassVar[str] = "checkpoint"
    ckpt_marker: ClassVar[str | None] = None
    extra_requirements: ClassVar[tuple[Requirement, ...]] = ()
    worker_script: ClassVar[Path]  # baselines/<method>/upstream_worker.py
    bulky_dirs: ClassVar[tuple[str, ...]] = ("output",)  # per chunk: removed after success unless keep_upstream

    def __init__(self, options: dict[str, str] | None = None, device: str = "cpu"):
        super().__init__(options, device)
        self._paths: dict[str, Path | None] = {}
        self._worker: ResidentWorker | None = None

    # ---------------------------------------------------------------------------------------- requirements

    @classmethod
    def requirements(cls) -> tuple[Requirement, ...]:
        p, up = cls.env_prefix, cls.upstream.name
        checkout = f"{up} repository checkout ({cls.upstream.branch})"
        return (
            Requirement("repo", f"{p}_REPO", "dir", checkout, cls.repo_marker),
            Requirement("python", f"{p}_PYTHON", "executable", f"Python interpreter of the {up} environment"),
            Requirement("ckpt", f"{p}_CKPT", cls.ckpt_kind, f"{up} {cls.ckpt_what}", cls.ckpt_marker),
        ) + cls.extra_requirements

    @classmethod
    def check_available(cls, options: dict | None = None) -> str | None:
        """None when every path resolves (from ``options``, else the environment); else what to set.

        ``gac-bench methods`` calls it without options, so it reports on the environment variables only.
        """
        options = options or {}
        if str(options.get("dry_run", "")).lower() in {"1", "true", "yes", "on"}:
            return None  # a dry run writes the inputs only: no checkout, interpreter or weights needed
        readme = f"baselines/{cls.worker_script.parent.name}/README.md"
        return availability(cls.requirements(), options, readme)

    def _config_paths(self) -> dict:
        return {r.key: getattr(self.config, r.key, None) for r in self.requirements()}

    def setup(self) -> None:
        options = self._config_paths()
        self._paths = {r.key: r.resolve(options) for r in self.requirements()}
        if self.config.dry_run:
            return  # a dry run needs no checkout: unresolved paths are written as placeholders
        missing = problems(self.requirements(), options)
        script = Path(self.config.worker or self.worker_script)
        if not script.is_file():
            missing.append(f"worker script {script} does not exist (--option worker=PATH)")
        if missing:
            raise MethodUnavailable(f"{self.name}: " + "; ".join(missing))
        self._worker = ResidentWorker(self.worker_spec())

    # ---------------------------------------------------------------------------------------- worker

    def _path_arg(self, key: str) -> str:
        path = self._paths.get(key)
        return str(path) if path is not None else f"<{self._requirement(key).env}>"

    def _requirement(self, key: str) -> Requirement:
        return next(r for r in self.requirements() if r.key == key)

    def worker_args(self) -> list[str]:
        """Method-specific load-time arguments of the worker (sampling parameters go into each job)."""
        return []

    def worker_spec(self) -> WorkerSpec:
        script = self.config.worker or self.worker_script
        argv = [self._path_arg("python"), str(script)]
        argv += ["--repo", self._path_arg("repo"), "--ckpt", self._path_arg("ckpt")]
        argv += ["--device", "cuda" if self.device == "auto" else str(self.device)] + self.worker_args()
        repo = self._paths.get("repo")
        return WorkerSpec(
            argv=tuple(argv),
            cwd=repo,  # several upstreams resolve paths against the repository root
            startup_timeout_s=self.config.startup_timeout_s,
            call_timeout_s=self.config.timeout_s,
        )

    # ---------------------------------------------------------------------------------------- per clip

    def prepare(self, request: GenerationRequest, up_dir: Path) -> ClipContext:
        """Convert the request once (image, K, poses, chunk plan, scale)."""
        raise NotImplementedError

    def write_chunk(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path:
        """Write one call's inputs under ``ctx.chunk_dir(chunk)``; return the job file."""
        raise NotImplementedError

    def harness_section(self, ctx: ClipContext, chunk: Chunk, condition_path: Path | None) -> dict:
        """The method-independent part of every job (the fake upstream of the tests reads only this)."""
        previous = None if chunk.index == 0 else {"chunk": chunk.index - 1, "local_frame": None}
        if previous is not None:
            prev = ctx.chunks[chunk.index - 1]
            previous["local_frame"] = prev.pose_index.index(chunk.pose_index[0])
        return {
            "clip_id": ctx.request.clip_id,
            "chunk": chunk.index,
            "num_chunks": len(ctx.chunks),
            "pose_index": list(chunk.pose_index),
            "num_real": chunk.num_real,
            "condition_image": str(condition_path) if condition_path else None,
            "condition_from": previous,  # a chained chunk starts from the frame its predecessor generated
            "native_wh": list(ctx.native.native_wh),
            "output_dir": str(ctx.chunk_dir(chunk) / "output"),
            "frame_pattern": FRAME_PATTERN,
            "seed": int(ctx.request.seed) + chunk.index,  # derived from the harness seed, distinct per call
            "scale": ctx.scale,
        }

    def write_condition(self, ctx: ClipContext, chunk: Chunk, condition: np.ndarray | None) -> Path | None:
        """The conditioning image of a chunk as PNG; None in a dry run for chunks after the first."""
        if condition is None:
            return None
        return files.write_png(ctx.chunk_dir(chunk) / "condition.png", condition)

    @staticmethod
    def condition_for(ctx: ClipContext, chunk: Chunk, outputs: list[np.ndarray]) -> np.ndarray:
        """The reference for chunk 0; for a chained chunk, the frame its predecessor generated at its first pose."""
        if chunk.index == 0:
            return ctx.image_native
        prev = ctx.chunks[chunk.index - 1]
        return outputs[-1][prev.pose_index.index(chunk.pose_index[0])]

    def read_output(self, ctx: ClipContext, chunk: Chunk, reply: dict) -> np.ndarray:
        folder = Path(reply.get("frames_dir") or ctx.chunk_dir(chunk) / "output")
        return files.read_frames(folder, int(reply.get("num_frames", chunk.frames_per_call)), FRAME_PATTERN)

    def generate(self, request: GenerationRequest) -> np.ndarray:
        up_dir = Path(request.scratch_dir) / "upstream"
        up_dir.mkdir(parents=True, exist_ok=True)
        ctx = self.prepare(request, up_dir)
        self._record_clip(ctx)
        if self.config.dry_run:
            return self._dry_run(ctx)
        if self._worker is None:
            self.setup()
        outputs, factors = [], []
        for chunk in ctx.chunks:
            job = self.write_chunk(ctx, chunk, self.condition_for(ctx, chunk, outputs))
            self.fresh_output(ctx, chunk)
            reply = self._worker.call({"op": "generate", "job": str(job)}, log_path=up_dir / "worker.log")
            outputs.append(self.read_output(ctx, chunk, reply))
            factors.append(reply.get("translation_scale"))
        self._record_scale(ctx, factors)
        frames = ctx.native.frames_to_protocol(stitch(ctx.chunks, outputs, request.num_frames))
        self.clean_up(ctx)
        return frames

    def fresh_output(self, ctx: ClipContext, chunk: Chunk) -> None:
        """Empty a chunk's output folder before its call, so frames of an earlier attempt cannot be read back."""
        shutil.rmtree(ctx.chunk_dir(chunk) / "output", ignore_errors=True)

    def clean_up(self, ctx: ClipContext) -> None:
        """After a successful clip, drop the large per-chunk folders (the runner stores the frames itself);
        the job files, cameras, records and log stay. A failed clip keeps everything for inspection."""
        if self.config.keep_upstream:
            return
        for chunk in ctx.chunks:
            for name in self.bulky_dirs:
                shutil.rmtree(ctx.chunk_dir(chunk) / name, ignore_errors=True)

    # ---------------------------------------------------------------------------------------- records

    def _record_clip(self, ctx: ClipContext) -> None:
        record = {
            "method": self.name,
            "upstream": self.upstream.record(),
            "clip_id": ctx.request.clip_id,
            "num_frames": ctx.request.num_frames,
            "resolution": ctx.native.record(),
            "K_protocol": ctx.request.K,
            "K_native": ctx.K_native,
            "chunks": [c.record() for c in ctx.chunks],
            "scale": ctx.scale,
            "options": self.options_dict(),
            **ctx.record,
        }
        files.write_json(ctx.up_dir / "clip.json", record)
        files.write_png(ctx.up_dir / "reference_native.png", ctx.image_native)
        self.info.update(
            upstream=f"{self.upstream.repository}@{self.upstream.commit}",
            native_wh=list(ctx.native.native_wh),
            resolution=ctx.native.record(),
            chunks=[c.pose_index[0] for c in ctx.chunks],
            frames_per_call=ctx.chunks[0].frames_per_call,
            scale=ctx.scale,
        )

    def _record_scale(self, ctx: ClipContext, factors: list) -> None:
        reported = [f for f in factors if f is not None]
        factor = reported[0] if reported else (ctx.scale.get("factor") if isinstance(ctx.scale, dict) else None)
        self.info["translation_scale"] = factor
        files.write_json(ctx.up_dir / "scale.json", {"spec": ctx.scale, "factor_used": factor, "per_chunk": factors})

    def _dry_run(self, ctx: ClipContext) -> np.ndarray:
        jobs = []
        for chunk in ctx.chunks:
            condition = ctx.image_native if chunk.index == 0 else None
            jobs.append(self.write_chunk(ctx, chunk, condition))
        spec = self.worker_spec()
        files.write_json(
            ctx.up_dir / "worker_command.json",
            {
                **spec.record(),
                "requests": [{"op": "generate", "job": str(j)} for j in jobs],
                "protocol": "one JSON request per line on stdin; see baselines/upstream/serve.py",
                "note": "chunks after the first are conditioned on the previous chunk's output "
                "(job.json: harness.condition_from); run them in order",
            },
        )
        self.write_official(ctx)
        self.info["dry_run"] = True
        raise DryRunComplete(ctx.up_dir)

    def write_official(self, ctx: ClipContext) -> None:
        """Where the official CLI accepts these inputs, write its command line (``official_cli.json``)."""
