"""Time the scoring of one 64-frame clip (frames 1..63 scored): PSNR+SSIM, LPIPS, Inception features.

TIMING ONLY. LPIPS uses a RANDOM AlexNet backbone (``pnet_rand=True``) and the Inception network has RANDOM
weights: the numbers they produce are meaningless and are never printed; only wall time is measured (the
cost of a forward pass does not depend on the weight values). Optional: the split-level pooled FID + KID on
synthetic 2048-d features (``--pooled-frames``, e.g. 9450 = 150 clips x 63 frames).

    python benchmarks/bench_scoring.py --resolutions 256x144 --out bench_scoring.jsonl
    python benchmarks/bench_scoring.py --devices cuda --resolutions 640x352,256x144 --pooled-frames 9450 --out ...

Prints one JSON line per measurement and appends the same lines to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from gac_bench.metrics import fid

SCORED_FRAMES = 63  # a 64-frame clip, frame 0 is the input and is not scored
RANDOM_WEIGHTS = "RANDOM weights, timing only"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int, warmup: bool = True) -> tuple[list[float], list[float]]:
    """Wall seconds and process CPU seconds (all threads) per repeat, after one warm-up call."""
    if warmup:
        fn()  # lazy init, cudnn autotune, allocator
        _sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _to_float01(frames_uint8: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1], the pixel metrics' convention."""
    return torch.from_numpy(frames_uint8).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def psnr_ssim_fn(gen: np.ndarray, gt: np.ndarray, device: str):
    """The harness's own PSNR/SSIM (what `gac-bench run` calls): torch on CUDA, OpenCV-filtered SSIM on the CPU."""
    from gac_bench.metrics.image import psnr_per_frame, ssim_per_frame

    def run():
        return psnr_per_frame(gen, gt, device), ssim_per_frame(gen, gt, device)

    return run


def lpips_fn(gen: np.ndarray, gt: np.ndarray, device: str):
    import lpips

    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).to(device).eval()  # RANDOM backbone: timing only

    @torch.inference_mode()
    def run():
        a, b = _to_float01(gen, device) * 2 - 1, _to_float01(gt, device) * 2 - 1  # LPIPS takes [-1, 1]
        return net(a, b).flatten().cpu()

    return run


@contextlib.contextmanager
def _no_weight_loading():
    """Build torch-fidelity's Inception without loading (or downloading) any weights."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    saved = fe.load_state_dict_from_url, fe.FeatureExtractorInceptionV3.load_state_dict
    fe.load_state_dict_from_url = lambda *a, **k: None
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, *a, **k: None
    try:
        yield fe
    finally:
        fe.load_state_dict_from_url, fe.FeatureExtractorInceptionV3.load_state_dict = saved


def random_inception(device: str) -> torch.nn.Module:
    """Inception-v3 with RANDOM weights, for timing only: same architecture and input path as the real one."""
    with _no_weight_loading() as fe:
        extractor = fe.FeatureExtractorInceptionV3("inception-v3-compat", [fid.INCEPTION_FEATURE])
    return fid.InceptionPool3(extractor, weights_path=None).to(device).eval()


def inception_fn(gen: np.ndarray, device: str, batch_size: int):
    model = random_inception(device)
    return lambda: fid.inception_features(model, gen, device, batch_size=batch_size)


def pooled_fn(n_frames: int):
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(n_frames, 2048)), rng.normal(size=(n_frames, 2048)) + 0.05
    return {
        "fid_pooled": lambda: fid.fid_from_features(gen, ref),
        "kid_pooled": lambda: fid.kid_from_features(gen, ref, subsets=100, subset_size=1000),
    }


def _record(measure, device, hw, frames, timed, weights, **extra) -> dict:
    times, cpu_times = timed
    median = statistics.median(times)
    rec = {
        "bench": "scoring",
        "measure": measure,
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu",
        "height": hw[0] if hw else None,
        "width": hw[1] if hw else None,
        "frames": frames,
        "seconds_median": round(median, 4),
        "seconds_all": [round(t, 4) for t in times],
        "ms_per_frame": round(1000 * median / frames, 3) if frames else None,
        "cpu_seconds_median": round(statistics.median(cpu_times), 4),  # less sensitive to other processes
        "weights": weights,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg_1min": round(os.getloadavg()[0], 2),  # CPU timings on a shared machine are only as good as this
    }
    rec.update(extra)
    return rec


def _emit(rec: dict, out: Path | None) -> None:
    line = json.dumps(rec)
    print(line, flush=True)
    if out is not None:
        with open(out, "a") as f:
            f.write(line + "\n")


def bench_clip(device: str, height: int, width: int, args, out: Path | None) -> None:
    rng = np.random.default_rng(0)
    gen = rng.integers(0, 256, size=(SCORED_FRAMES, height, width, 3), dtype=np.uint8)
    gt = rng.integers(0, 256, size=(SCORED_FRAMES, height, width, 3), dtype=np.uint8)
    batch = {"batch_size": args.batch_size}
    cases = [
        ("psnr_ssim", psnr_ssim_fn(gen, gt, device), "none", {}),
        ("lpips_alex", lpips_fn(gen, gt, device), "RANDOM AlexNet backbone (pnet_rand=True), timing only", {}),
        ("inception_pool3", inception_fn(gen, device, args.batch_size), RANDOM_WEIGHTS, batch),
    ]
    for measure, fn, weights, extra in cases:
        timed = _time(fn, device, args.repeats)
        _emit(_record(measure, device, (height, width), SCORED_FRAMES, timed, weights, **extra), out)


def _devices(spec: str) -> list[str]:
    if spec == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return spec.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="auto", help="auto (cpu, and cuda when available) or e.g. cuda,cpu")
    parser.add_argument("--resolutions", default="640x352,256x144", help="WIDTHxHEIGHT,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="Inception batch size")
    parser.add_argument("--pooled-frames", type=int, default=0, help="also time pooled FID+KID on N x 2048 features")
    parser.add_argument("--out", type=Path, default=None, help="append the JSON lines here")
    args = parser.parse_args()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    for device in _devices(args.devices):
        for res in args.resolutions.split(","):
            width, height = (int(v) for v in res.lower().split("x"))
            bench_clip(device, height, width, args, args.out)
    if args.pooled_frames:
        for measure, fn in pooled_fn(args.pooled_frames).items():
            timed = _time(fn, "cpu", 1, warmup=False)  # numpy float64 on the CPU whatever the device
            _emit(_record(measure, "cpu", None, args.pooled_frames, timed, "synthetic features", dims=2048), args.out)


if __name__ == "__main__":
    main()
