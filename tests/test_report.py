"""gac-bench report: one self-contained HTML page built from a runs dir (parsed here; drawn by Chromium in
test_report_browser.py)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gac_bench import leaderboard
from gac_bench.cli import main
from gac_bench.runner import RunOptions, run_method


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.cells, self.tables, self.text, self._in_td = [], [], 0, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table":
            self.tables += 1
        if tag == "td":
            self._in_td = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_td:
            self.cells[-1] += data


@pytest.fixture
def runs(plane_split, tmp_path):
    runs = tmp_path / "runs"
    for method in ("identity", "depth-warp"):
        run_method(method, {}, RunOptions(split=plane_split, runs_dir=runs, progress=False, limit=2))
    return runs


def test_report_is_self_contained_and_carries_the_numbers(runs, plane_split):
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    page_text = (runs / "report.html").read_text()
    page = Page()
    page.feed(page_text)
    assert all(src.startswith("data:image/") for src in page.images)  # nothing outside the file
    assert 'src="http' not in page_text and "<link" not in page_text and "<script" not in page_text
    # every leaderboard mean appears in the page, with its CI
    rows = leaderboard.collect_rows(runs)
    for r in rows:
        cell = r.cells["psnr"]
        assert f"{cell.mean:.2f}" in page_text and f"[{cell.ci_low:.2f}, {cell.ci_high:.2f}]" in page_text
    assert all(f"{r.scored}/{r.total}" in [c.strip() for c in page.cells] for r in rows)  # coverage column
    assert {r.scored for r in rows} == {2}
    # curves (one figure per split x trajectory) and strips: ground truth + both methods, five frames each
    curves = [s for s in page.images if s.startswith("data:image/png")]
    strips = [s for s in page.images if s.startswith("data:image/jpeg")]
    assert len(curves) == len({(r.split, r.trajectory) for r in rows})
    assert len(strips) == 3 * 5 * len({(r.split, r.trajectory) for r in rows})
    img = Image.open(io.BytesIO(base64.b64decode(curves[0].split(",", 1)[1])))
    assert img.size[0] > 400 and np.asarray(img).std() > 5  # a drawn figure, not a blank
    assert "ground truth not available" not in page_text
    text = " ".join(page.text)
    assert "Protocol paper-v1" in text and "Provenance of the newest record" in text


def test_report_of_an_empty_runs_dir_fails_in_one_line(tmp_path):
    (tmp_path / "runs").mkdir()
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "no scored records" in result.output
    result = CliRunner().invoke(main, ["report", "--runs-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no runs folder" in result.output
