"""The shipped synthroom checkpoint (gac/weights/synthroom) on CPU: it beats identity on a short case, responds to
the camera; closing the loop is the target it does not yet meet. Skipped, with the reason printed, where no
checkpoint is present."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")

from gac.method import SHIPPED_CHECKPOINT  # noqa: E402

pytestmark = pytest.mark.skipif(not (SHIPPED_CHECKPOINT / "config.json").is_file(),
                                reason=f"no shipped checkpoint at {SHIPPED_CHECKPOINT} yet")  # fmt: skip

STEPS = "10"


@pytest.fixture(scope="module")
def room():
    from gac_bench.splits import get_split

    split = get_split("synthroom")
    return split.load_clip(split.clips[0])


def _generate(room, source, tmp_path, c2w=None):
    from gac.method import GaCMethod
    from gac_bench.api import GenerationRequest

    c2w = room.c2w[source] if c2w is None else c2w
    req = GenerationRequest(room.clip_id, room.frame(int(source[0])), room.K, c2w, room.height, room.width, 0,
                            "dataset", tmp_path, room.depth(int(source[0])))  # fmt: skip
    return GaCMethod({"steps": STEPS, "compile": "false"}, device="cpu").generate(req)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0**2
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def test_beats_identity_on_a_short_trajectory(room, tmp_path):
    source = np.arange(9) * 3
    frames = _generate(room, source, tmp_path)
    gt = [room.frame(int(i)) for i in source]
    ours = np.mean([_psnr(frames[i], gt[i]) for i in range(1, 9)])
    identity = np.mean([_psnr(gt[0], gt[i]) for i in range(1, 9)])
    assert ours > identity, (ours, identity)


def test_camera_changes_the_frame(room, tmp_path):
    source = np.array([0, 6, 12, 6, 0])
    frames = _generate(room, source, tmp_path)
    still = _generate(room, source, tmp_path, c2w=np.repeat(room.c2w[:1], 5, axis=0))
    assert np.abs(frames[2].astype(float) - still[2].astype(float)).mean() > 5.0  # the camera moves the content


# Issue 10 item 5 asks for >= 30 dB at the loop-closure frame; the shipped model gives about 15 dB here (13.05 dB on
# harness frame 63, results/gac/README.md). Strict: when a new checkpoint closes the loop this starts to fail, and the
# marker goes.
@pytest.mark.xfail(strict=True, reason="the shipped checkpoint does not yet close the loop (about 15 dB, target 30)")
def test_loop_closes(room, tmp_path):
    source = np.array([0, 6, 12, 6, 0])
    frames = _generate(room, source, tmp_path)
    assert _psnr(frames[4], room.frame(0)) >= 30.0  # back at the reference pose: the reference again


def test_the_shipped_model_says_when_it_is_off_its_domain(room, tmp_path, caplog):
    from gac.method import GaCMethod

    method = GaCMethod({"steps": "1", "compile": "false"}, device="cpu")
    with caplog.at_level("WARNING", logger="gac.method"):
        method._warn_if_off_domain(room.width, room.height)
        assert "shipped synthroom model" not in caplog.text  # synthroom's own size: nothing to say
        method._warn_if_off_domain(640, 352)
        method._warn_if_off_domain(640, 352)
    assert caplog.text.count("shipped synthroom model") == 1
