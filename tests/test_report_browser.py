"""gac-bench report rendered by headless Chromium: the page draws its inlined figures where a reader sees them.

Chromium comes from Debian's `chromium` package (`.ci/run` installs it); without it this file is skipped and says
so. The browser runs with no network, no GPU and a fresh profile, and takes a screenshot at scale 1, in which the
first per-frame curve (a PNG inlined as a data URI) must appear pixel for pixel.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gac_bench.cli import main
from gac_bench.runner import RunOptions, run_method

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium (.ci/run does)")
WIDTH, HEIGHT = 1400, 3200


def screenshot(page, out, profile) -> np.ndarray:
    """RGB (HEIGHT, WIDTH, 3) of ``page`` as headless Chromium draws it."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={out}", page.as_uri()]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


def best_match(shot: np.ndarray, figure: np.ndarray) -> float:
    """Where ``figure`` fits ``shot`` best (least squared difference): the share of its pixels that differ there by
    more than 8 levels in some channel (0: drawn exactly)."""
    grey = [cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY).astype(np.float32) for a in (shot, figure)]
    _, _, (x, y), _ = cv2.minMaxLoc(cv2.matchTemplate(grey[0], grey[1], cv2.TM_SQDIFF))
    h, w = figure.shape[:2]
    diff = np.abs(shot[y : y + h, x : x + w].astype(int) - figure.astype(int)).max(axis=2)
    return float((diff > 8).mean())


def test_the_browser_draws_the_inlined_curves_and_tables(plane_split, tmp_path):
    runs = tmp_path / "runs"
    for method in ("identity", "depth-warp"):
        run_method(method, {}, RunOptions(split=plane_split, runs_dir=runs, progress=False, limit=2))
    assert CliRunner().invoke(main, ["report", "--runs-dir", str(runs)]).exit_code == 0
    page = runs / "report.html"
    text = page.read_text()
    uri = re.search(r'src="(data:image/png;base64,[^"]+)"', text).group(1)
    figure = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
    assert figure.shape[0] < HEIGHT and figure.shape[1] < WIDTH

    shot = screenshot(page, tmp_path / "page.png", tmp_path / "profile")
    assert shot.shape == (HEIGHT, WIDTH, 3)
    assert best_match(shot, figure) < 1e-3  # the curve is drawn, unscaled, somewhere on the page
    # the leaderboard's table is drawn above it: dark text and grey rules on the white page, not an error page
    top = shot[: HEIGHT // 4]
    assert (top.min(axis=2) < 80).mean() > 0.002 and (top.min(axis=2) > 240).mean() > 0.5

    # the check can fail: the same page with that figure's bytes broken draws no such figure
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace(uri, uri[:64] + "AAAA" + uri[200:], 1))
    assert best_match(screenshot(broken, tmp_path / "broken.png", tmp_path / "profile2"), figure) > 0.02
