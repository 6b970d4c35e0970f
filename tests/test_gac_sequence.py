"""Interleaved sequence builder: prompts, variants, RoPE ids, geometry dropout, loss targets, tokenizer."""

from __future__ import annotations

import pytest
import torch

from gac import geometry as geo
from gac.masks import CAUSAL, FULL, NOISE
from gac.model import gac_7b, gac_tiny
from gac.sequence import FrameData, SequenceBuilder, build_training_sequence, encode_text

CFG = gac_tiny()


def _item(cells=(0, 1, 2, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    lats = [torch.randn(CFG.latent_channels, 2, 4, generator=g) for _ in cells]
    rays = [torch.randn(6, 16, 32, generator=g) for _ in cells]
    return geo.make_item(lats, rays, list(cells), CFG, 2)


def _frames(n=4):
    rest = [FrameData(_item(seed=2 * k), _item(seed=2 * k + 1)) for k in range(1, n)]
    return [FrameData(_item((0,), 0), _item((0,), 1))] + rest


def _order(pk):
    return [(m, r) for m, r, _, _ in pk.items]


def test_byte_tokens_are_qwen_ids():
    ids = encode_text("a!<", CFG)
    assert ids == [CFG.bos_id, 64, 0, ord("<") - 33, CFG.eos_id]
    big = gac_7b()
    assert encode_text("", big) == [151644, 151645]
    assert encode_text(" ", big)[1] == 220  # the byte-level space token "Ġ"


def test_geometry_variant_interleaves_image_and_geometry():
    pk = build_training_sequence(CFG, _frames(3), 1, "geometry", 0.0, generator=torch.Generator().manual_seed(0))
    assert _order(pk) == [
        ("image", "clean"), ("geometry", "noisy"), ("geometry", "clean"),
        ("image", "noisy"), ("image", "clean"), ("geometry", "noisy"), ("geometry", "clean"),
        ("image", "noisy"), ("image", "clean"), ("geometry", "noisy"),
    ]  # fmt: skip


def test_warped_and_none_variants():
    g = torch.Generator().manual_seed(0)
    warped = build_training_sequence(CFG, _frames(3), 2, "warped", 0.0, generator=g)
    assert _order(warped) == [
        ("image", "clean"), ("warped", "noisy"), ("warped", "clean"), ("image", "clean"),
        ("warped", "noisy"), ("warped", "clean"), ("image", "noisy"),
    ]  # fmt: skip
    none = build_training_sequence(CFG, _frames(3), 1, "none", 0.0, generator=g)
    assert _order(none) == [("image", "clean"), ("image", "noisy"), ("image", "clean"), ("image", "noisy")]


def test_geometry_dropout_removes_items_and_their_prompts():
    g = torch.Generator().manual_seed(0)
    all_dropped = build_training_sequence(CFG, _frames(4), 1, "geometry", 1.0, generator=g)
    none_variant = build_training_sequence(CFG, _frames(4), 1, "none", 0.0, generator=torch.Generator().manual_seed(0))
    assert all(m == "image" for m, _ in _order(all_dropped))
    assert all_dropped.inputs.length == none_variant.inputs.length
    counts = [sum(m == "geometry" for m, r in _order(build_training_sequence(
        CFG, _frames(8), 1, "geometry", 0.5, generator=torch.Generator().manual_seed(s))) if r == "noisy")
        for s in range(20)]  # fmt: skip
    assert 0 < min(counts) <= max(counts) < 8 and abs(sum(counts) / 20 - 4) < 1.5


def test_rope_ids_clean_advances_noisy_shares_with_its_clean_copy():
    pk = build_training_sequence(CFG, _frames(2), 1, "none", 0.0, generator=torch.Generator().manual_seed(0))
    inp = pk.inputs
    rope_gen = inp.rope_ids[inp.gen_idx]
    items = pk.items  # image clean (frame 0), image noisy (frame 1, last: no clean copy)
    id0 = rope_gen[items[0][2]]
    id1 = rope_gen[items[1][2]]
    prompt_len = len(encode_text("<Image>", CFG))
    assert int(id1 - id0) == 1 + prompt_len  # clean image takes one id, the prompt one per token
    # within an item every token (and both markers) share the id
    assert (rope_gen[items[1][2] : items[1][3]] == id1).all()
    # contiguous: no gaps in the sequence of distinct ids
    distinct = torch.unique(inp.rope_ids)
    assert torch.equal(distinct, torch.arange(int(distinct.max()) + 1))


def test_noisy_and_clean_copy_share_rope_id_and_modes():
    b = SequenceBuilder(CFG)
    it = _item()
    b.prompt("geometry").latent(it, noisy=True, t=0.5, noise=torch.randn_like(it.tokens)).latent(it, noisy=False)
    pk = b.build()
    gen = pk.inputs.gen_idx
    n = it.num_tokens
    assert (pk.inputs.rope_ids[gen[:n]] == pk.inputs.rope_ids[gen[n:]]).all()
    assert (pk.split_mode[gen[:n]] == NOISE).all() and (pk.split_mode[gen[n:]] == FULL).all()
    assert (pk.split_mode[pk.inputs.und_idx[: len(encode_text("<Geometry>", CFG))]] == CAUSAL).all()
    # markers surround each item and belong to its split
    und_tokens = pk.inputs.text_ids.tolist()
    assert und_tokens.count(CFG.vision_start_id) == 2 and und_tokens.count(CFG.vision_end_id) == 2


def test_loss_only_on_noisy_tokens_with_velocity_target():
    b = SequenceBuilder(CFG)
    it = _item()
    noise = torch.randn_like(it.tokens)
    b.latent(it, noisy=False).latent(it, noisy=True, t=0.3, noise=noise)
    pk = b.build()
    n = it.num_tokens
    assert torch.equal(pk.loss_idx, torch.arange(n, 2 * n))
    torch.testing.assert_close(pk.v_target, noise - it.tokens)
    torch.testing.assert_close(pk.inputs.latents[n:], 0.7 * it.tokens + 0.3 * noise)
    assert (pk.inputs.timesteps[:n] == 0).all() and torch.allclose(pk.inputs.timesteps[n:], torch.tensor(0.3))


def test_noise_augmented_context_item_is_clean_in_mode_and_loss_but_carries_its_t():
    """Inference's context_t (training's context noise): x = (1 - t) x0 + t noise, told t, FULL split, no loss."""
    b = SequenceBuilder(CFG)
    it = _item()
    noise = torch.randn_like(it.tokens)
    pk = b.latent(it, noisy=False, t=0.2, noise=noise).build()
    n = it.num_tokens
    torch.testing.assert_close(pk.inputs.latents, 0.8 * it.tokens + 0.2 * noise)
    assert torch.allclose(pk.inputs.timesteps, torch.tensor(0.2)) and pk.loss_idx.numel() == 0
    assert (pk.split_mode[pk.inputs.gen_idx[:n]] == FULL).all()
    with pytest.raises(ValueError, match="needs noise"):
        SequenceBuilder(CFG).latent(it, noisy=False, t=0.2)


def test_grid_cells_carry_grid_positions():
    it = _item()
    S = CFG.max_latent_size
    rows, cols = it.pos2d // S, it.pos2d % S
    assert rows.max() == 1 and cols.max() == 3  # 2x2 grid of 1x2-token cells
    assert len(set(it.pos2d.tolist())) == it.num_tokens
    single = _item((0,))
    assert torch.equal(single.pos2d, it.pos2d[: single.num_tokens])
