"""Run the gac-bench CLI in a subprocess with the plane fixture split registered (used by the kill -9 test).

Usage: python -m tests.cli_with_fixture FIXTURE_ROOT [gac-bench arguments...]
"""

import sys
from pathlib import Path

from tests.fixtures import register_plane_split

if __name__ == "__main__":
    register_plane_split(Path(sys.argv[1]))
    from gac_bench.cli import main

    main(sys.argv[2:])
