"""Errors a new user hits when training GaC: one line each, saying what to do, and exit status 2."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from gac.testing import write_fixture_clip, write_tiny_vae  # noqa: E402
from gac.train import LossWatch, TrainingError, main  # noqa: E402

H, W = 32, 64
BASE = ["--preset", "gac-tiny", "--width", str(W), "--height", str(H), "--device", "cpu", "--log-every", "1000"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("errs")
    write_fixture_clip(root / "data", n=12, height=H, width=W)
    write_tiny_vae(root / "vae4", latent_channels=4)
    write_tiny_vae(root / "vae8", latent_channels=8)
    return root


def _args(root, vae="vae4", *extra):
    return BASE + ["--data-root", str(root / "data"), "--vae", str(root / vae), "--out", str(root / "run")] + list(extra)


def test_latent_channel_mismatch_says_which_setting_fixes_it(data):
    with pytest.raises(TrainingError, match=r"8 latent channels but the model \(gac-tiny\) expects 4: add --set "
                                            r"latent_channels=8"):  # fmt: skip
        main(_args(data, "vae8", "--steps", "1"))


def test_too_few_frames_names_the_clip_and_the_options(data):
    with pytest.raises(TrainingError, match=r"fewer frames than one sample needs.*fix00 \(12\).*--frames"):
        main(_args(data, "vae4", "--steps", "1", "--frames", "8"))


def test_a_time_limit_that_fits_no_step(data):
    with pytest.raises(TrainingError, match="fits no training step here"):
        main(_args(data, "vae4", "--steps", "5", "--frames", "2", "--time-limit", "1e-9"))


def test_a_vae_trained_for_two_steps_is_refused(data, tmp_path):
    import shutil

    vae = tmp_path / "vae"
    shutil.copytree(data / "vae4", vae)
    (vae / "train_report.json").write_text(json.dumps({"steps": 2, "val_psnr_db": 9.8}))
    with pytest.raises(TrainingError, match=r"trained for 2 steps \(reconstruction PSNR 9.8 dB\).*retrain it longer"):
        main(BASE + ["--data-root", str(data / "data"), "--vae", str(vae), "--out", str(tmp_path / "r"), "--steps", "1"])


def test_evaluation_splits_are_never_trained_on(data):
    with pytest.raises(TrainingError, match="evaluation split"):
        main(_args(data, "vae4", "--split", "synthroom"))


def test_command_line_prints_one_line_and_exits_2(data):
    proc = subprocess.run([sys.executable, "-m", "gac.train", *_args(data, "vae8", "--steps", "1")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gac.train:")]
    assert len(lines) == 1 and "latent channels" in lines[0] and "Traceback" not in proc.stderr


def test_loss_watch_warns_on_an_off_range_start_and_on_divergence(caplog):
    with caplog.at_level(logging.WARNING, logger="gac.train"):
        LossWatch(warmup=5).update(1, 1e5)
        assert "about 2 is expected" in caplog.text
        caplog.clear()
        watch = LossWatch(warmup=5)
        for step in range(1, 200):
            watch.update(step, 1.0 if step < 100 else 50.0)
        assert "training diverges" in caplog.text
        caplog.clear()
        calm = LossWatch(warmup=5)
        for step in range(1, 400):
            calm.update(step, 2.0 / step**0.3)
        assert caplog.text == ""


def test_vae_time_limit_that_fits_no_step(data, tmp_path):
    from gac.train_vae import main as train_vae

    with pytest.raises(TrainingError, match="fits no VAE step"):
        train_vae(["--data-root", str(data / "data"), "--width", str(W), "--height", str(H), "--out",
                   str(tmp_path / "v"), "--time-limit", "1e-9", "--device", "cpu", "--batch", "2", "--width-mult", "32",
                   "--layers-per-block", "1", "--latent-channels", "4"])  # fmt: skip
