"""tools/mutation_check.py stays applicable: every seeded bug still names code that exists, exactly once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_mutation_snippet_occurs_once():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "tools" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert len(module.MUTATIONS) >= 15
    for m in module.MUTATIONS:
        assert (ROOT / m.path).read_text().count(m.old) == 1, m.name
        assert all((ROOT / t).is_file() for t in m.tests), m.name
