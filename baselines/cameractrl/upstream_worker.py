"""gac-bench worker for CameraCtrl (svd branch). Runs INSIDE the CameraCtrl environment; stdlib + that env only.

Started once per run by ``baselines/cameractrl/method.py``:

    <env python> upstream_worker.py --repo CHECKOUT --ckpt CameraCtrl_svdxt.ckpt --svd SVD_XT_FOLDER
                                    --model-config configs/train_cameractrl/svdxt_320_576_cameractrl.yaml
                                    [--xformers] [--device cuda]

It imports the svd branch's ``inference.py`` as a library (``get_pipeline``, ``Camera``,
``get_relative_pose``, ``ray_condition``; its ``main`` only runs under ``__main__``), builds the pipeline
once, and for each job reads the pose txt exactly as ``inference.py`` does, builds the Plücker embedding and
writes the generated frames as PNGs. Written against commit 1f9d8baeff66f6c60bb9848dfafcc667b3a22a28;
not run in gac-bench's CI (needs the weights and a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "upstream"))
import serve  # noqa: E402  (stdlib-only protocol loop shipped with gac-bench)


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--svd", required=True)
    p.add_argument("--model-config", required=True)
    p.add_argument("--xformers", action="store_true")
    p.add_argument("--device", default="cuda")
    return p.parse_args(argv)


def load(args):
    os.chdir(args.repo)
    sys.path.insert(0, args.repo)
    import torch
    from omegaconf import OmegaConf

    import inference as cameractrl  # the svd branch's inference.py

    cfg = OmegaConf.load(args.model_config)
    pipeline = cameractrl.get_pipeline(
        args.svd, cfg["unet_subfolder"], cfg["down_block_types"], cfg["up_block_types"],
        cfg["pose_encoder_kwargs"], cfg["attention_processor_kwargs"], args.ckpt, args.xformers, args.device,
    )
    return {"torch": torch, "cc": cameractrl, "pipeline": pipeline, "device": args.device}


def read_cameras(cc, path):
    """Pose txt -> CameraCtrl ``Camera`` objects, skipping line 1 exactly like inference.py."""
    with open(path) as f:
        lines = f.readlines()[1:]
    return [cc.Camera([float(x) for x in line.strip().split(" ")]) for line in lines if line.strip()]


def intrinsics(cams, u):
    """inference.py's aspect correction, then pixel (fx, fy, cx, cy) at the sample size."""
    W, H = u["image_width"], u["image_height"]
    pose_ratio, sample_ratio = u["original_pose_width"] / u["original_pose_height"], W / H
    for cam in cams:
        if pose_ratio > sample_ratio:
            cam.fx = H * pose_ratio * cam.fx / W
        else:
            cam.fy = (W / pose_ratio) * cam.fy / H
    return [[c.fx * W, c.fy * H, c.cx * W, c.cy * H] for c in cams]


def handle(model, message):
    torch, cc, pipeline = model["torch"], model["cc"], model["pipeline"]
    job = serve.read_job(message)
    h, u = job["harness"], job["upstream"]
    W, H = u["image_width"], u["image_height"]
    cams = read_cameras(cc, u["trajectory_file"])
    assert len(cams) == u["num_frames"], f"{len(cams)} pose lines for num_frames={u['num_frames']}"
    K = torch.as_tensor(intrinsics(cams, u), dtype=torch.float32)[None]
    c2ws = torch.as_tensor(cc.get_relative_pose(cams, zero_first_frame_scale=True))[None]
    plucker = cc.ray_condition(K, c2ws, H, W, device="cpu").permute(0, 1, 4, 2, 3).contiguous()

    from PIL import Image

    image = Image.open(h["condition_image"]).convert("RGB")
    generator = torch.Generator(device=model["device"]).manual_seed(int(h["seed"]))
    with torch.no_grad():
        frames = pipeline(
            image=image, pose_embedding=plucker.to(model["device"]), height=H, width=W,
            num_frames=u["num_frames"], num_inference_steps=u["num_inference_steps"],
            min_guidance_scale=u["min_guidance_scale"], max_guidance_scale=u["max_guidance_scale"],
            do_image_process=True, generator=generator, output_type="pt",
        ).frames[0]  # (F, 3, H, W) in [0, 1]
    out = Path(h["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        array = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        Image.fromarray(array).save(out / h["frame_pattern"].format(i))
    return {"frames_dir": str(out), "num_frames": len(frames), "translation_scale": h["scale"].get("factor")}


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(serve.serve(lambda: load(arguments), handle))
