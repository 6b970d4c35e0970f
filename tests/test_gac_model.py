"""GaC model: 7B shapes on meta, camera gated attention (eqs. 13-16), embedders, KV cache."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from gac import geometry as geo
from gac.masks import dense_mask
from gac.model import GaCModel, apply_rope, build_model, count_parameters, gac_7b, gac_tiny, rope_cos_sin, sincos_2d
from gac.sequence import FrameData, SequenceBuilder, build_training_sequence
from tests.fixtures import needs_cpu_compiler


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _item(cfg, cells=(0, 1, 2, 3), h=2, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = cfg.pixels_per_token // cfg.latent_patch_size
    lats = [torch.randn(cfg.latent_channels, h, w, generator=g) for _ in cells]
    rays = [torch.randn(6, h * k, w * k, generator=g) for _ in cells]
    return geo.make_item(lats, rays, list(cells), cfg, 2)


def _sample(cfg, n_frames=3, seed=0):
    frames = [FrameData(_item(cfg, (0,), seed=seed), _item(cfg, (0,), seed=seed + 1))]
    for k in range(n_frames - 1):
        frames.append(FrameData(_item(cfg, seed=seed + 2 * k + 2), _item(cfg, seed=seed + 2 * k + 3)))
    return build_training_sequence(cfg, frames, 1, "geometry", 0.0, generator=torch.Generator().manual_seed(seed))


def test_7b_builds_on_meta_fast_with_bagel_parameter_count():
    t0 = time.perf_counter()
    with torch.device("meta"):
        model = GaCModel(gac_7b())
    assert time.perf_counter() - t0 < 10
    assert next(model.parameters()).is_meta
    new = count_parameters(model, include="cga") + count_parameters(model, include="ray_embed")
    shared = count_parameters(model) - new
    # BAGEL-7B-MoT: ema.safetensors is 29.2 GB bf16 = 14.6B; it also holds the SigLIP ViT (26 layers of so400m,
    # ~0.397B), its connector (1152->3584->3584, ~0.017B) and two stored sin-cos tables (70^2 and 64^2 rows of 3584).
    vit_and_tables = 0.397e9 + 0.017e9 + (70**2 + 64**2) * 3584
    assert abs(shared + vit_and_tables - 14.6e9) / 14.6e9 < 0.02
    assert abs(new - 28 * (3584 * 7168 + 7168) - (6 * 16 * 16 * 3584 + 3584)) == 0  # Linear2 per layer + one conv


def test_cga_neutral_init_reproduces_plain_attention_with_doubled_o_proj():
    """Linear2 = 0 gives Q_res = 0 and gate 1/2; doubling Linear3 recovers the pretrained (CGA-off) block."""
    torch.manual_seed(0)
    plain = build_model(gac_tiny(use_cga=False))
    cga = build_model(gac_tiny(use_cga=True))
    state = {k: v for k, v in cga.state_dict().items()}
    state.update(plain.state_dict())
    for i in range(plain.cfg.num_layers):
        state[f"layers.{i}.attn.gen.o_proj.weight"] = 2 * plain.state_dict()[f"layers.{i}.attn.gen.o_proj.weight"]
    cga.load_state_dict(state)
    torch.nn.init.normal_(plain.llm2vae.weight)  # make the output non-trivial
    cga.llm2vae.weight.data.copy_(plain.llm2vae.weight.data)
    pk = _sample(plain.cfg)
    mask = dense_mask(pk.split_id, pk.split_mode)
    torch.testing.assert_close(cga(pk.inputs, mask), plain(pk.inputs, mask), rtol=1e-5, atol=1e-5)


def test_cga_follows_equations_13_to_16():
    """One layer's gen-token attention recomputed by hand from eqs. 13-16 (one gen-only full split)."""
    torch.manual_seed(1)
    model = build_model(gac_tiny())
    attn = model.layers[0].attn
    torch.nn.init.normal_(attn.cga.proj.weight, std=0.3)
    torch.nn.init.normal_(attn.cga.proj.bias, std=0.3)
    cfg, N = model.cfg, 6
    F_ND, r_NQ = torch.randn(N, cfg.hidden_size), torch.randn(N, cfg.q_dim)
    from gac.model import Routing

    route = Routing(N, torch.zeros(0, dtype=torch.long), torch.arange(N))
    rope = rope_cos_sin(torch.zeros(N, dtype=torch.long), cfg.head_dim_, cfg.rope_theta)
    _, out, _ = attn(torch.zeros(0, cfg.hidden_size), F_ND, r_NQ, route, rope, None, None)
    g = attn.gen
    Q, K, V = g.q_proj(F_ND), g.k_proj(F_ND), g.v_proj(F_ND)  # eq. 13
    Q_res, Gate = attn.cga.proj(Q + r_NQ).chunk(2, -1)  # eq. 14
    H, G, E = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim_
    q = g.q_norm((Q + Q_res).view(N, H, E)).transpose(0, 1)  # RoPE of id 0 is the identity
    k = g.k_norm(K.view(N, G, E)).transpose(0, 1).repeat_interleave(H // G, 0)
    v = V.view(N, G, E).transpose(0, 1).repeat_interleave(H // G, 0)
    O = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(N, H * E)  # eq. 15
    expected = g.o_proj(O * torch.sigmoid(Gate))  # eq. 16
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_cga_switch_off_ignores_rays_and_on_uses_them():
    pk = _sample(gac_tiny())
    mask = dense_mask(pk.split_id, pk.split_mode)
    other = pk.inputs.__class__(**{**pk.inputs.__dict__, "rays": torch.randn_like(pk.inputs.rays)})
    torch.manual_seed(2)
    off = build_model(gac_tiny(use_cga=False))
    torch.nn.init.normal_(off.llm2vae.weight)
    assert count_parameters(off, include="cga") == 0 and off.ray_embed is None
    torch.testing.assert_close(off(pk.inputs, mask), off(other, mask))
    on = build_model(gac_tiny())
    torch.nn.init.normal_(on.llm2vae.weight)
    for layer in on.layers:
        torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.1)
    assert not torch.allclose(on(pk.inputs, mask), on(other, mask))


def test_ray_features_equal_the_patchify_convolution():
    model = build_model(gac_tiny())
    rays = torch.randn(6, 32, 64)
    conv = model.ray_embed(rays[None])[0]  # (Q, 2, 4)
    tokens = model.ray_features(geo.ray_patches(rays, 16))
    torch.testing.assert_close(tokens, conv.flatten(1).T, rtol=1e-5, atol=1e-5)


def test_patchify_order_and_roundtrip():
    lat = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    tok = geo.patchify(lat, 2)
    assert tok.shape == (6, 8)
    # token 0 = rows 0-1, columns 0-1; element (2p + q) * C + c
    assert tok[0].tolist() == [lat[0, 0, 0], lat[1, 0, 0], lat[0, 0, 1], lat[1, 0, 1],
                               lat[0, 1, 0], lat[1, 1, 0], lat[0, 1, 1], lat[1, 1, 1]]  # fmt: skip
    torch.testing.assert_close(geo.unpatchify(tok, 2, 4, 6, 2), lat)


def test_sincos_2d_columns_first_then_rows():
    S, D = 16, 8
    pe = sincos_2d(torch.tensor([3 * S + 5]), S, D)[0]
    w = 1.0 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2)
    expected = torch.cat([(5 * w).sin(), (5 * w).cos(), (3 * w).sin(), (3 * w).cos()]).float()
    torch.testing.assert_close(pe, expected)


def test_rope_is_relative():
    cos, sin = rope_cos_sin(torch.tensor([3, 7, 10, 14]), 8, 1e6)
    q, k = torch.randn(1, 1, 8), torch.randn(1, 1, 8)
    dots = [(apply_rope(q, cos[i : i + 1], sin[i : i + 1]) * apply_rope(k, cos[j : j + 1], sin[j : j + 1])).sum()
            for i, j in ((0, 1), (2, 3))]  # fmt: skip
    torch.testing.assert_close(dots[0], dots[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_segment", [False, True])
def test_kv_cache_prefill_then_query_equals_one_packed_forward(per_segment):
    """Noisy target against cached clean context == the same tokens in one masked forward, whether the context
    is prefilled in one masked forward or one segment per forward (the unmasked items of ``Rollout``)."""
    torch.manual_seed(3)
    model = build_model(gac_tiny())
    torch.nn.init.normal_(model.llm2vae.weight)
    for layer in model.layers:
        torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.1)
    cfg = model.cfg
    ctx, target = [_item(cfg, seed=s) for s in (0, 1)], _item(cfg, seed=2)
    noise = torch.randn_like(target.tokens)
    full = SequenceBuilder(cfg)
    for it in ctx:
        full.prompt("image").latent(it, noisy=False)
    full.prompt("image").latent(target, noisy=True, t=0.7, noise=noise)
    pk = full.build()
    ref = model(pk.inputs, dense_mask(pk.split_id, pk.split_mode))[-target.num_tokens :]

    from gac.sample import MemoryFrame, _Context, prefill_memory

    c = _Context(model, "cpu")
    if per_segment:  # the rollout's prefill
        prefill_memory(c, [MemoryFrame([i], it) for i, it in enumerate(ctx)], "none")
    else:
        c.prefill(lambda b: [b.prompt("image").latent(it, noisy=False) for it in ctx])
    c.prefill(lambda b: b.prompt("image"))
    b = SequenceBuilder(cfg, c.rope, c.split)
    b.latent(target, noisy=True, t=0.7, noise=noise)
    q = b.build().inputs
    out = model(q, None, cache=c.cache)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_grouped_layout_equals_packing_order():
    """With no mask the tokens run laid out by expert; the result equals packing order under an all-True mask."""
    torch.manual_seed(4)
    model = build_model(gac_tiny())
    torch.nn.init.normal_(model.llm2vae.weight)
    for layer in model.layers:
        torch.nn.init.normal_(layer.attn.cga.proj.weight, std=0.1)
    cfg = model.cfg
    b = SequenceBuilder(cfg)
    b.prompt("image").latent(_item(cfg, seed=5), noisy=False).prompt("geometry")
    inp = b.build().inputs
    assert inp.und_idx.max() > inp.gen_idx.min()  # und tokens on both sides of the latents: a real permutation
    everything = torch.ones(inp.length, inp.length, dtype=torch.bool)
    v_grouped, text_grouped = model(inp, None, return_text_hidden=True)
    v_packed, text_packed = model(inp, everything, return_text_hidden=True)
    torch.testing.assert_close(v_grouped, v_packed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(text_grouped, text_packed, rtol=1e-5, atol=1e-5)


@needs_cpu_compiler
def test_compiled_sampling_pass_equals_eager():
    torch.manual_seed(6)
    model = build_model(gac_tiny()).eval()
    torch.nn.init.normal_(model.llm2vae.weight)
    cfg = model.cfg
    from gac.sample import _Context

    c = _Context(model, "cpu")
    c.prefill(lambda b: b.prompt("image").latent(_item(cfg, seed=7), noisy=False))
    b = SequenceBuilder(cfg, c.rope, c.split)
    b.latent(_item(cfg, seed=8), noisy=True, t=0.5, noise=torch.randn(_item(cfg, seed=8).tokens.shape))
    q = b.build().inputs
    with torch.no_grad():
        eager = model(q, None, cache=c.cache)
        model.compile_sampling()
        compiled = model(q, None, cache=c.cache)
    assert model._compiled_layers is not None
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
