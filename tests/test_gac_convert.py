"""Bagel-7B-MoT -> GaC converter, on a tiny checkpoint written in Bagel's naming."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from gac.convert_bagel import bagel_to_gac_name, convert, main
from gac.checkpoint import load_checkpoint
from gac.masks import dense_mask
from gac.model import build_model, gac_tiny
from tests.test_gac_model import _sample



def _bagel_name(ours: str) -> str:
    """Our name -> Bagel's (the inverse of the converter's table, written out independently)."""
    top = {"embed_tokens.weight": "language_model.model.embed_tokens.weight",
           "norm_und.weight": "language_model.model.norm.weight",
           "norm_gen.weight": "language_model.model.norm_moe_gen.weight",
           "lm_head.weight": "language_model.lm_head.weight"}  # fmt: skip
    if ours in top:
        return top[ours]
    if not ours.startswith("layers."):
        return ours
    _, i, rest = ours.split(".", 2)
    module, leaf = rest.rsplit(".", 1)
    if module.startswith("attn.gen."):
        module = "self_attn." + module[len("attn.gen.") :] + "_moe_gen"
    elif module.startswith("attn.und."):
        module = "self_attn." + module[len("attn.und.") :]
    elif module.startswith("mlp_und."):
        module = "mlp." + module[len("mlp_und.") :]
    elif module.startswith("mlp_gen."):
        module = "mlp_moe_gen." + module[len("mlp_gen.") :]
    else:
        base, expert = module.rsplit("_", 1)  # norm1_und -> input_layernorm
        module = {"norm1": "input_layernorm", "norm2": "post_attention_layernorm"}[base]
        module += "_moe_gen" if expert == "gen" else ""
    return f"language_model.model.layers.{i}.{module}.{leaf}"


@pytest.fixture()
def bagel_dir(tmp_path):
    torch.manual_seed(0)
    cfg = gac_tiny(use_cga=False, latent_channels=16)
    model = build_model(cfg)
    torch.nn.init.normal_(model.llm2vae.weight)
    state = {_bagel_name(k): v.clone() for k, v in model.state_dict().items()}
    state["vit_model.vision_model.embeddings.patch_embedding.weight"] = torch.randn(8, 3, 14, 14)
    state["connector.fc1.weight"] = torch.randn(64, 8)
    state["latent_pos_embed.pos_embed"] = torch.randn(16, 64)
    state["vit_pos_embed.pos_embed"] = torch.randn(16, 64)
    save_file(state, str(tmp_path / "ema.safetensors"))
    llm = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "intermediate_size": 128, "vocab_size": 320, "rope_theta": 1e6, "rms_norm_eps": 1e-6,
           # test-only: the tiny vocabulary's special ids (a real llm_config.json has none; Qwen2.5's are used)
           "bos_id": 256, "eos_id": 257, "vision_start_id": 258, "vision_end_id": 259}  # fmt: skip
    (tmp_path / "llm_config.json").write_text(json.dumps(llm))
    write_qwen_style_tokenizer(tmp_path)
    return tmp_path, model


def write_qwen_style_tokenizer(folder):
    """A tokenizer folder in Qwen2.5's format (tokenizer.json: byte-level BPE behind Qwen2's split regex, with
    <|im_start|>/<|im_end|> as added tokens; tokenizer_config.json naming Qwen2Tokenizer), trained tiny."""
    tk = pytest.importorskip("tokenizers")
    tok = tk.Tokenizer(tk.models.BPE())
    qwen_split = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")  # fmt: skip
    tok.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split(tk.Regex(qwen_split), behavior="isolated"),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])  # fmt: skip
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(["<Image> <Geometry> <Warped> an image of a room, its geometry"] * 50, trainer)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2Tokenizer",
                                                              "bos_token": None, "eos_token": "<|im_end|>"}))
    return tk.Tokenizer.from_file(str(folder / "tokenizer.json"))


def test_names_map_and_vit_is_dropped():
    lm = "language_model.model.layers"
    assert bagel_to_gac_name(f"{lm}.3.self_attn.q_proj_moe_gen.bias") == "layers.3.attn.gen.q_proj.bias"
    assert bagel_to_gac_name(f"{lm}.0.mlp.down_proj.weight") == "layers.0.mlp_und.down_proj.weight"
    assert bagel_to_gac_name(f"{lm}.0.input_layernorm_moe_gen.weight") == "layers.0.norm1_gen.weight"
    assert bagel_to_gac_name("vit_model.vision_model.post_layernorm.weight") is None
    with pytest.raises(KeyError, match="unknown Bagel tensor"):
        bagel_to_gac_name("language_model.model.layers.0.self_attn.rotary_emb.inv_freq")


def test_converted_model_computes_the_pretrained_model_at_step_zero(bagel_dir):
    folder, plain = bagel_dir
    model = convert(folder, dtype=torch.float32, use_cga=True, max_latent_size=32)
    assert model.cfg.use_cga and model.cfg.max_latent_size == 32
    assert all(float(layer.attn.cga.proj.weight.detach().abs().sum()) == 0 for layer in model.layers)
    pk = _sample(model.cfg)
    mask = dense_mask(pk.split_id, pk.split_mode)
    with torch.no_grad():
        torch.testing.assert_close(model(pk.inputs, mask), plain(pk.inputs, mask), rtol=1e-5, atol=1e-5)


def test_cli_writes_a_loadable_checkpoint(bagel_dir, tmp_path):
    folder, _ = bagel_dir
    out = tmp_path / "gac"
    main([str(folder), str(out), "--vae", str(tmp_path / "flux-vae"), "--dtype", "fp32", "--max-latent-size", "32"])
    model, config = load_checkpoint(out)
    assert config["step"] == 0 and config["vae"].endswith("flux-vae") and model.cfg.hidden_size == 64


def test_missing_tensor_is_reported(bagel_dir):
    folder, _ = bagel_dir
    from safetensors.torch import load_file

    state = load_file(str(folder / "ema.safetensors"))
    del state["language_model.model.layers.1.mlp_moe_gen.up_proj.weight"]
    save_file(state, str(folder / "ema.safetensors"))
    with pytest.raises(ValueError, match="lacks 1 tensors"):
        convert(folder, dtype=torch.float32)


def test_prompts_use_bagels_own_tokens_not_bytes(bagel_dir, tmp_path):
    from gac.batch_builder import LayoutBuilder
    from gac.sequence import PROMPTS, encode_text

    folder, _ = bagel_dir
    tok = write_qwen_style_tokenizer(folder)
    model = convert(folder, dtype=torch.float32)
    for text in PROMPTS.values():
        ids = tok.encode(text, add_special_tokens=False).ids
        assert len(ids) < len(text.encode())  # merged tokens, not one per byte
        assert encode_text(text, model.cfg) == [model.cfg.bos_id, *ids, model.cfg.eos_id]
        assert encode_text(text, gac_tiny()) != encode_text(text, model.cfg)  # small presets keep bytes
    builder = LayoutBuilder(model.cfg, (2, 4))
    assert builder.prompt_ids["image"].tolist() == encode_text("<Image>", model.cfg)
    main([str(folder), str(tmp_path / "gac"), "--vae", str(tmp_path / "vae"), "--dtype", "fp32"])
    reloaded, _ = load_checkpoint(tmp_path / "gac")
    assert reloaded.cfg.prompt_tokens == model.cfg.prompt_tokens and reloaded.cfg == model.cfg


def test_bagel_folder_without_tokenizer_is_refused(bagel_dir):
    folder, _ = bagel_dir
    (folder / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json not found: Bagel's tokenizer"):
        convert(folder, dtype=torch.float32)
