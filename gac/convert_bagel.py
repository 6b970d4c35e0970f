"""Initialise GaC from a Bagel-7B-MoT checkpoint folder (``ByteDance-Seed/BAGEL-7B-MoT``).

    python -m gac.convert_bagel BAGEL_DIR OUT_DIR --vae FLUX_VAE_DIR [--no-cga] [--dtype bf16]

Reads ``llm_config.json`` for the shapes and ``ema.safetensors`` (or the shards of
``model.safetensors.index.json``) tensor by tensor with ``safe_open``; maps Bagel's names onto GaC's (table below);
drops the SigLIP ViT, its connector and the two fixed sin-cos tables (GaC is VAE-only and recomputes positions);
and puts the new layers at their neutral init: CGA's Linear2 = 0 (Q_res = 0, gate = sigma(0) = 1/2) with the gen
expert's o_proj (Linear3) doubled, so the converted model computes exactly the pretrained Bagel at step 0; the
Plücker convolution gets the normal init (it only feeds Linear2, which is zero).

    Bagel                                                        GaC
    language_model.model.embed_tokens.weight                     embed_tokens.weight
    language_model.model.layers.{i}.self_attn.{q,k,v,o}_proj     layers.{i}.attn.und.{q,k,v,o}_proj
    language_model.model.layers.{i}.self_attn.{q,k,v,o}_proj_moe_gen   layers.{i}.attn.gen.{q,k,v,o}_proj
    language_model.model.layers.{i}.self_attn.{q,k}_norm[_moe_gen]     layers.{i}.attn.{und,gen}.{q,k}_norm
    language_model.model.layers.{i}.mlp[_moe_gen].{gate,up,down}_proj  layers.{i}.mlp_{und,gen}.*
    language_model.model.layers.{i}.input_layernorm[_moe_gen]           layers.{i}.norm1_{und,gen}
    language_model.model.layers.{i}.post_attention_layernorm[_moe_gen]  layers.{i}.norm2_{und,gen}
    language_model.model.norm[_moe_gen].weight                   norm_{und,gen}.weight
    language_model.lm_head.weight                                lm_head.weight
    time_embedder.mlp.{0,2}.*, vae2llm.*, llm2vae.*              same names
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from gac.checkpoint import save_checkpoint
from gac.model import GaCConfig, GaCModel, gac_7b

DROPPED_PREFIXES = ("latent_pos_embed.", "vit_pos_embed.", "vit_model.", "connector.")
_LAYER_RE = re.compile(r"^language_model\.model\.layers\.(\d+)\.(.+)$")
_LAYER_MAP = {
    **{f"self_attn.{p}_proj": f"attn.und.{p}_proj" for p in "qkvo"},
    **{f"self_attn.{p}_proj_moe_gen": f"attn.gen.{p}_proj" for p in "qkvo"},
    **{f"self_attn.{p}_norm": f"attn.und.{p}_norm" for p in "qk"},
    **{f"self_attn.{p}_norm_moe_gen": f"attn.gen.{p}_norm" for p in "qk"},
    **{f"mlp.{p}_proj": f"mlp_und.{p}_proj" for p in ("gate", "up", "down")},
    **{f"mlp_moe_gen.{p}_proj": f"mlp_gen.{p}_proj" for p in ("gate", "up", "down")},
    "input_layernorm": "norm1_und",
    "input_layernorm_moe_gen": "norm1_gen",
    "post_attention_layernorm": "norm2_und",
    "post_attention_layernorm_moe_gen": "norm2_gen",
}
_TOP_MAP = {
    "language_model.model.embed_tokens.weight": "embed_tokens.weight",
    "language_model.model.norm.weight": "norm_und.weight",
    "language_model.model.norm_moe_gen.weight": "norm_gen.weight",
    "language_model.lm_head.weight": "lm_head.weight",
}
_SAME = ("time_embedder.mlp.0.", "time_embedder.mlp.2.", "vae2llm.", "llm2vae.")
NEW_LAYERS = (".attn.cga.", "ray_embed.")


def bagel_to_gac_name(name: str) -> str | None:
    """GaC parameter name of a Bagel tensor; None for tensors GaC drops; KeyError for names it does not know."""
    if name.startswith(DROPPED_PREFIXES):
        return None
    if name in _TOP_MAP:
        return _TOP_MAP[name]
    if name.startswith(_SAME):
        return name
    m = _LAYER_RE.match(name)
    if m:
        module, _, leaf = m.group(2).rpartition(".")
        if module in _LAYER_MAP:
            return f"layers.{m.group(1)}.{_LAYER_MAP[module]}.{leaf}"
    raise KeyError(f"unknown Bagel tensor name {name!r}")


def config_from_bagel(folder: Path, use_cga: bool = True, max_latent_size: int = 128) -> GaCConfig:
    """GaC config from Bagel's ``llm_config.json`` (Qwen2 fields), special ids as Qwen2.5's."""
    llm = json.loads((Path(folder) / "llm_config.json").read_text())
    return gac_7b(
        hidden_size=llm["hidden_size"], num_layers=llm["num_hidden_layers"], num_heads=llm["num_attention_heads"],
        num_kv_heads=llm["num_key_value_heads"], intermediate_size=llm["intermediate_size"],
        vocab_size=llm["vocab_size"], rope_theta=float(llm.get("rope_theta", 1e6)),
        rms_norm_eps=float(llm.get("rms_norm_eps", 1e-6)), camera="cga" if use_cga else "none", max_latent_size=max_latent_size,
        **{k: llm[k] for k in ("bos_id", "eos_id", "vision_start_id", "vision_end_id") if k in llm},
    )  # fmt: skip


def prompt_tokens(folder: Path, vocab_size: int) -> tuple:
    """GaC's fixed prompts as Bagel's own tokenizer splits them (``tokenizer.json``, Qwen2.5's format, read with
    the ``tokenizers`` library that transformers' fast tokenizer wraps): ((text, ids), ...)."""
    from gac.sequence import PROMPTS

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: Bagel's tokenizer (shipped with BAGEL-7B-MoT) is needed so the "
                                "prompts reach the model as the tokens it was trained on")  # fmt: skip
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise RuntimeError("reading Bagel's tokenizer needs the tokenizers package: pip install tokenizers") from None
    tok = Tokenizer.from_file(str(path))
    out = []
    for text in PROMPTS.values():
        ids = tok.encode(text, add_special_tokens=False).ids
        if not ids or max(ids) >= vocab_size:
            raise ValueError(f"{path} gives {text!r} the ids {ids}, outside the model's vocabulary of {vocab_size}")
        out.append((text, tuple(ids)))
    return tuple(out)


def bagel_weight_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if (folder / "ema.safetensors").is_file():
        return [folder / "ema.safetensors"]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    raise FileNotFoundError(f"{folder}: no ema.safetensors or model.safetensors.index.json (a BAGEL-7B-MoT folder)")


def convert(
    folder: Path, dtype: torch.dtype = torch.bfloat16, use_cga: bool = True, max_latent_size: int = 128
) -> GaCModel:
    """Build GaC on the meta device and fill it from the Bagel folder, one tensor at a time."""
    folder = Path(folder)
    cfg = config_from_bagel(folder, use_cga, max_latent_size)
    cfg = replace(cfg, prompt_tokens=prompt_tokens(folder, cfg.vocab_size))
    with torch.device("meta"):
        model = GaCModel(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for path in bagel_weight_files(folder):
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():
                target = bagel_to_gac_name(name)
                if target is None:
                    continue
                tensor = f.get_tensor(name)
                if target not in expected or tuple(tensor.shape) != expected[target]:
                    shape, want = tuple(tensor.shape), expected.get(target)
                    raise ValueError(f"{name} -> {target}: shape {shape}, expected {want}")
                state[target] = tensor.to(dtype)
    missing = sorted(set(expected) - set(state))
    not_new = [k for k in missing if not any(s in k for s in NEW_LAYERS)]
    if not_new:
        raise ValueError(f"Bagel checkpoint {folder} lacks {len(not_new)} tensors, e.g. {not_new[:3]}")
    for name in missing:  # new layers: materialise, then neutral init below
        state[name] = torch.empty(expected[name], dtype=dtype)
    model.load_state_dict(state, assign=True)
    _neutral_new_layers(model)
    return model


@torch.no_grad()
def _neutral_new_layers(model: GaCModel) -> None:
    if model.ray_embed is None:
        return
    nn.init.normal_(model.ray_embed.weight, std=model.cfg.init_std)
    nn.init.zeros_(model.ray_embed.bias)
    model.reset_cga_()
    for layer in model.layers:  # sigma(0) = 1/2 at init: Linear3 = 2 o_proj keeps the pretrained output
        layer.attn.gen.o_proj.weight.mul_(2.0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m gac.convert_bagel", description="Bagel-7B-MoT -> GaC checkpoint")
    p.add_argument("bagel_dir")
    p.add_argument("out_dir")
    p.add_argument("--vae", required=True, help="diffusers FLUX VAE folder recorded in the checkpoint")
    p.add_argument("--no-cga", action="store_true")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--max-latent-size", type=int, default=128)
    args = p.parse_args(argv)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = convert(Path(args.bagel_dir), dtype, not args.no_cga, args.max_latent_size)
    meta = {"vae": str(Path(args.vae).resolve()), "step": 0, "converted_from": str(Path(args.bagel_dir).resolve()),
            "data": {"grid": True, "variant": "geometry", "geometry": "depth"}}  # fmt: skip
    save_checkpoint(Path(args.out_dir), model, meta)


if __name__ == "__main__":
    main()
