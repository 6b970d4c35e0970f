"""Geometry encodings, pose normalisation, context-as-memory retrieval, the VAE codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gac import geometry as geo
from gac.retrieval import RetrievalConfig, frame_scores, select_context
from gac_bench import cameras


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


K = cameras.intrinsics_matrix(50.0, 50.0, 32.0, 16.0)


def test_depth_encoding_roundtrip_and_range():
    d = np.random.default_rng(0).uniform(0.2, 30.0, size=(16, 32)).astype(np.float32)
    enc = geo.encode_depth(d, scale=3.0)
    assert enc.shape == (16, 32, 3) and enc.min() > -1 and enc.max() < 1
    assert abs(float(geo.encode_depth(np.full((1, 1), 3.0), 3.0)[0, 0, 0])) < 1e-6  # median depth -> 0
    np.testing.assert_allclose(geo.decode_depth(enc, 3.0), d, rtol=1e-4)


def test_pointmap_roundtrip_to_depth():
    d = np.random.default_rng(1).uniform(0.5, 5.0, size=(16, 32))
    c2w = np.eye(4)
    c2w[:3, :3] = cameras.rotation_about_axis([0, 1, 0], 0.3)
    c2w[:3, 3] = [0.2, -0.1, 0.4]
    enc = geo.encode_pointmap(d, K, c2w, 2.0)
    assert np.abs(enc).max() < 1
    np.testing.assert_allclose(geo.decode_pointmap_depth(enc, c2w, 2.0), d, rtol=1e-3)


def test_normalize_poses_anchor_identity_and_scale():
    c2w = np.repeat(np.eye(4)[None], 3, 0)
    c2w[:, :3, 3] = [[1, 2, 3], [3, 2, 3], [1, 2, 7]]
    n = geo.normalize_poses(c2w, c2w[0], 2.0)
    np.testing.assert_allclose(n[0], np.eye(4))
    np.testing.assert_allclose(n[1, :3, 3], [1, 0, 0])
    np.testing.assert_allclose(n[2, :3, 3], [0, 0, 2])
    rays = geo.view_rays(K, n[:1], 32, 64)
    assert rays.shape == (1, 6, 32, 64)
    torch.testing.assert_close(rays[0, :3], torch.zeros(3, 32, 64))  # the anchor sits at the origin: no moment


def test_torch_plucker_rays_match_the_harness_construction():
    c2w = np.stack([_cam(0), _cam(20, x=0.5), _cam(-40, x=-1.0)])
    c2w[1, :3, 3] += [0.1, -0.3, 2.0]
    ours = geo.view_rays(K, c2w, 32, 64).numpy()
    ref = cameras.plucker_rays(K, c2w, 32, 64).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def _cam(yaw_deg, x=0.0):
    c = np.eye(4)
    c[:3, :3] = cameras.rotation_about_axis([0, 1, 0], np.deg2rad(yaw_deg))
    c[0, 3] = x
    return c


def test_frustum_overlap_scores():
    cfg = RetrievalConfig()
    target = np.stack([_cam(0)])
    scores = frame_scores([np.stack([_cam(0)]), np.stack([_cam(180)]), np.stack([_cam(30)])], target, K, 32, 64, cfg)
    assert scores[0] > 0.99 and scores[1] == 0.0 and 0 < scores[2] < scores[0]
    # a grid frame scores by its best view
    both = frame_scores([np.stack([_cam(180), _cam(0)])], target, K, 32, 64, cfg)
    assert both[0] > 0.99


def test_select_context_keeps_recent_and_reference_then_best_non_adjacent():
    cfg = RetrievalConfig(context_size=4, min_overlap=0.1)
    scores = np.array([0.0, 0.2, 0.9, 0.85, 0.05, 0.8, 0.5])
    # 6 (most recent) and 0 (reference) always; then 2; 3 is adjacent to 2 and 5 to 6, so 1 ... is adjacent too:
    # the relaxed pass takes the best remaining (3); 4 is below min_overlap and never taken
    assert select_context(scores, RetrievalConfig(context_size=3, min_overlap=0.1)) == [0, 2, 6]
    assert select_context(scores, cfg) == [0, 2, 3, 6]
    assert 4 not in select_context(scores, RetrievalConfig(context_size=7, min_overlap=0.1))
    assert select_context(scores[:2], cfg) == [0, 1]
    assert select_context(scores, RetrievalConfig(context_size=1)) == [6]
    # adjacency is relaxed when nothing else qualifies
    assert select_context(np.array([0.5, 0.9, 0.9, 0.9]), RetrievalConfig(context_size=4)) == [0, 1, 2, 3]


def test_select_context_without_the_recent_frame_and_in_overlap_order():
    scores = np.array([0.0, 0.2, 0.9, 0.85, 0.05, 0.8, 0.5])
    no_recent = RetrievalConfig(context_size=3, min_overlap=0.1, keep_recent=False)
    assert select_context(scores, no_recent) == [0, 2, 5]  # 6 competes on overlap like any other frame
    by_overlap = RetrievalConfig(context_size=4, min_overlap=0.1, order="overlap")
    assert select_context(scores, by_overlap) == [0, 6, 3, 2]  # the same set as in time order, best last
    alone = RetrievalConfig(context_size=2, keep_recent=False, keep_reference=False, min_overlap=0.95)
    assert select_context(scores, alone) == [6]  # nothing qualifies: the most recent frame, never an empty context
    with pytest.raises(ValueError, match="context order"):
        select_context(scores, RetrievalConfig(order="random"))


def test_vae_codec_scale_shift_and_shapes(tmp_path):
    pytest.importorskip("diffusers")
    from gac.vae import LatentCodec, load_vae, random_vae, save_vae, tiny_vae_config

    vae = random_vae(dict(tiny_vae_config(4), scaling_factor=0.5, shift_factor=0.1))
    folder = save_vae(vae, tmp_path / "vae")
    codec = load_vae(folder)
    assert isinstance(codec, LatentCodec) and codec.downsample == 8 and codec.latent_channels == 4
    img = np.random.default_rng(0).integers(0, 255, (2, 32, 48, 3), dtype=np.uint8)
    z = codec.encode_uint8(img, sample=False)
    assert z.shape == (2, 4, 4, 6)
    raw = codec.vae.encode(torch.from_numpy(img).permute(0, 3, 1, 2).float() / 127.5 - 1).latent_dist.mean
    torch.testing.assert_close(z, 0.5 * (raw - 0.1))
    assert codec.decode_uint8(z).shape == (2, 32, 48, 3)
    with pytest.raises(FileNotFoundError, match="diffusers layout"):
        load_vae(tmp_path / "nowhere")
