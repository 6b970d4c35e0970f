"""gac-bench worker for SEVA (Stable Virtual Camera). Runs INSIDE the SEVA environment; stdlib + that env only.

Started once per run by ``baselines/seva/method.py``:

    <env python> upstream_worker.py --repo CHECKOUT --ckpt WEIGHTS_DIR --version 1.1 --weight-name modelv1.1.safetensors

It loads what ``demo.py`` loads (``SGMWrapper(load_model(...))``, ``AutoEncoder``, ``CLIPConditioner``,
``DiscreteDenoiser``) without importing ``demo`` (which builds models on cuda:0 at import), and runs demo.py's
``img2trajvid`` branch in memory: one input (frame 0), N-1 target cameras, anchors spread over the targets
(``infer_prior_stats``), then ``seva.eval.run_one_scene`` with ``use_traj_prior=True``.
Written against commit 3629451f88d44a86bf18389c0bb3e9221e911c6a; not run in gac-bench's CI.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "upstream"))
import serve  # noqa: E402  (stdlib-only protocol loop shipped with gac-bench)


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--version", type=float, default=1.1)
    p.add_argument("--weight-name", default="modelv1.1.safetensors")
    return p.parse_args(argv)


def load(args):
    os.chdir(args.repo)
    sys.path.insert(0, args.repo)
    import torch
    from seva.model import SGMWrapper
    from seva.modules.autoencoder import AutoEncoder
    from seva.modules.conditioner import CLIPConditioner
    from seva.sampling import DDPMDiscretization, DiscreteDenoiser
    from seva.utils import load_model

    device = "cuda:0" if args.device == "cuda" else args.device
    net = load_model(model_version=args.version, pretrained_model_name_or_path=args.ckpt,
                     weight_name=args.weight_name, device="cpu", verbose=True).eval()
    return {
        "torch": torch,
        "model": SGMWrapper(net).to(device),
        "ae": AutoEncoder(chunk_size=1).to(device),
        "conditioner": CLIPConditioner().to(device),
        "denoiser": DiscreteDenoiser(discretization=DDPMDiscretization(), num_idx=1000, device=device),
    }


def collect_frames(save_path, num_frames):
    """samples-rgb holds every frame when the input is included; else prepend the input frames (as demo.py)."""
    samples = sorted(glob.glob(os.path.join(save_path, "samples-rgb", "*.png")))
    if len(samples) == num_frames:
        return samples
    inputs = sorted(glob.glob(os.path.join(save_path, "input", "*.png")))
    if len(samples) + len(inputs) != num_frames:
        raise RuntimeError(f"SEVA wrote {len(samples)} samples and {len(inputs)} inputs for {num_frames} frames")
    return inputs + samples


def handle(m, message):
    import numpy as np
    from PIL import Image
    from seva.eval import infer_prior_stats, run_one_scene

    torch = m["torch"]
    job = serve.read_job(message)
    h, u = job["harness"], job["upstream"]
    c2ws = torch.as_tensor(np.load(u["c2w_opencv"])[:, :3], dtype=torch.float32)
    Ks = torch.as_tensor(np.load(u["K"]), dtype=torch.float32)
    n, num_inputs = len(c2ws), len(u["input_indices"])
    num_targets = n - num_inputs
    version_dict = {"H": u["H"], "W": u["W"], "T": u["T"], "C": 4, "f": 8, "options": dict(u["options"])}
    num_anchors = infer_prior_stats(
        version_dict["T"], num_inputs, num_total_frames=num_targets, version_dict=version_dict
    )
    pick = np.linspace(num_inputs, n - 1, num_anchors).round().astype(np.int64)  # anchors among the targets
    save_path = os.path.join(h["output_dir"], "seva")
    image_cond = {
        "img": [h["condition_image"]] + [None] * num_targets,
        "input_indices": list(range(num_inputs)),
        "prior_indices": np.linspace(num_inputs, n - 1, num_anchors).tolist(),
    }
    camera_cond = {"c2w": c2ws.clone(), "K": Ks.clone(), "input_indices": list(range(n))}
    for _ in run_one_scene(
        u["task"], version_dict, model=m["model"], ae=m["ae"], conditioner=m["conditioner"], denoiser=m["denoiser"],
        image_cond=image_cond, camera_cond=camera_cond, save_path=save_path, use_traj_prior=u["use_traj_prior"],
        traj_prior_Ks=Ks[pick], traj_prior_c2ws=c2ws[pick], seed=int(u["options"]["seed"]),
    ):
        pass
    out = Path(h["output_dir"])
    for i, path in enumerate(collect_frames(save_path, n)):
        Image.open(path).convert("RGB").save(out / h["frame_pattern"].format(i))
    return {"frames_dir": str(out), "num_frames": n, "translation_scale": None}


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(serve.serve(lambda: load(arguments), handle))
