"""FAKE UPSTREAM WORKER -- for tests only. It runs no model.

It speaks the same protocol as the real ``baselines/<method>/upstream_worker.py`` files (it uses the same
``baselines/upstream/serve.py``), reads only the method-independent ``harness`` section of each job, and
writes deterministic frames that encode where they came from:

=======  =============================================================================================
red      the global pose index of the frame (padding repeats the last pose, so its index)
green    the chunk index
blue     the mean red value of the chunk's condition image (shows which frame conditioned the chunk)
=======  =============================================================================================

Behaviour switches (environment variables, matched against the job's clip id):
FAKE_UPSTREAM_CRASH_ON (exit without answering), FAKE_UPSTREAM_HANG_ON (sleep past the timeout),
FAKE_UPSTREAM_FAIL_ON (answer with an error), FAKE_UPSTREAM_FAIL_LOAD=1 (fail while "loading the model").
For the ``depth`` op it returns a fake depth map (FAKE_DEPTH + 0.001 * row).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "baselines" / "upstream"))
import serve  # noqa: E402

FAKE_DEPTH = 2.0


def load() -> dict:
    if os.environ.get("FAKE_UPSTREAM_FAIL_LOAD"):
        raise RuntimeError("fake upstream told to fail while loading")
    print("fake upstream: loading; this stdout line must not break the protocol")
    return {"served": 0, "argv": sys.argv[1:]}


def _switches(clip_id: str) -> None:
    if clip_id == os.environ.get("FAKE_UPSTREAM_CRASH_ON"):
        print(f"fake upstream: crashing on {clip_id}", file=sys.stderr, flush=True)
        os._exit(3)
    if clip_id == os.environ.get("FAKE_UPSTREAM_HANG_ON"):
        time.sleep(3600)
    if clip_id == os.environ.get("FAKE_UPSTREAM_FAIL_ON"):
        raise ValueError(f"fake upstream told to fail on {clip_id}")


def _condition_value(path) -> int:
    if not path:
        return 0
    with Image.open(path) as im:
        return int(round(float(np.asarray(im.convert("RGB"))[..., 0].mean())))


def _depth(job: dict) -> dict:
    with Image.open(job["image"]) as im:
        w, h = im.size
    depth = FAKE_DEPTH + 0.001 * np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    np.save(job["output"], depth.astype(np.float32))
    return {"depth": job["output"]}


def _generate(model: dict, job: dict) -> dict:
    h = job["harness"]
    width, height = h["native_wh"]
    out = Path(h["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    blue = _condition_value(h.get("condition_image"))
    # Voyager's pipeline (latent_concat) returns decoded frames 4.. only; the adapter states it expects that
    drop = int(h.get("upstream_drops_leading", 0))
    returned = h["pose_index"][drop:]
    for local, pose in enumerate(returned):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = pose % 256, h["chunk"], blue
        Image.fromarray(frame).save(out / h["frame_pattern"].format(local), compress_level=1)
    for local in h.get("want_depth") or []:  # Voyager: the generated depth of the frames the adapter needs
        np.save(out / "depth_{:04d}.npy".format(local), np.full((height, width), 0.5, np.float32))
    scale = h["scale"]
    factor = scale.get("factor")
    if scale.get("policy") == "depth-median":
        factor = FAKE_DEPTH / scale["harness_median_depth"]
    return {"frames_dir": str(out), "num_frames": len(returned), "translation_scale": factor}


def handle(model: dict, message: dict) -> dict:
    job = serve.read_job(message)
    _switches(job["harness"]["clip_id"])
    model["served"] += 1
    result = _depth(job) if message["op"] == "depth" else _generate(model, job)
    return dict(result, pid=os.getpid(), served=model["served"], argv=model["argv"])


if __name__ == "__main__":
    sys.exit(serve.serve(load, handle))
