"""The method plugin API: what a method receives and what it must return.

A method is a class with a ``name`` and ``generate(request) -> frames``. Register it with
``@register_method("name")``, an entry point in the group ``gac_bench.methods``, or pass
``--method package.module:Class``. Minimal example::

    import numpy as np
    from gac_bench import Method, GenerationRequest, register_method

    @register_method("mirror")
    class Mirror(Method):
        summary = "Every frame is the reference image, mirrored left-right."

        def generate(self, request: GenerationRequest) -> np.ndarray:
            frame = request.reference_image[:, ::-1]
            return np.repeat(frame[None], request.num_frames, axis=0)

Rules (checked by the runner, which records a per-clip failure when one is broken):
  1. Return uint8 (N, height, width, 3) RGB, one frame per pose; frame 0 may be the reference.
  2. Convert conventions, resize and pad inside the method with :mod:`gac_bench.cameras`.
  3. Never write outside ``request.scratch_dir`` (nor over its ``frames/`` and ``*.json``), never compute metrics,
     never pick seeds.
  4. A missing dependency or checkpoint raises :class:`MethodUnavailable` saying what to install or where to
     put which file.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np


class MethodUnavailable(RuntimeError):
    """A method cannot run here: a package, repository or checkpoint is missing. The message says which."""


class GenerationDeferred(Exception):
    """Not a failure: the method chose not to generate this clip now (a dry run that only wrote its inputs).

    The runner records the clip with status "deferred" and the message; it is not scored and a later run retries it.
    """


class UnsupportedRequest(ValueError):
    """A request is outside what a method supports (for example a clip without the depth it needs)."""


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a method may see for one clip and one trajectory.

    Attributes:
        clip_id: the clip's id within its split.
        reference_image: uint8 (height, width, 3) RGB, the ground-truth frame 0.
        K: (3, 3) pixel intrinsics at (height, width), shared by all frames.
        c2w: (N, 4, 4) OpenCV camera-to-world of every frame; c2w[0] is the reference view. World units are the
            dataset's (RealEstate10K: arbitrary SLAM scale per clip).
        height, width: the evaluation resolution the frames must have.
        seed: the seed the method must use for any randomness.
        trajectory: "dataset" or "forth-and-back".
        scratch_dir: the clip's folder in the runs layout; the method may write there (adapters put their upstream
            inputs in ``scratch_dir / "upstream"``) except ``frames/`` and the ``*.json`` records, which are the runner's.
        reference_depth: optional float32 (height, width) z-depth of the reference view in world units, when the
            dataset provides one (synthroom does). Methods that use it say so in ``uses_dataset_depth``.
        report_progress: optional ``(frames_done, frames_total) -> None``; a slow method may call it as frames
            finish and the runner shows it on the progress bar. Calling it is never required.
    """

    clip_id: str
    reference_image: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    height: int
    width: int
    seed: int
    trajectory: str
    scratch_dir: Path
    reference_depth: np.ndarray | None = None
    report_progress: Callable[[int, int], None] | None = field(default=None, repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        return int(len(self.c2w))


@dataclass
class EmptyConfig:
    """Options of a method that takes none."""


class Method:
    """Base class of every method. Subclasses set ``name`` and implement :meth:`generate`.

    Class attributes:
        name: registry name (set by ``@register_method`` when omitted).
        version: bump when outputs change; finished clips of an older version are regenerated.
        summary: one line for ``gac-bench methods``.
        requires: Python modules that must import for the method to run.
        uses_dataset_depth: True when the method reads ``request.reference_depth``.
        Config: a dataclass of options, filled from ``--option key=value`` with type coercion.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    summary: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    uses_dataset_depth: ClassVar[bool] = False
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, options: dict[str, str] | None = None, device: str = "cpu"):
        self.config = parse_options(self.Config, options or {}, method=self.name or type(self).__name__)
        self.device = device
        # Anything a method wants recorded about the last clip (scale used, resize applied, chunks...):
        # the runner empties it before each generate() and stores it in that clip's generation.json.
        self.info: dict[str, Any] = {}

    @property
    def record_name(self) -> str:
        """The folder name of this method's results (the registry name unless a method overrides it)."""
        return self.name or type(self).__name__

    @classmethod
    def check_available(cls, options: dict[str, str] | None = None) -> str | None:
        """None when the method can run here with ``options``, else a message saying exactly what is missing.

        ``gac-bench methods`` calls it without options (environment only); ``gac-bench run`` passes --option values.
        """
        import importlib.util

        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            return f"missing Python package(s): {', '.join(missing)} (pip install {' '.join(missing)})"
        return None

    def setup(self) -> None:
        """Load weights once before the first clip; raise :class:`MethodUnavailable` when something is missing."""

    def generate(self, request: GenerationRequest) -> np.ndarray:
        raise NotImplementedError

    def weight_files(self) -> list[Path]:
        """Every weight file the method reads. Their content hashes join the key of stored outputs, so changed
        weights regenerate instead of reusing old frames. Called before ``setup``; a method with weights
        overrides it (files that do not exist are left to ``setup`` to report)."""
        return []

    def options_dict(self) -> dict[str, Any]:
        """The resolved options, recorded in every generation.json."""
        return dataclasses.asdict(self.config) if dataclasses.is_dataclass(self.config) else {}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(raw: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw.lower() in {"none", "null", ""}:
            return None
        return _coerce(raw, args[0], key)
    if typ is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(f"option {key}={raw!r}: expected a boolean (true/false)")
    if typ in (int, float, str):
        try:
            return typ(raw)
        except ValueError:
            raise ValueError(f"option {key}={raw!r}: expected {typ.__name__}") from None
    if typ is Path:
        return Path(raw).expanduser()
    return raw


def parse_options(config_cls: type, options: dict[str, str], method: str = "") -> Any:
    """Build ``config_cls`` from string options; unknown keys and bad values raise ValueError naming them."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ValueError(f"method {method!r}: unknown option(s) {', '.join(unknown)}; known options: {known}")
    hints = typing.get_type_hints(config_cls)
    values = {k: _coerce(str(v), hints[k], k) for k, v in options.items()}
    return config_cls(**values)


def parse_option_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Parse CLI ``key=value`` strings into a dict; a pair without '=' raises ValueError."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--option {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


__all__ = [
    "EmptyConfig",
    "GenerationDeferred",
    "GenerationRequest",
    "Method",
    "MethodUnavailable",
    "UnsupportedRequest",
    "parse_option_pairs",
    "parse_options",
]
