"""Exceptions shared by the upstream adapters."""

from __future__ import annotations

from pathlib import Path

from gac_bench.api import GenerationDeferred


class DryRunComplete(GenerationDeferred):
    """``--option dry_run=true``: the upstream inputs of a clip were written and the model was not run.

    Not a failure of the method: the runner records the clip as not generated, with this message.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(f"dry run: upstream inputs written to {self.path}")


class WorkerError(RuntimeError):
    """The upstream worker failed on a clip: it reported an error, died, timed out or could not start.

    The message names what happened and ends with the last lines the worker wrote to stderr.
    """
