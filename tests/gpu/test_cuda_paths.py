"""Every CUDA branch of gac.masks.attend, the packed block mask, the compiled sampling passes and the vectorised
training forward, each against the dense CPU reference. Skipped, with the reason printed, where there is no GPU.

    python -m pytest -q -rs tests/gpu        # on the GPU machine (tests/README.md)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gac.masks import CAUSAL, FULL, NOISE, attend, dense_mask, flex_block_mask, packed_block_mask

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: run on the GPU machine")

H, G, E = 8, 2, 64


def _qkv(L, C, seed=0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, h, E, generator=g) for n, h in ((L, H), (C, G), (C, G)))
    return q, k, v


def _reference(q, k, v, mask):
    """fp32 dense attention on the CPU with the heads expanded: the definition."""
    rep = H // G
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    s = torch.einsum("lhe,che->hlc", q.float(), k.float()) / E**0.5
    if mask is not None:
        s = s.masked_fill(~mask[None], float("-inf"))
    return torch.einsum("hlc,che->lhe", s.softmax(-1), v.float())


def _packed(lengths=(300, 420), pad_to=1024):
    split_id, split_mode, sample_id, offset = [], [], [], 0
    modes = [CAUSAL, FULL, NOISE, FULL, CAUSAL, NOISE]
    for s, n in enumerate(lengths):
        sizes = np.diff(np.linspace(0, n, len(modes) + 1).astype(int))
        for j, (m, size) in enumerate(zip(modes, sizes)):
            split_id += [offset + j] * size
            split_mode += [m] * size
            sample_id += [s] * size
        offset += len(modes)
    pad = pad_to - len(split_id)
    split_id += [offset] * pad
    split_mode += [FULL] * pad
    sample_id += [-1] * pad
    return (torch.tensor(split_id), torch.tensor(split_mode), torch.tensor(sample_id))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_unmasked_gqa_kernels_equal_the_reference(dtype):
    q, k, v = _qkv(576, 2300)
    out = attend(q.cuda().to(dtype), k.cuda().to(dtype), v.cuda().to(dtype), None).float().cpu()
    np.testing.assert_allclose(out, _reference(q, k, v, None), atol=2e-2)


def test_masked_dense_path_equals_the_reference():
    split_id, split_mode, sample_id = _packed((200, 150), 400)
    mask = dense_mask(split_id, split_mode, sample_id)
    q, k, v = _qkv(400, 400)
    out = attend(q.cuda().bfloat16(), k.cuda().bfloat16(), v.cuda().bfloat16(), mask.cuda()).float().cpu()
    np.testing.assert_allclose(out, _reference(q, k, v, mask), atol=2e-2)


@pytest.mark.parametrize("from_samples", [True, False])
def test_compiled_flex_attention_equals_the_reference(from_samples):
    split_id, split_mode, sample_id = (t.cuda() for t in _packed())
    make = packed_block_mask if from_samples else flex_block_mask
    block_mask = make(split_id, split_mode, sample_id)
    q, k, v = _qkv(1024, 1024)
    out = attend(q.cuda().bfloat16(), k.cuda().bfloat16(), v.cuda().bfloat16(), block_mask).float().cpu()
    ref = _reference(q, k, v, dense_mask(*(t.cpu() for t in (split_id, split_mode, sample_id))))
    np.testing.assert_allclose(out, ref, atol=2e-2)


def test_compiled_sampling_equals_eager_on_the_gpu(tmp_path):
    pytest.importorskip("diffusers")
    from gac.model import build_model, gac_tiny
    from gac.sample import Rollout, SampleConfig
    from gac.testing import fixture_trajectory, render_planes, write_tiny_vae
    from gac.vae import load_vae
    from gac_bench import cameras

    torch.manual_seed(0)
    model = build_model(gac_tiny(), "cuda")
    with torch.no_grad():
        torch.nn.init.normal_(model.llm2vae.weight, std=0.05)
    codec = load_vae(write_tiny_vae(tmp_path / "vae"), "cuda")
    K = cameras.intrinsics_matrix(51.2, 51.2, 32, 16)
    c2w = fixture_trajectory(9)
    img, depth = render_planes(K, c2w[0], 32, 64)
    run = lambda compile_: Rollout(model, codec, SampleConfig(steps=3, compile=compile_, emit_geometry=True),  # noqa: E731
                                   "cuda").run(img, K, c2w, float(np.median(depth)), seed=0)  # fmt: skip
    eager, compiled = run(False), run(True)
    diff = np.abs(eager.frames.astype(int) - compiled.frames.astype(int))
    assert diff.max() <= 3  # float32 tiny model: compiled kernels reorder sums only


def test_vectorised_training_forward_on_the_gpu(tmp_path):
    from gac.data import DataConfig, SampleMaker, load_clip_arrays
    from gac.model import build_model, gac_tiny
    from gac.patch_vae import PatchVAE, PatchVAEConfig
    from gac.testing import write_fixture_clip
    from gac.vae import LatentCodec
    from gac_bench.datasets.re10k import Re10kRawReader

    write_fixture_clip(tmp_path, n=30, height=32, width=64)
    clip = load_clip_arrays(Re10kRawReader(tmp_path / "cameras", tmp_path / "frames", 64, 32, tmp_path / "depth")
                            .load_clip("fix00"))  # fmt: skip
    codec = LatentCodec(PatchVAE(PatchVAEConfig(latent_channels=4, width=32, blocks=1)).cuda())
    maker = SampleMaker([clip], codec, gac_tiny(), DataConfig(frames_per_sample=4, max_stride=2), "cuda")
    rng = np.random.default_rng(0)
    plans = [maker.plan(rng, 0.5) for _ in range(3)]
    seqs = [maker.layout(p, rng, context_noise=0.2) for p in plans]
    pk = maker.build_forward(plans, seqs, torch.Generator(device="cuda").manual_seed(0), pad_to=2048)
    model = build_model(gac_tiny(), "cuda")
    from gac.batching import attention_mask

    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        flex = model(pk.inputs, attention_mask(pk, True)).float()
    cpu_inputs = pk.inputs.to("cpu")
    with torch.no_grad():
        ref = model.cpu()(cpu_inputs, dense_mask(pk.split_id.cpu(), pk.split_mode.cpu(), pk.sample_id.cpu()))
    np.testing.assert_allclose(flex.cpu(), ref, atol=5e-2)


def test_batched_warp_on_the_gpu_equals_the_per_view_warp():
    """Variant #2's training targets are warped on the GPU in one batch (gac.data); the host warps view by view."""
    from gac_bench import cameras
    from gac_bench.pointcloud import warp_batch, warp_reference

    rng = np.random.default_rng(0)
    n, h, w = 8, 72, 128
    K = cameras.intrinsics_matrix(100.0, 100.0, 64.0, 36.0)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depth = np.repeat(np.repeat(rng.uniform(1.0, 4.0, (n, 9, 16)), 8, axis=1), 8, axis=2).astype(np.float32)
    src, dst = np.tile(np.eye(4), (n, 1, 1)), np.tile(np.eye(4), (n, 1, 1))
    dst[:, :3, 3] = rng.uniform(-0.3, 0.3, (n, 3))
    warped, valid = warp_batch(torch.from_numpy(images).cuda(), torch.from_numpy(depth).cuda(), K, src, dst)
    differing = 0
    for i in range(n):
        ref, ref_valid = warp_reference(images[i], depth[i], K, src[i], dst[i])
        differing += int((warped[i].cpu().numpy() != ref).any(-1).sum() + (valid[i].cpu().numpy() != ref_valid).sum())
    assert differing <= 0.001 * n * h * w, differing  # one-ulp crossings of pixel borders only
