"""The files that run inside the upstream environments: valid for their oldest Python, stdlib-only at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "baselines"
WORKERS = sorted(ROOT.glob("*/upstream_worker.py"))
# ViewCrafter's environment is Python 3.9: everything that runs inside an upstream environment must parse there.
STDLIB_AT_IMPORT = {"__future__", "argparse", "glob", "json", "os", "sys", "pathlib", "traceback", "serve"}


def _top_level_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_there_is_one_worker_per_adapter():
    assert [p.parent.name for p in WORKERS] == ["cameractrl", "gen3c", "seva", "viewcrafter", "voyager"]


@pytest.mark.parametrize("path", WORKERS + [ROOT / "upstream" / "serve.py"], ids=lambda p: p.parent.name + "/" + p.name)
def test_runs_in_the_upstream_environment(path):
    tree = ast.parse(path.read_text(), feature_version=(3, 9))
    extra = _top_level_imports(tree) - STDLIB_AT_IMPORT
    assert not extra, f"{path} imports {extra} at module level; the upstream env may not have them (no gac_bench)"


@pytest.mark.parametrize("path", WORKERS, ids=lambda p: p.parent.name)
def test_worker_names_the_commit_it_was_written_against(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert "Runs INSIDE" in doc and "not run in gac-bench's CI" in doc
    words = [w.strip(".,;()`") for w in doc.split()]
    assert any(len(w) == 40 and all(c in "0123456789abcdef" for c in w) for w in words)
