"""Each adapter README says what was checked against upstream, at the commit the adapter declares, and every test it
cites for a check exists (a renamed or deleted test would leave the README claiming a check nobody runs)."""

from __future__ import annotations

import re

import pytest

from gac_bench.paths import repo_root

ADAPTERS = ["cameractrl", "viewcrafter", "gen3c", "seva", "voyager"]


def _all_test_names() -> set[str]:
    names = set()
    for path in (repo_root() / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M))
    return names


@pytest.mark.parametrize("name", ADAPTERS)
def test_readme_lists_upstream_checks_at_the_declared_commit_with_existing_tests(name):
    import importlib

    method = importlib.import_module(f"baselines.{name}.method")
    commit = next(cls.upstream.commit for cls in vars(method).values()
                  if isinstance(cls, type) and getattr(getattr(cls, "upstream", None), "commit", None))
    readme = (repo_root() / "baselines" / name / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Checked against upstream", 1)[1].split("\n## ", 1)[0]
    assert commit in section
    cited = set(re.findall(r"`(test_\w+)`", section))
    assert cited and not cited - _all_test_names(), sorted(cited - _all_test_names())
