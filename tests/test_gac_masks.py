"""Attention masks: Bagel's block table, FlexAttention path == dense path, sample isolation."""

from __future__ import annotations

import pytest
import torch

from gac.masks import CAUSAL, FULL, NOISE, attend, dense_mask, flex_block_mask


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# text, I1 clean, <Geo>, G1 noisy, G1 clean, <Img>, I2 noisy, I2 clean (gac-model.md 1.8), 2 tokens per split
SPLITS = [("text", CAUSAL), ("I1", FULL), ("geo", CAUSAL), ("G1n", NOISE), ("G1c", FULL), ("img", CAUSAL),
          ("I2n", NOISE), ("I2c", FULL)]  # fmt: skip
EXPECTED = {  # query -> {key: "all" | "causal" | "-"}
    "text": {"text": "causal"},
    "I1": {"text": "all", "I1": "all"},
    "geo": {"text": "all", "I1": "all", "geo": "causal"},
    "G1n": {"text": "all", "I1": "all", "geo": "all", "G1n": "all"},
    "G1c": {"text": "all", "I1": "all", "geo": "all", "G1c": "all"},
    "img": {"text": "all", "I1": "all", "geo": "all", "G1c": "all", "img": "causal"},
    "I2n": {"text": "all", "I1": "all", "geo": "all", "G1c": "all", "img": "all", "I2n": "all"},
    "I2c": {"text": "all", "I1": "all", "geo": "all", "G1c": "all", "img": "all", "I2c": "all"},
}


def _tables(n=2):
    split_id = torch.arange(len(SPLITS)).repeat_interleave(n)
    split_mode = torch.tensor([m for _, m in SPLITS]).repeat_interleave(n)
    return split_id, split_mode


def test_dense_mask_matches_bagels_block_table():
    n = 2
    mask = dense_mask(*_tables(n))
    names = [s for s, _ in SPLITS]
    for qi, q in enumerate(names):
        for ki, k in enumerate(names):
            block = mask[qi * n : (qi + 1) * n, ki * n : (ki + 1) * n]
            kind = EXPECTED[q].get(k, "-")
            if kind == "all":
                assert block.all(), (q, k)
            elif kind == "causal":
                assert torch.equal(block, torch.tril(torch.ones(n, n, dtype=torch.bool))), (q, k)
            else:
                assert not block.any(), (q, k)


def test_noisy_targets_are_invisible_to_later_tokens_and_clean_copies_are_visible():
    split_id, split_mode = _tables(3)
    mask = dense_mask(split_id, split_mode)
    noisy = split_mode == NOISE
    for q in range(len(split_id)):
        seen_noise = mask[q] & noisy
        assert (split_id[seen_noise] == split_id[q]).all()


def test_packed_samples_do_not_see_each_other():
    split_id = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    split_mode = torch.tensor([FULL] * 8)
    sample_id = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    mask = dense_mask(split_id, split_mode, sample_id)
    assert not mask[4:, :4].any() and not mask[:4, 4:].any()
    assert mask[:4, :4].tril().sum() > 0


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_attention_agrees_with_dense_attention():
    torch.manual_seed(0)
    split_id, split_mode = _tables(16)  # 128 tokens
    L, H, G, E = split_id.shape[0], 4, 2, 16
    q, k, v = torch.randn(L, H, E), torch.randn(L, G, E), torch.randn(L, G, E)
    dense = attend(q, k, v, dense_mask(split_id, split_mode))
    flex = attend(q, k, v, flex_block_mask(split_id, split_mode, block_size=32))
    torch.testing.assert_close(flex, dense, rtol=1e-4, atol=1e-5)


def test_mask_with_cache_offsets_queries():
    split_id, split_mode = _tables(2)
    full = dense_mask(split_id, split_mode)
    tail = dense_mask(split_id, split_mode, num_cached=6)
    assert torch.equal(tail, full[6:])


def test_dense_mask_equals_a_hand_written_matrix():
    """Two packed samples, written out by hand (independent of masks.allowed): sample 0 = text (2, causal), clean
    item (2), noisy item (2), its clean copy (2); sample 1 = text (1), clean item (2). 1 = may attend."""
    split_id = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5])
    split_mode = torch.tensor([CAUSAL, CAUSAL, FULL, FULL, NOISE, NOISE, FULL, FULL, CAUSAL, FULL, FULL])
    sample_id = torch.tensor([0] * 8 + [1] * 3)
    expected = torch.tensor([
        # t0 t1 c0 c1 n0 n1 k0 k1 u0 d0 d1
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # t0: itself only (causal, the diagonal included)
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # t1
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # c0: earlier text, its whole item
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # c1
        [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],  # n0: context and its own noisy item
        [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],  # n1
        [1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0],  # k0: the clean copy never sees the noisy one
        [1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0],  # k1
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],  # u0: sample 1 sees nothing of sample 0
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],  # d0
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],  # d1
    ], dtype=torch.bool)  # fmt: skip
    assert torch.equal(dense_mask(split_id, split_mode, sample_id), expected)
