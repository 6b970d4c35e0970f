"""Variant #2 (warped context) and point-map geometry through data and sampling; the grid switch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from gac.data import DataConfig, SampleMaker, view_groups  # noqa: E402
from gac.model import build_model, gac_tiny  # noqa: E402
from gac.sample import Rollout, SampleConfig  # noqa: E402
from gac.sequence import build_training_sequence  # noqa: E402
from gac.testing import fixture_clip_and_codec, fixture_trajectory, render_planes  # noqa: E402
from gac_bench import cameras  # noqa: E402
from tests.fixtures import needs_cpu_compiler  # noqa: E402

H, W = 32, 64


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield fixture_clip_and_codec(tmp_path_factory.mktemp("gac_variants"), n=16, height=H, width=W)
    torch.set_num_threads(n)


def test_view_groups_grid_single_reference_and_no_grid():
    cfg = DataConfig(frames_per_sample=3)
    assert view_groups(cfg, True) == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]
    assert view_groups(cfg, False) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert view_groups(DataConfig(frames_per_sample=3, grid=False), True) == [[0], [1], [2]]


@pytest.mark.parametrize("variant,geometry", [("warped", "depth"), ("geometry", "pointmap"), ("none", "depth")])
def test_samples_of_every_variant_build(parts, variant, geometry):
    clip, codec = parts
    maker = SampleMaker([clip], codec, gac_tiny(), DataConfig(frames_per_sample=3, max_stride=1, variant=variant,
                                                              geometry=geometry, single_reference_prob=1.0))  # fmt: skip
    frames, n_ctx = maker.make(np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert len(frames) == 3 and 1 <= n_ctx <= 2
    if variant == "warped":  # the first frame has nothing to be warped from
        assert frames[0].aux is None and all(f.aux is not None for f in frames[1:])
    elif variant == "geometry":
        assert all(f.aux is not None for f in frames)
    else:
        assert all(f.aux is None for f in frames)
    pk = build_training_sequence(gac_tiny(), frames, n_ctx, variant, 0.0, generator=torch.Generator().manual_seed(0))
    assert pk.loss_idx.numel() > 0


@pytest.mark.parametrize("variant,grid", [("warped", True), ("geometry", False)])
def test_rollout_of_other_variants_and_without_grid(parts, variant, grid):
    _, codec = parts
    model = build_model(gac_tiny())
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    c2w = fixture_trajectory(6)
    img, depth = render_planes(K, c2w[0], H, W)
    cfg = SampleConfig(steps=1, grid=grid, variant=variant, emit_geometry=True)
    reports = []
    out = Rollout(model, codec, cfg).run(img, K, c2w, float(np.median(depth)), seed=0,
                                         on_frames=lambda done, total: reports.append((done, total)))  # fmt: skip
    assert out.frames.shape == (6, H, W, 3)
    assert len(out.contexts) == (2 if grid else 5)
    # progress after every generated item: frames 2..6 one at a time, or grids of four (frames 1-4, then 5)
    assert reports == ([(5, 6), (6, 6)] if grid else [(k, 6) for k in range(2, 7)])
    assert (out.depth is not None) == (variant == "geometry")


@pytest.mark.parametrize("after_image", [True, False])
def test_emitted_geometry_covers_every_view_whatever_retrieval_keeps(parts, after_image):
    """Retrieval without the most recent frame (the method's default) must still give every view its geometry.
    Sampled right after each image (the default), retrieval is exactly what it is without geometry; sampled once the
    view is the newest context frame (before), the newest frame is forced into context, last."""
    from gac.retrieval import RetrievalConfig

    _, codec = parts
    torch.manual_seed(3)
    model = build_model(gac_tiny())
    torch.nn.init.normal_(model.llm2vae.weight, std=0.3)
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    forth = fixture_trajectory(5)
    c2w = np.concatenate([forth, forth[-2::-1]])  # forth and back: on the way back retrieval skips the newest frame
    img, depth = render_planes(K, c2w[0], H, W)
    retrieval = RetrievalConfig(context_size=2, keep_recent=False)
    cfg = SampleConfig(steps=1, grid=False, emit_geometry=True, geometry_after_image=after_image, retrieval=retrieval)
    scale = float(np.median(depth))
    out = Rollout(model, codec, cfg).run(img, K, c2w, scale, seed=0)
    assert all(np.abs(out.depth[v]).max() > 0 for v in range(9)), [float(np.abs(d).max()) for d in out.depth]
    plain = Rollout(model, codec, dataclasses.replace(cfg, emit_geometry=False)).run(img, K, c2w, scale, seed=0)
    newest_last = [ctx[-1] == i for i, ctx in enumerate(out.contexts)]
    if after_image:
        assert out.contexts == plain.contexts and not all(newest_last)  # retrieval untouched: it drops the newest
        assert not np.array_equal(out.frames, plain.frames)  # the geometry items are read as context
    else:
        assert all(newest_last)


def test_context_noise_augments_generated_items_and_leaves_the_reference_clean(parts):
    """context_t: every generated item enters the cache at flow time context_t; the reference image at t = 0."""
    _, codec = parts
    torch.manual_seed(4)
    model = build_model(gac_tiny())
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    c2w = fixture_trajectory(6)
    img, depth = render_planes(K, c2w[0], H, W)
    scale = float(np.median(depth))
    item_t: list[torch.Tensor] = []  # flow times of each latent item written to the cache

    def record(_module, args, kwargs):
        if kwargs.get("write_cache") and args[0].latents.shape[0] > 0:
            item_t.append(args[0].timesteps.detach().clone())

    cfg = SampleConfig(steps=1, grid=False, emit_geometry=True, context_t=0.2)
    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    noisy = Rollout(model, codec, cfg).run(img, K, c2w, scale, seed=0)
    handle.remove()
    clean_items = [t for t in item_t if (t == 0).all()]
    augmented = [t for t in item_t if torch.allclose(t, torch.tensor(0.2))]
    assert len(clean_items) + len(augmented) == len(item_t)  # each item all at 0 or all at 0.2
    assert len(clean_items) == 5  # the reference image, once per target frame (it is always retrieved)
    assert len(augmented) >= 5 + 5  # each generated image and each geometry item at least once
    clean = Rollout(model, codec, dataclasses.replace(cfg, context_t=0.0)).run(img, K, c2w, scale, seed=0)
    assert not np.array_equal(noisy.frames[2:], clean.frames[2:])
    with pytest.raises(ValueError, match="context_t"):
        SampleConfig(context_t=1.0)


@needs_cpu_compiler
def test_compiled_rollout_equals_eager(parts):
    """Every unmasked pass of a rollout (grid and one-view items, growing caches, geometry) through the compiled
    layers gives the eager frames and depth."""
    _, codec = parts
    torch.manual_seed(9)
    model = build_model(gac_tiny())
    torch.nn.init.normal_(model.llm2vae.weight, std=0.3)
    for layer in model.layers:
        torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.1)
    K = cameras.intrinsics_matrix(0.8 * W, 0.8 * W, W / 2, H / 2)
    c2w = fixture_trajectory(10)
    img, depth = render_planes(K, c2w[0], H, W)
    cfg = SampleConfig(steps=2, emit_geometry=True)
    eager = Rollout(model, codec, cfg).run(img, K, c2w, float(np.median(depth)), seed=0)
    model.compile_sampling()
    compiled = Rollout(model, codec, cfg).run(img, K, c2w, float(np.median(depth)), seed=0)
    assert np.abs(eager.frames.astype(int) - compiled.frames.astype(int)).max() <= 1
    np.testing.assert_allclose(compiled.depth, eager.depth, rtol=1e-3, atol=1e-4)


def test_batched_warps_of_several_samples_equal_the_per_view_warps(parts):
    """Variant #2's targets of a whole forward, warped in one batch (the CUDA path, here on the CPU), equal the
    per-view warps, in aux-bank order and across samples."""
    clip, codec = parts
    maker = SampleMaker([clip], codec, gac_tiny(), DataConfig(frames_per_sample=3, max_stride=2, variant="warped",
                                                              single_reference_prob=1.0))  # fmt: skip
    rng = np.random.default_rng(3)
    plans = [maker.plan(rng, 0.0) for _ in range(3)]
    views = [maker._aux_views(pl) for pl in plans]
    assert sum(map(len, views)) >= 6
    per_view = maker._warped_images_batch(plans, views)
    maker.batch_warps = True
    batched = maker._warped_images_batch(plans, views)
    assert batched.shape == per_view.shape == (sum(map(len, views)), 3, H, W)
    assert torch.equal(batched, per_view)
    first = maker._warped_images_batch(plans[:1], views[:1])  # order: the first sample's views come first
    assert torch.equal(batched[: len(views[0])], first)
