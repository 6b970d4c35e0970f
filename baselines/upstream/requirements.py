"""What an adapter needs from the user's machine, and the one clear message when something is missing.

Each path comes from an option (``--option repo=...``) or, when the option is not given, from an environment
variable (``GAC_BENCH_<METHOD>_REPO``). ``gac-bench methods`` can only see the environment variables.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Requirement:
    """One path the adapter needs: a checkout, an interpreter, a checkpoint file or folder."""

    key: str  # option name
    env: str  # environment variable used when the option is not given
    kind: str  # "dir", "file" or "executable"
    what: str  # what the path must be, for the error message
    marker: str | None = None  # for a dir: a file inside it that proves it is the right one

    def resolve(self, options: dict) -> Path | None:
        value = options.get(self.key)
        if value in (None, ""):
            value = os.environ.get(self.env) or None
        if not value:
            return None
        if self.kind == "executable" and os.sep not in value:  # a bare name such as python3: look it up on PATH
            value = shutil.which(value) or value
        return Path(value).expanduser()

    def problem(self, path: Path | None) -> str | None:
        """None when ``path`` satisfies the requirement, else what is wrong."""
        where = f"set {self.env} or --option {self.key}=PATH"
        if path is None:
            return f"{self.what} is not set ({where})"
        if self.kind == "dir" and not path.is_dir():
            return f"{self.what}: {path} is not a folder ({where})"
        if self.kind in ("file", "executable") and not path.is_file():
            return f"{self.what}: {path} does not exist ({where})"
        if self.kind == "executable" and not os.access(path, os.X_OK):
            return f"{self.what}: {path} is not executable ({where})"
        if self.marker and not (path / self.marker).exists():
            return f"{self.what}: {path} has no {self.marker} ({where})"
        return None


def problems(requirements: tuple[Requirement, ...], options: dict) -> list[str]:
    found = (r.problem(r.resolve(options)) for r in requirements)
    return [p for p in found if p]


def availability(requirements: tuple[Requirement, ...], options: dict, readme: str) -> str | None:
    """None when every requirement resolves; else one line: the variables to set, or what is wrong with them."""
    if all(r.resolve(options) is None for r in requirements):
        names = ", ".join(r.env for r in requirements)
        return f"not configured: set {names} (or the matching --option); see {readme}"
    missing = problems(requirements, options)
    return "; ".join(missing) if missing else None
