"""The vectorised training forward equals the item-by-item reference (build_training_sequence + packing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gac.batch_builder import assemble, patchify_views, ray_patches_views
from gac.batching import attention_mask
from gac.data import DataConfig, SampleMaker, load_clip_arrays
from gac.geometry import patchify, ray_patches
from gac.model import build_model, gac_tiny
from gac.patch_vae import PatchVAE, PatchVAEConfig
from gac.sequence import build_training_sequence
from gac.testing import write_fixture_clip
from gac.vae import LatentCodec
from gac_bench.datasets.re10k import Re10kRawReader
from tests.packing_reference import pack_and_pad

H, W, C = 32, 64, 4


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("bb")
    for i in range(2):
        write_fixture_clip(root, clip_id=f"fix{i}", n=30, height=H, width=W, seed=i)
    reader = Re10kRawReader(root / "cameras", root / "frames", W, H, root / "depth")
    return [load_clip_arrays(reader.load_clip(f"fix{i}")) for i in range(2)]


def _deterministic_codec() -> LatentCodec:
    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(latent_channels=C, width=32, blocks=1))
    with torch.no_grad():
        vae.enc_head.bias[C:] = -30.0  # posterior std ~3e-7: both paths see the same latents
    return LatentCodec(vae)


def _maker(clips, **kw) -> SampleMaker:
    cfg = DataConfig(frames_per_sample=4, max_stride=2, **kw)
    maker = SampleMaker(clips, _deterministic_codec(), gac_tiny(), cfg)
    maker.std_all.zero_()
    return maker


def test_batched_patchify_and_ray_patches_equal_per_view():
    x = torch.randn(3, C, 4, 8)
    np.testing.assert_array_equal(patchify_views(x, 2), torch.cat([patchify(v, 2) for v in x]))
    r = torch.randn(3, 6, 32, 64)
    np.testing.assert_array_equal(ray_patches_views(r, 16), torch.cat([ray_patches(v, 16) for v in r]))


@pytest.mark.parametrize("variant,extra", [
    ("geometry", dict(pose_anchor="last-context", max_gap=1, revisit_prob=0.5)),
    ("none", {}),
    ("geometry", dict(geometry="pointmap")),
    ("warped", {}),
])  # fmt: skip
def test_vectorised_forward_equals_reference_packing(clips, variant, extra):
    maker = _maker(clips, variant=variant, **extra)
    rng = np.random.default_rng(3)
    plans = [maker.plan(rng, geometry_dropout=0.5) for _ in range(3)]
    seqs = [maker.layout(pl, np.random.default_rng(i)) for i, pl in enumerate(plans)]
    total = sum(s.length for s in seqs)
    pad = (total // 128 + 1) * 128
    fast = maker.build_forward(plans, seqs, torch.Generator().manual_seed(0), pad_to=pad)

    samples = maker.make_batch(plans, torch.Generator().manual_seed(1))
    ref = pack_and_pad([build_training_sequence(maker.mcfg, frames, n_ctx, variant, 0.0,
                                                generator=torch.Generator().manual_seed(2))
                        for frames, n_ctx in samples], pad)  # fmt: skip

    for name in ("text_ids", "und_idx", "gen_idx", "rope_ids", "pos2d"):
        np.testing.assert_array_equal(getattr(fast.inputs, name), getattr(ref.inputs, name), err_msg=name)
    for name in ("split_id", "split_mode", "sample_id", "loss_idx", "loss_modality"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    np.testing.assert_allclose(fast.inputs.rays, ref.inputs.rays, atol=1e-6)
    np.testing.assert_array_equal(fast.inputs.timesteps == 0, ref.inputs.timesteps == 0)
    clean = ref.inputs.timesteps == 0
    np.testing.assert_allclose(fast.inputs.latents[clean], ref.inputs.latents[clean], atol=1e-5)
    # loss rows: the same clean x0 under each path's own noise and t: x0 = x_t - t * v
    def x0(pk):
        t = pk.inputs.timesteps[pk.loss_idx][:, None]
        return pk.inputs.latents[pk.loss_idx] - t * pk.v_target

    np.testing.assert_allclose(x0(fast), x0(ref), atol=1e-4)


def test_vectorised_forward_runs_through_the_model_with_both_masks(clips):
    maker = _maker(clips)
    rng = np.random.default_rng(0)
    plans = [maker.plan(rng, 0.5) for _ in range(2)]
    seqs = [maker.layout(pl, rng, context_noise=0.3) for pl in plans]
    pk = maker.build_forward(plans, seqs, torch.Generator().manual_seed(0), pad_to=1024)
    assert pk.inputs.length == 1024 and int((pk.sample_id == -1).sum()) == 1024 - sum(s.length for s in seqs)
    noisy_context = (pk.inputs.timesteps > 0) & (pk.inputs.timesteps < 0.3)
    assert noisy_context.any()  # clean items carry their noise level
    model = build_model(gac_tiny())
    with torch.no_grad():
        a = model(pk.inputs, attention_mask(pk, use_flex=False))
        b = model(pk.inputs, attention_mask(pk, use_flex=True))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_swapped_targets_read_the_first_views_rays(clips):
    maker = _maker(clips)
    plan = maker.plan(np.random.default_rng(0), 0.0)
    true = maker.layout(plan, np.random.default_rng(1), fixed_t=0.5)
    swap = maker.layout(plan, np.random.default_rng(1), fixed_t=0.5, swap_targets=True)
    T = maker.layouts.T
    target = true.loss | (true.ray_row != swap.ray_row)
    assert (swap.ray_row[swap.loss] < T).all()  # every generated token reads view 0's patches
    np.testing.assert_array_equal(true.bank_row, swap.bank_row)
    assert target.any() and (true.ray_row[~target] == swap.ray_row[~target]).all()


def test_assemble_refuses_a_forward_too_small(clips):
    maker = _maker(clips)
    plan = maker.plan(np.random.default_rng(0))
    seq = maker.layout(plan, np.random.default_rng(0))
    banks = maker.device_banks([plan], [seq], None)
    with pytest.raises(ValueError, match="do not fit"):
        assemble([seq], banks, maker.layouts.T, "cpu", None, pad_to=seq.length - 1)


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_activation_checkpointing_gives_the_same_gradients(clips, mode):
    """Recompute changes memory, never the numbers: loss and gradients equal the plain backward (fp32, CPU)."""
    from gac.batching import per_row_loss

    maker = _maker(clips)
    rng = np.random.default_rng(1)
    plans = [maker.plan(rng, 0.5) for _ in range(2)]
    seqs = [maker.layout(pl, rng) for pl in plans]
    pk = maker.build_forward(plans, seqs, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = build_model(gac_tiny())
    with torch.no_grad():  # non-zero output head and CGA, so every path carries gradient
        for p in (model.llm2vae.weight, *[layer.attn.cga.proj.weight for layer in model.layers]):
            p.normal_(std=0.02)
    model.train()
    grads = {}
    for ac in ("none", mode):
        model.activation_checkpointing = ac
        model.zero_grad(set_to_none=True)
        loss = per_row_loss(model(pk.inputs, attention_mask(pk, False)), pk).mean()
        loss.backward()
        grads[ac] = (float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    (l0, g0), (l1, g1) = grads["none"], grads[mode]
    assert l0 == pytest.approx(l1, rel=1e-6) and g0.keys() == g1.keys() and len(g0) > 20
    for name in g0:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-5, atol=1e-7, err_msg=name)
