"""gac-bench worker for HunyuanWorld-Voyager. Runs INSIDE the Voyager environment; stdlib + that env only.

Started once per run by ``baselines/voyager/method.py`` with the repository root as working directory:

    <env python> upstream_worker.py --repo CHECKOUT --ckpt MODEL_BASE [--infer-steps 50] [--cpu-offload] ...

Ops:
* ``depth``: MoGe (``Ruicheng/moge-vitl``, as ``data_engine/create_input.py``) on the given image, infinite
  depths replaced by max + 1e4, saved as .npy for the adapter, which builds the condition renders itself.
* ``generate``: converts the adapter's ``depth_XXXX.npy`` / ``ref_depth.npy`` to the ``.exr`` files Voyager
  reads (pyexr, as create_input does), calls ``HunyuanVideoSampler.predict`` with the 49 condition frames
  exactly as ``sample_image2video.py`` builds them, and splits the output (RGB above depth) into PNG frames
  and, for the frames listed in ``harness.want_depth``, normalised-depth .npy files.
Written against sample_image2video.py / data_engine/create_input.py as carried by the fork
dmax101/HunyuanWorld-Voyager (23471a21725b350c41554654859c90ea1893f39a); not run in gac-bench's CI.
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
    p.add_argument("--device", default="cuda")
    p.add_argument("--infer-steps", type=int, default=50)
    p.add_argument("--flow-shift", type=float, default=7.0)
    p.add_argument("--embedded-cfg-scale", type=float, default=6.0)
    p.add_argument("--cpu-offload", action="store_true")
    p.add_argument("--context-block", action="store_true")
    return p.parse_args(argv)


def voyager_argv(args, save_path):
    """The README's sample_image2video.py command line (input path and prompt are given per job)."""
    argv = ["--model", "HYVideo-T/2", "--input-path", save_path, "--prompt", "placeholder", "--i2v-stability",
            "--infer-steps", str(args.infer_steps), "--flow-reverse", "--flow-shift", str(args.flow_shift),
            "--seed", "0", "--embedded-cfg-scale", str(args.embedded_cfg_scale), "--save-path", save_path,
            "--model-base", args.ckpt]
    argv += ["--use-cpu-offload"] if args.cpu_offload else []
    return argv + (["--use-context-block"] if args.context_block else [])


def load(args):
    os.chdir(args.repo)
    sys.path.insert(0, args.repo)
    os.environ.setdefault("MODEL_BASE", args.ckpt)
    import torch
    from voyager.config import parse_args as voyager_parse_args
    from voyager.inference import HunyuanVideoSampler

    save_path = os.path.join(args.repo, "results", "gac_bench_worker")
    sys.argv = [sys.argv[0]] + voyager_argv(args, save_path)  # voyager.config reads sys.argv
    vargs = voyager_parse_args()
    sampler = HunyuanVideoSampler.from_pretrained(Path(vargs.model_base), args=vargs)
    return {"torch": torch, "sampler": sampler, "args": sampler.args, "moge": None}


def moge_depth(model, job):
    import numpy as np
    from PIL import Image

    torch = model["torch"]
    if model["moge"] is None:
        from moge.model.v1 import MoGeModel

        model["moge"] = MoGeModel.from_pretrained("Ruicheng/moge-vitl").to("cuda")
    image = np.asarray(Image.open(job["image"]).convert("RGB"))
    tensor = torch.tensor(image / 255, dtype=torch.float32, device="cuda").permute(2, 0, 1)
    depth = model["moge"].infer(tensor)["depth"].detach().cpu().numpy()
    depth[np.isinf(depth)] = depth[~np.isinf(depth)].max() + 1e4
    np.save(job["output"], depth.astype(np.float32))
    return {"depth": job["output"]}


def to_exr(npy_path):
    import numpy as np
    import pyexr

    exr = str(npy_path)[: -len(".npy")] + ".exr"
    pyexr.write(exr, np.load(npy_path))
    return exr


def condition_lists(input_path, n):
    """ref_images / partial_cond / partial_mask as sample_image2video.py builds them (EXR written here)."""
    video = os.path.join(input_path, "video_input")
    ref = [(os.path.join(input_path, "ref_image.png"), to_exr(os.path.join(input_path, "ref_depth.npy")))]
    renders = [os.path.join(video, f"render_{j:04d}.png") for j in range(n)]
    cond = [(r, to_exr(os.path.join(video, f"depth_{j:04d}.npy"))) for j, r in enumerate(renders)]
    mask = [(os.path.join(video, f"mask_{j:04d}.png"),) * 2 for j in range(n)]
    return ref, cond, mask


def generate(model, job):
    import numpy as np
    from PIL import Image

    h, u = job["harness"], job["upstream"]
    args, n = model["args"], u["video_length"]
    ref, cond, mask = condition_lists(u["input_path"], n)
    outputs = model["sampler"].predict(
        prompt=u["prompt"], height=u["height"], width=u["width"], video_length=n, seed=int(h["seed"]),
        negative_prompt=args.neg_prompt, infer_steps=args.infer_steps, guidance_scale=args.cfg_scale,
        num_videos_per_prompt=1, flow_shift=args.flow_shift, batch_size=1,
        embedded_guidance_scale=args.embedded_cfg_scale, i2v_mode=args.i2v_mode, i2v_resolution=args.i2v_resolution,
        i2v_image_path=ref[0][0], i2v_condition_type=args.i2v_condition_type, i2v_stability=args.i2v_stability,
        ulysses_degree=args.ulysses_degree, ring_degree=args.ring_degree,
        ref_images=ref, partial_cond=cond, partial_mask=mask,
    )
    sample = outputs["samples"][0].float().clamp(0, 1).cpu().numpy()  # (C, T, 2H, W): RGB above depth
    height = u["height"]
    out = Path(h["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    frames = sample.shape[1]
    for i in range(frames):
        rgb = (sample[:, i, :height].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(out / h["frame_pattern"].format(i))
    for i in h.get("want_depth") or []:  # the normalised depth of the frames the next call starts from
        np.save(out / f"depth_{i:04d}.npy", sample[:, i, height:].mean(axis=0).astype(np.float32))
    return {"frames_dir": str(out), "num_frames": frames, "translation_scale": u.get("translation_factor")}


def handle(model, message):
    job = serve.read_job(message)
    return moge_depth(model, job) if message["op"] == "depth" else generate(model, job)


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(serve.serve(lambda: load(arguments), handle))
