"""gac-bench worker for ViewCrafter. Runs INSIDE the ViewCrafter environment (Python 3.9, torch 1.13, PyTorch3D).

Started once per run by ``baselines/viewcrafter/method.py`` with the repository root as working directory
(ViewCrafter appends ``./extern/dust3r`` to ``sys.path`` relative to it):

    <env python> upstream_worker.py --repo CHECKOUT --ckpt model.ckpt --dust3r DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth

Per job: DUSt3R on the duplicated reference (cached for all chunks of a clip), the reference camera becomes
the world origin, the point cloud is rendered with the job's PyTorch3D cameras (translations times the scale
factor), render 0 is replaced by the conditioning image, and ``run_diffusion`` produces 25 frames.
Written against ViewCrafter commit 19196985d671e3fe7b633844202b534530780469 (viewcrafter.py) and
1af13188107b8fb8e805bae7ba0c7d2628930c4e (utils/pvd_utils.py); not run in gac-bench's CI.
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
    p.add_argument("--dust3r", required=True)
    p.add_argument("--device", default="cuda")
    return p.parse_args(argv)


def load(args):
    os.chdir(args.repo)
    sys.path.insert(0, args.repo)
    import torch
    from configs.infer_config import get_parser
    from viewcrafter import ViewCrafter

    device = "cuda:0" if args.device == "cuda" else args.device
    opts = get_parser().parse_args([
        "--ckpt_path", args.ckpt, "--model_path", args.dust3r, "--device", device,
        "--config", "configs/inference_pvd_1024.yaml", "--height", "576", "--width", "1024", "--video_length", "25",
    ])
    opts.save_dir = os.path.join(args.repo, "output", "gac_bench_worker")
    os.makedirs(opts.save_dir, exist_ok=True)
    return {"torch": torch, "vc": ViewCrafter(opts, gradio=True), "device": device, "cache": {}}


def image_tensor(torch, path, device):
    """PNG -> (1, 3, H, W) float in [-1, 1], ViewCrafter's image convention."""
    import numpy as np
    from PIL import Image

    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].to(device)


def reconstruct(model, reference_path):
    """DUSt3R on the duplicated reference, once per clip: depth, colours, focal of view 0 at 512x288."""
    if model["cache"].get("path") == reference_path:
        return model["cache"]
    from utils.pvd_utils import get_input_dict

    torch, vc = model["torch"], model["vc"]
    ref = image_tensor(torch, reference_path, model["device"])
    vc.run_dust3r(input_images=[get_input_dict(ref, 0), get_input_dict(ref, 1)])
    scene = vc.scene
    c2w0 = scene.get_im_poses().detach()[0]
    pts = scene.get_pts3d()[0].detach()  # (288, 512, 3) in DUSt3R's world
    pts_cam0 = (pts - c2w0[:3, 3]) @ c2w0[:3, :3]  # world -> camera 0 (world_point_to_kth)
    model["cache"] = {
        "path": reference_path,
        "depth": scene.get_depthmaps()[0].detach(),
        "pts_cam0": pts_cam0,
        "colors": torch.as_tensor(scene.imgs[0]).to(pts.device),
        "focal": float(scene.get_focals().detach()[0].reshape(-1)[0]),
        "pp": scene.get_principal_points().detach()[0].tolist(),
    }
    return model["cache"]


def unproject(torch, depth, fx, fy, cx, cy):
    """Pixel-centre unprojection of a z-depth map (H, W) in the camera frame (OpenCV axes)."""
    H, W = depth.shape
    v, u = torch.meshgrid(torch.arange(H, device=depth.device), torch.arange(W, device=depth.device), indexing="ij")
    x = (u + 0.5 - cx) / fx * depth
    y = (v + 0.5 - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def scale_factor(spec, depth):
    if spec["policy"] == "fixed":
        return float(spec["factor"])
    d = depth[depth > 0]
    return float(d.median()) / float(spec["harness_median_depth"])


def handle(model, message):
    import numpy as np
    from PIL import Image
    from pytorch3d.renderer import PerspectiveCameras
    from pytorch_lightning import seed_everything

    torch, vc, device = model["torch"], model["vc"], model["device"]
    job = serve.read_job(message)
    h, u = job["harness"], job["upstream"]
    rec = reconstruct(model, u["reference_image"])
    factor = scale_factor(h["scale"], rec["depth"])
    (rh, rw), n = u["render_hw"], u["video_length"]
    if u["intrinsics"] == "harness":
        (fx, fy), (cx, cy) = u["focal_px"], u["principal_point_px"]
        points = unproject(torch, rec["depth"], fx, fy, cx, cy)
    else:
        fx = fy = rec["focal"]
        cx, cy = rec["pp"]
        points = rec["pts_cam0"]
    R = torch.as_tensor(np.load(u["R_p3d"]), dtype=torch.float32, device=device)
    T = torch.as_tensor(np.load(u["T_p3d"]), dtype=torch.float32, device=device) * factor
    cams = PerspectiveCameras(
        focal_length=torch.tensor([[fx, fy]] * n, device=device),
        principal_point=torch.tensor([[cx, cy]] * n, device=device),
        in_ndc=False, image_size=((rh, rw),), R=R, T=T, device=device,
    )
    renders, _ = vc.run_render([points.reshape(rh, rw, 3)], [rec["colors"].cpu().numpy()], None, rh, rw, cams, n)
    vh, vw = u["video_hw"]
    renders = torch.nn.functional.interpolate(
        renders.permute(0, 3, 1, 2), size=(vh, vw), mode="bilinear", align_corners=False
    ).permute(0, 2, 3, 1)
    renders[0] = (image_tensor(torch, h["condition_image"], device)[0].permute(1, 2, 0) + 1.0) / 2.0
    vc.opts.ddim_steps, vc.opts.ddim_eta = u["ddim_steps"], u["ddim_eta"]
    vc.opts.unconditional_guidance_scale, vc.opts.prompt = u["unconditional_guidance_scale"], u["prompt"]
    seed_everything(int(h["seed"]))
    frames = vc.run_diffusion(renders)  # (25, 576, 1024, 3) in [-1, 1]
    out = Path(h["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        array = ((frame + 1.0) * 127.5).clamp(0, 255).round().byte().cpu().numpy()
        Image.fromarray(array).save(out / h["frame_pattern"].format(i))
    return {"frames_dir": str(out), "num_frames": len(frames), "translation_scale": factor}


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(serve.serve(lambda: load(arguments), handle))
