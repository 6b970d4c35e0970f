"""Where gac-bench keeps caches and weights: ``GAC_BENCH_HOME`` (default ``~/.cache/gac_bench``)."""

from __future__ import annotations

import os
from pathlib import Path


def gac_bench_home() -> Path:
    return Path(os.environ.get("GAC_BENCH_HOME", Path.home() / ".cache" / "gac_bench")).expanduser()


def torch_home() -> Path:
    """The torch hub cache root, as torch itself resolves it (TORCH_HOME, else XDG_CACHE_HOME/torch)."""
    if "TORCH_HOME" in os.environ:
        return Path(os.environ["TORCH_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
    return Path(xdg).expanduser() / "torch"


def repo_root() -> Path:
    """The source checkout (split files live in ``<repo>/splits``)."""
    return Path(__file__).resolve().parents[1]
