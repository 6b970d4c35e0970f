"""Generate frames with the harness runner but score nothing (for a GPU machine without the metric weights).

    python benchmarks/gac_generate_only.py --method gac --clips room06,room07 --runs-dir runs/gac-eval \
        --option checkpoint=runs/gac-small-synthroom/last

Writes the usual runs layout (frames/ + generation.json). Running ``gac-bench run`` later with the same method,
options, split, clips and seed reuses these generations and only scores them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gac.method  # noqa: F401  (registers "gac" where the package is not pip-installed)
from gac_bench.api import parse_option_pairs
from gac_bench.runner import RunOptions, run_method


class NoScoring:
    """A scorer that declares every clip scored and pools nothing."""

    def record_is_valid(self, metrics, generation) -> bool:
        return True

    def finish_split(self, *args, **kwargs) -> None:
        return None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--method", required=True)
    p.add_argument("--split", default="synthroom")
    p.add_argument("--clips", default=None)
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--option", action="append", default=[])
    args = p.parse_args()
    opts = RunOptions(split=args.split, runs_dir=Path(args.runs_dir), device=args.device, progress=False,
                      clips=tuple(args.clips.split(",")) if args.clips else None)  # fmt: skip
    result = run_method(args.method, parse_option_pairs(args.option), opts, scorer=NoScoring())
    print(json.dumps([o.__dict__ for o in result.outcomes], indent=1))


if __name__ == "__main__":
    main()
