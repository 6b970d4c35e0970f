"""Training-sample layouts: gaps, revisits (forth-and-back), pose anchors, and the camera conditioning modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gac.data import DataConfig, plan_sample, view_groups, view_positions
from gac.model import GaCConfig, build_model, gac_tiny
from gac.sequence import FrameData, build_training_sequence
from gac import geometry as geo


def test_revisit_retraces_the_path_like_forth_and_back():
    groups = [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    pos = view_positions(13, groups, [0, 0, 0, 0], turn=6)
    assert pos.tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 5, 4, 3, 2, 1]
    # the evaluation's forth-and-back: frame 32 + k has the pose of frame 31 - k
    eval_like = view_positions(64, [list(range(64))], [0], turn=31)
    assert eval_like[32] == 31 and eval_like[63] == 0


def test_gaps_skip_whole_grid_frames():
    groups = [[0], [1, 2, 3, 4], [5, 6, 7, 8]]
    pos = view_positions(9, groups, [0, 2, 1], turn=None)
    assert pos.tolist() == [0, 9, 10, 11, 12, 17, 18, 19, 20]


def test_plans_fit_the_clip_and_anchor_where_asked():
    cfg = DataConfig(frames_per_sample=8, max_gap=2, revisit_prob=0.5, pose_anchor="last-context", max_stride=6)
    rng = np.random.default_rng(0)
    turned = 0
    for _ in range(200):
        p = plan_sample(rng, cfg, [200], geometry_dropout=0.5)
        assert p.source.min() >= 0 and p.source.max() < 200
        assert p.anchor == p.groups[p.num_context - 1][-1]
        steps = np.diff(p.source)
        turned += bool((steps < 0).any())
        assert len(p.keep_aux) == 8
    assert 50 < turned < 150  # about half the samples retrace their path
    first = plan_sample(np.random.default_rng(1), DataConfig(), [200])
    assert first.anchor == 0 and np.all(np.diff(first.source) > 0)


def test_spans_reach_the_evaluation_span_with_gaps():
    cfg = DataConfig(max_gap=2, max_stride=4, min_stride=4)
    rng = np.random.default_rng(0)
    spans = [np.ptp(plan_sample(rng, cfg, [200]).source) for _ in range(100)]
    assert max(spans) >= 189  # 64 frames at stride 3 span source frames 0..189


def test_short_clip_drops_gaps_then_stride_before_failing():
    cfg = DataConfig(frames_per_sample=3, max_gap=3, max_stride=4)
    p = plan_sample(np.random.default_rng(0), cfg, [9])
    assert p.source.max() < 9
    with pytest.raises(ValueError, match="a sample needs"):
        plan_sample(np.random.default_rng(0), cfg, [5])
    assert cfg.min_clip_frames() == 9 and view_groups(cfg, True)[-1][-1] == 8


# ---------------------------------------------------------------------------------------------- camera modes


def _sample(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = []
    for _ in range(3):
        rays = [torch.randn(6, 32, 64, generator=g) for _ in range(2)]
        lat = [torch.randn(cfg.latent_channels, 4, 8, generator=g) for _ in range(2)]
        frames.append(FrameData(geo.make_item(lat, rays, [0, 1], cfg, 2)))
    return frames


def _velocity(model, frames, rays_scale=1.0):
    cfg = model.cfg
    scaled = [FrameData(geo.LatentItem(f.image.tokens, f.image.rays * rays_scale, f.image.pos2d, f.image.cells))
              for f in frames]  # fmt: skip
    pk = build_training_sequence(cfg, scaled, 1, "none", 0.0, generator=torch.Generator().manual_seed(0))
    from gac.masks import dense_mask

    with torch.no_grad():
        return model(pk.inputs, dense_mask(pk.split_id, pk.split_mode))


@pytest.mark.parametrize("camera", ["cga", "add", "none"])
def test_each_camera_mode_runs_and_uses_rays_only_when_it_should(camera):
    torch.manual_seed(0)
    model = build_model(gac_tiny(camera=camera))
    with torch.no_grad():
        torch.nn.init.normal_(model.llm2vae.weight, std=0.05)
        for layer in model.layers:
            if layer.attn.cga is not None:
                torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.05)
    frames = _sample(model.cfg)
    v, v2 = _velocity(model, frames), _velocity(model, frames, rays_scale=2.0)
    assert torch.isfinite(v).all()
    assert (v - v2).abs().max() > 1e-4 if camera != "none" else torch.equal(v, v2)
    assert (model.ray_embed is None) == (camera == "none")
    if camera == "add":
        assert model.ray_embed.out_channels == model.cfg.hidden_size and model.layers[0].attn.cga is None


def test_cga_starts_neutral_rays_change_nothing_at_init():
    torch.manual_seed(0)
    model = build_model(gac_tiny(camera="cga"))
    torch.nn.init.normal_(model.llm2vae.weight, std=0.05)
    frames = _sample(model.cfg)
    assert torch.equal(_velocity(model, frames), _velocity(model, frames, rays_scale=3.0))


def test_configs_written_before_camera_modes_still_load():
    d = gac_tiny().to_dict()
    d.pop("camera")
    assert GaCConfig.from_dict({**d, "use_cga": False}).camera == "none"
    assert GaCConfig.from_dict({**d, "use_cga": True}).camera == "cga"
    assert gac_tiny(use_cga=False).camera == "none"
    with pytest.raises(ValueError, match="camera must be one of"):
        gac_tiny(camera="concat")


def test_resize_clip_scales_pixels_and_intrinsics_per_axis():
    from gac.data import ClipArrays, resize_clip

    H, W, F = 144, 256, 3
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(F, H, W, 3), dtype=np.uint8)
    frames[:, :, :128] = 200  # a flat left half stays flat
    depth = np.full((F, H, W), 2.0, dtype=np.float16)
    K = np.array([[200.0, 0, 128.0], [0, 200.0, 72.0], [0, 0, 1]])
    arr = ClipArrays("c", frames, depth, K, np.tile(np.eye(4), (F, 1, 1)))
    out = resize_clip(arr, 128, 64)
    assert out.frames.shape == (F, 64, 128, 3) and out.frames.dtype == np.uint8
    assert out.depth.shape == (F, 64, 128) and out.depth.dtype == np.float16
    assert (out.frames[:, :, :60] == 200).all() and np.allclose(out.depth, 2.0)
    # K in pixels scales with each axis, so K normalised by the image size is unchanged
    np.testing.assert_allclose(out.K[0] / 128, K[0] / 256)
    np.testing.assert_allclose(out.K[1] / 64, K[1] / 144)
    # area resampling: each output pixel is the mean of its source block (exact where the factor is an integer)
    np.testing.assert_allclose(out.frames[0, :, 64:].astype(float).mean(), frames[0, :, 128:].astype(float).mean(), atol=0.6)
    assert resize_clip(arr, W, H) is arr
