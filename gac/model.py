"""GaC transformer: a Bagel-style Mixture-of-Transformers decoder with camera gated attention (CGA).

Paper: "Geometry-as-Context" (GaC), section 4.2 (CGA, eqs. 13-16) and section 5.1 (Bagel-7B as the base model).
Architecture after Bagel (github.com/ByteDance-Seed/Bagel, Apache-2.0; arXiv 2505.14683): a Qwen2.5 decoder in
which every layer holds two experts, "und" (text tokens and image markers) and "gen" (VAE latent tokens), that
share one self-attention over the packed sequence. Written from the published description
(../shared/reference/gac-model.md), not copied.

Shape legend for suffixed names:
    L tokens of the packed sequence in this forward    C tokens already in the key/value cache
    N latent (gen) tokens      U text/marker (und) tokens
    D hidden size              H query heads      G key/value heads      E head dim      Q = H * E
    P latent token size (patch^2 * latent channels)      R ray patch size (6 * ray_patch^2)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from gac.masks import AttnMask, attend

# ---------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class GaCConfig:
    """Every shape of the model; stored in each checkpoint's config.json."""

    hidden_size: int
    """D: width of the residual stream (Qwen2.5-7B: 3584)."""
    num_layers: int
    """Decoder layers; each one is a Mixture-of-Transformers layer with an und and a gen expert."""
    num_heads: int
    """Query heads H."""
    num_kv_heads: int
    """Key/value heads G (grouped-query attention)."""
    intermediate_size: int
    """SwiGLU hidden width of each expert's MLP."""
    vocab_size: int
    """Text vocabulary (Qwen2.5: 152064). Small presets use the 256 byte tokens plus four specials."""
    head_dim: int = 0
    """E; 0 means hidden_size // num_heads."""
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    latent_channels: int = 16
    """VAE latent channels (FLUX VAE: 16)."""
    latent_patch_size: int = 2
    """Latents are cut into patch x patch tokens (Bagel: 2), so one token covers 16x16 pixels."""
    vae_downsample: int = 8
    """Spatial factor of the VAE (FLUX: 8)."""
    max_latent_size: int = 128
    """S of the 2D position id i * S + j; must be at least the token-grid width (80 for a 2x2 grid of 640 px)."""
    timestep_freq_dim: int = 256
    camera: str = "cga"
    """How the camera enters (Table 5): "cga" camera gated attention in the gen expert (eqs. 13-16, the paper's
    design), "add" the Plücker embedding added to the latent tokens (the paper's "w/o CGA" row: conditioning by
    simple addition), "none" no camera at all."""
    bos_id: int = 256
    eos_id: int = 257
    vision_start_id: int = 258
    vision_end_id: int = 259
    init_std: float = 0.02
    prompt_tokens: tuple = ()
    """The fixed prompts (``<Image>``, ...) as the base model's tokenizer splits them: ((text, (ids...)), ...);
    written by :mod:`gac.convert_bagel` from Bagel's Qwen2.5 tokenizer. Empty: byte-level ids (small presets)."""

    def __post_init__(self):
        if self.camera not in CAMERA_MODES:
            raise ValueError(f"camera must be one of {CAMERA_MODES}, got {self.camera!r}")
        # JSON gives lists: keep the config hashable and comparable
        tokens = tuple((str(text), tuple(int(i) for i in ids)) for text, ids in self.prompt_tokens)
        object.__setattr__(self, "prompt_tokens", tokens)

    @property
    def use_cga(self) -> bool:
        return self.camera == "cga"

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim_

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim_

    @property
    def latent_dim(self) -> int:
        """P: values per latent token, ordered (row in patch, column in patch, channel), channel fastest."""
        return self.latent_patch_size**2 * self.latent_channels

    @property
    def pixels_per_token(self) -> int:
        return self.vae_downsample * self.latent_patch_size

    @property
    def ray_dim(self) -> int:
        """R: a 6 x 16 x 16 Plücker patch, flattened (channel, row, column) like a Conv2d weight."""
        return 6 * self.pixels_per_token**2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GaCConfig:
        d = _legacy_camera(dict(d))
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GaCConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


CAMERA_MODES = ("cga", "add", "none")


def _legacy_camera(d: dict) -> dict:
    """Configs written before ``camera`` existed said ``use_cga``: True -> "cga", False -> "none"."""
    if "use_cga" in d:
        d.setdefault("camera", "cga" if d.pop("use_cga") else "none")
    return d


def gac_7b(**overrides) -> GaCConfig:
    """Bagel-7B-MoT dimensions (Qwen2.5-7B per expert) plus CGA; special ids are Qwen2.5's."""
    cfg = GaCConfig(
        hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4, intermediate_size=18944, vocab_size=152064,
        max_latent_size=128, bos_id=151644, eos_id=151645, vision_start_id=151652, vision_end_id=151653,
    )  # fmt: skip
    return replace(cfg, **_legacy_camera(overrides))


def gac_small(**overrides) -> GaCConfig:
    """About 29M parameters: trainable on one GPU in minutes (synthroom experiments)."""
    cfg = GaCConfig(
        hidden_size=384, num_layers=8, num_heads=6, num_kv_heads=2, intermediate_size=1024, vocab_size=320,
        max_latent_size=64,
    )  # fmt: skip
    return replace(cfg, **_legacy_camera(overrides))


def gac_compact(**overrides) -> GaCConfig:
    """About 18M parameters with the 32-channel patch VAE (gac/patch_vae.py): the synthroom model, whose bf16
    weights and VAE together stay under 50 MB."""
    cfg = GaCConfig(
        hidden_size=384, num_layers=6, num_heads=6, num_kv_heads=2, intermediate_size=768, vocab_size=320,
        latent_channels=32, max_latent_size=64,
    )  # fmt: skip
    return replace(cfg, **_legacy_camera(overrides))


def gac_tiny(**overrides) -> GaCConfig:
    """A few hundred thousand parameters with a 4-channel VAE: CPU tests."""
    cfg = GaCConfig(
        hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128, vocab_size=320,
        latent_channels=4, max_latent_size=32,
    )  # fmt: skip
    return replace(cfg, **_legacy_camera(overrides))


PRESETS = {"gac-7b": gac_7b, "gac-small": gac_small, "gac-compact": gac_compact, "gac-tiny": gac_tiny}


# ---------------------------------------------------------------------------------------------- embedders


class RMSNorm(nn.Module):
    """Qwen2 RMSNorm, computed in float32."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).to(x.dtype)


def timestep_frequencies(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DiT sinusoid of t in [0, 1] (Bagel does not multiply by 1000): [cos | sin], (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """t -> 256-d sinusoid -> Linear, SiLU, Linear (Bagel's ``time_embedder``)."""

    def __init__(self, hidden_size: int, freq_dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t_N: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_frequencies(t_N, self.freq_dim).to(self.mlp[0].weight.dtype))


def sincos_2d(pos_N: torch.Tensor, grid_size: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos position of id i * S + j (MAE/DiT table, recomputed instead of stored): (N,) -> (N, dim).

    The first dim/2 values encode the column j as [sin(j w), cos(j w)], the last dim/2 the row i, with
    w_k = 10000^(-k / (dim / 4)). Values depend on (i, j) only, so S can change freely between checkpoints.
    """
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, device=pos_N.device, dtype=torch.float64) / quarter)
    row = (pos_N // grid_size).double()[:, None] * omega
    col = (pos_N % grid_size).double()[:, None] * omega
    return torch.cat([col.sin(), col.cos(), row.sin(), row.cos()], dim=-1).float()


def rope_cos_sin(ids_L: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """1D RoPE tables for position ids (L,), each (L, E) with the frequencies repeated [f, f] (Qwen2)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=ids_L.device, dtype=torch.float64) / head_dim)
    ang = ids_L.double()[:, None] * inv[None]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x_LHE: torch.Tensor, cos_LE: torch.Tensor, sin_LE: torch.Tensor) -> torch.Tensor:
    half = x_LHE.shape[-1] // 2
    rotated = torch.cat([-x_LHE[..., half:], x_LHE[..., :half]], dim=-1)
    return (x_LHE * cos_LE[:, None].to(x_LHE.dtype) + rotated * sin_LE[:, None].to(x_LHE.dtype)).to(x_LHE.dtype)


# ---------------------------------------------------------------------------------------------- camera gated attention


class ExpertAttention(nn.Module):
    """One expert's projections: Linear1 = {q,k,v}_proj (eq. 13), Linear3 = o_proj (eq. 16), QK RMSNorm."""

    def __init__(self, cfg: GaCConfig):
        super().__init__()
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.q_dim, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.kv_dim, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.kv_dim, bias=True)
        self.o_proj = nn.Linear(cfg.q_dim, cfg.hidden_size, bias=False)
        self.q_norm = RMSNorm(cfg.head_dim_, cfg.rms_norm_eps)
        self.k_norm = RMSNorm(cfg.head_dim_, cfg.rms_norm_eps)


class CameraGate(nn.Module):
    """Linear2 of eq. 14: {Q_res, Gate} = Linear2(Q + r), element-wise over the Q = H * E query channels."""

    def __init__(self, cfg: GaCConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.q_dim, 2 * cfg.q_dim, bias=True)

    def forward(self, q_NQ: torch.Tensor, ray_NQ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_res_NQ, gate_NQ = self.proj(q_NQ + ray_NQ.to(q_NQ.dtype)).chunk(2, dim=-1)
        return q_res_NQ, gate_NQ


@dataclass
class KVCache:
    """Keys (after QK-norm and RoPE) and values of clean context, per layer: (C, G, E) each."""

    keys: list[torch.Tensor | None] = field(default_factory=list)
    values: list[torch.Tensor | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        return 0 if not self.keys or self.keys[0] is None else int(self.keys[0].shape[0])


class MoTAttention(nn.Module):
    """Shared self-attention over und and gen tokens; the gen expert carries CGA (eqs. 13-16)."""

    def __init__(self, cfg: GaCConfig):
        super().__init__()
        self.cfg = cfg
        self.und = ExpertAttention(cfg)
        self.gen = ExpertAttention(cfg)
        self.cga = CameraGate(cfg) if cfg.use_cga else None
        # inference only (gac.fast_inference.fold_camera_gate): Linear1's gen query and Linear2 folded into one
        # projection x -> {Q + Q_res, Gate} minus the ray term, which the caller passes in precomputed
        self.q_gate: nn.Module | None = None

    def forward(
        self,
        xu_UD: torch.Tensor,
        xg_ND: torch.Tensor,
        ray_NQ: torch.Tensor | None,
        route: Routing,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: AttnMask,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns the und and gen outputs and the keys/values of cache + these tokens, (C + L, G, E) each."""
        cfg, H, G, E = self.cfg, self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim_
        L = route.length
        # eq. 13: {Q, K, V} = Linear1(F), each expert on its own tokens
        qu_UQ, gate_NQ = self.und.q_proj(xu_UD), None
        if self.q_gate is not None and ray_NQ is not None:  # folded eqs. 13-14; ray_NQ is this layer's Linear2(r)
            qg_NQ, gate_NQ = (self.q_gate(xg_ND) + ray_NQ).chunk(2, dim=-1)
        else:
            qg_NQ = self.gen.q_proj(xg_ND)
            if self.cga is not None and ray_NQ is not None:  # text-only chunks have no gen tokens
                q_res_NQ, gate_NQ = self.cga(qg_NQ, ray_NQ)  # eq. 14
                qg_NQ = qg_NQ + q_res_NQ  # the query of eq. 15
        q_LQ = _merge(qu_UQ, qg_NQ, route, L)
        k_LK = _merge(self.und.k_proj(xu_UD), self.gen.k_proj(xg_ND), route, L)
        v_LK = _merge(self.und.v_proj(xu_UD), self.gen.v_proj(xg_ND), route, L)
        q_LHE = _merge_norm(q_LQ.view(L, H, E), self.und.q_norm, self.gen.q_norm, route)
        k_LGE = _merge_norm(k_LK.view(L, G, E), self.und.k_norm, self.gen.k_norm, route)
        v_LGE = v_LK.view(L, G, E)
        q_LHE, k_LGE = apply_rope(q_LHE, *rope), apply_rope(k_LGE, *rope)
        if past_kv is not None:
            k_LGE, v_LGE = torch.cat([past_kv[0], k_LGE]), torch.cat([past_kv[1], v_LGE])
        o_LQ = attend(q_LHE, k_LGE, v_LGE, mask).reshape(L, cfg.q_dim)  # eq. 15: SDPA(Q + Q_res, K, V)
        ou_UQ, og_NQ = _split(o_LQ, route)
        if gate_NQ is not None:
            og_NQ = og_NQ * torch.sigmoid(gate_NQ)  # eq. 16: O * sigma(Gate)
        return self.und.o_proj(ou_UQ), self.gen.o_proj(og_NQ), (k_LGE, v_LGE)  # eq. 16: Linear3


@dataclass
class Routing:
    """Which packed positions are und (text, markers) and which are gen (latents).

    ``grouped``: the attention runs over the tokens laid out as [und..., gen...] instead of packing order. Legal
    only when no mask orders the tokens (a noisy query over a clean cache: every query sees every key) and RoPE
    ids are permuted alike; it turns the scatters and gathers between the experts into a concatenation and slices.
    """

    length: int
    und_idx: torch.Tensor
    gen_idx: torch.Tensor
    grouped: bool = False


def _merge(u: torch.Tensor, g: torch.Tensor, route: Routing, L: int) -> torch.Tensor:
    if route.grouped:
        return torch.cat([u, g.to(u.dtype)])
    ref = g if g.numel() else u
    out = ref.new_empty((L,) + tuple(ref.shape[1:]))
    out[route.und_idx] = u.to(out.dtype)
    out[route.gen_idx] = g.to(out.dtype)
    return out


def _split(x: torch.Tensor, route: Routing) -> tuple[torch.Tensor, torch.Tensor]:
    if route.grouped:
        U = route.und_idx.shape[0]
        return x[:U], x[U:]
    return x[route.und_idx], x[route.gen_idx]


def _merge_norm(x_LHE: torch.Tensor, norm_u: RMSNorm, norm_g: RMSNorm, route: Routing) -> torch.Tensor:
    xu, xg = _split(x_LHE, route)
    if route.grouped:
        return torch.cat([norm_u(xu), norm_g(xg)])
    out = torch.empty_like(x_LHE)
    out[route.und_idx] = norm_u(xu)
    out[route.gen_idx] = norm_g(xg)
    return out


# ---------------------------------------------------------------------------------------------- block


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoTBlock(nn.Module):
    """Pre-norm decoder layer with two experts (Bagel's Qwen2MoTDecoderLayer)."""

    def __init__(self, cfg: GaCConfig):
        super().__init__()
        D, eps = cfg.hidden_size, cfg.rms_norm_eps
        self.norm1_und, self.norm1_gen = RMSNorm(D, eps), RMSNorm(D, eps)
        self.attn = MoTAttention(cfg)
        self.norm2_und, self.norm2_gen = RMSNorm(D, eps), RMSNorm(D, eps)
        self.mlp_und = SwiGLU(cfg.hidden_size, cfg.intermediate_size)
        self.mlp_gen = SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, hu_UD, hg_ND, ray_NQ, route, rope, mask, past_kv):
        au, ag, kv = self.attn(self.norm1_und(hu_UD), self.norm1_gen(hg_ND), ray_NQ, route, rope, mask, past_kv)
        hu_UD, hg_ND = hu_UD + au, hg_ND + ag
        hu_UD = hu_UD + self.mlp_und(self.norm2_und(hu_UD))
        hg_ND = hg_ND + self.mlp_gen(self.norm2_gen(hg_ND))
        return hu_UD, hg_ND, kv


# ---------------------------------------------------------------------------------------------- model


@dataclass
class PackedInputs:
    """One packed sequence as the model sees it (built by :mod:`gac.sequence`).

    text_ids (U,) long at positions und_idx; latents (N, P) = x_t at positions gen_idx with timesteps (N,) in
    [0, 1], 2D position ids pos2d (N,) and Plücker ray patches rays (N, R); rope_ids (L,) 1D RoPE positions.
    """

    text_ids: torch.Tensor
    und_idx: torch.Tensor
    latents: torch.Tensor
    timesteps: torch.Tensor
    pos2d: torch.Tensor
    rays: torch.Tensor
    gen_idx: torch.Tensor
    rope_ids: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.rope_ids.shape[0])

    def to(self, device) -> PackedInputs:
        return PackedInputs(**{k: v.to(device) for k, v in self.__dict__.items()})


class GaCModel(nn.Module):
    """Bagel MoT decoder + latent embedders + CGA (paper section 4.2, Figure 3)."""

    def __init__(self, cfg: GaCConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden_size
        self.embed_tokens = nn.Embedding(cfg.vocab_size, D)
        self.time_embedder = TimestepEmbedder(D, cfg.timestep_freq_dim)
        self.vae2llm = nn.Linear(cfg.latent_dim, D)
        self.llm2vae = nn.Linear(D, cfg.latent_dim)
        # One convolution patchifies the Plücker map onto the token grid (kernel = stride = 16 px); it is applied
        # to pre-cut patches as the equivalent matmul, see ``ray_features``.
        # "add" mode adds the same embedding, at the hidden width, to the latent tokens instead.
        k = cfg.pixels_per_token
        ray_width = {"cga": cfg.q_dim, "add": cfg.hidden_size}.get(cfg.camera)
        self.ray_embed = nn.Conv2d(6, ray_width, k, stride=k) if ray_width else None
        self.layers = nn.ModuleList(MoTBlock(cfg) for _ in range(cfg.num_layers))
        self.norm_und = RMSNorm(D, cfg.rms_norm_eps)
        self.norm_gen = RMSNorm(D, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(D, cfg.vocab_size, bias=False)
        # recompute in backward: False/"none", True/"full" (each block, as Bagel), "selective" (keep the outputs of
        # matmuls and attention, recompute norms, RoPE, gates and activations: most of the memory saved for little
        # of the compute)
        self.activation_checkpointing: bool | str = False
        self._compiled_layers: list | None = None  # see compile_sampling
        self.camera_folded = False  # see gac.fast_inference.fold_camera_gate

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def initialize_weights(self) -> None:
        """Fresh weights. Neutral inits: CGA's Linear2 is zero (Q_res = 0, Gate = 0), llm2vae is zero (Bagel).

        Linear/embedding weights ~ N(0, init_std), biases 0, norms 1. With Linear2 = 0 the gate is sigma(0) = 1/2;
        :func:`gac.convert_bagel.convert` doubles the pretrained Linear3 (o_proj) so a converted model computes
        exactly the pretrained block at step 0 while eq. 16 keeps its literal form.
        """
        std = self.cfg.init_std
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)
            elif isinstance(m, RMSNorm):
                nn.init.ones_(m.weight)
        nn.init.zeros_(self.llm2vae.weight)
        nn.init.zeros_(self.llm2vae.bias)
        self.reset_cga_()

    @torch.no_grad()
    def reset_cga_(self) -> None:
        """Linear2 := 0: CGA adds nothing to the query and gates with a constant 1/2."""
        for layer in self.layers:
            if layer.attn.cga is not None:
                nn.init.zeros_(layer.attn.cga.proj.weight)
                nn.init.zeros_(layer.attn.cga.proj.bias)

    # ------------------------------------------------------------------ forward
    def ray_features(self, rays_NR: torch.Tensor) -> torch.Tensor:
        """r of eq. 14: the convolution applied to pre-cut 16x16 Plücker patches, (N, R) -> (N, Q)."""
        w = self.ray_embed.weight
        return F.linear(rays_NR.to(w.dtype), w.reshape(w.shape[0], -1), self.ray_embed.bias)

    def camera_terms(self, rays_NR: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the ray part of a folded CGA, Linear2's weight times r (N, 2Q): constant over the denoising
        steps of an item, so the sampler computes it once per item instead of once per step."""
        ray_NQ = self.ray_features(rays_NR)
        return [F.linear(ray_NQ, layer.attn.cga.proj.weight) for layer in self.layers]

    def embed_latents(self, x_NP: torch.Tensor, t_N: torch.Tensor, pos_N: torch.Tensor) -> torch.Tensor:
        """Bagel's latent token embedding: vae2llm(x_t) + TimeEmb(t) + PE_2D(pos)."""
        w = self.vae2llm.weight
        pe = sincos_2d(pos_N, self.cfg.max_latent_size, self.cfg.hidden_size).to(w.dtype)
        return self.vae2llm(x_NP.to(w.dtype)) + self.time_embedder(t_N) + pe

    def forward(
        self,
        inp: PackedInputs,
        mask: AttnMask = None,
        cache: KVCache | None = None,
        write_cache: bool = False,
        return_text_hidden: bool = False,
        camera_terms: list[torch.Tensor] | None = None,
    ):
        """Velocity v(x_t, t) of every latent token, (N, P). ``mask`` covers (L, C + L) when a cache is given.

        ``mask=None`` means every token sees every key (cached and new): a noisy target, or one clean item, over a
        clean cache. Then the tokens are laid out by expert (``Routing.grouped``) and the compiled layers run when
        :meth:`compile_sampling` was called. Keys written to the cache keep that layout; as every token of an
        unmasked forward sees every other, they form one bidirectional split with one RoPE id per item, so a mask
        built later over the cache in packing order is unaffected by the order inside it.

        ``camera_terms``: :meth:`camera_terms` of ``inp.rays``, precomputed, for a model whose CGA is folded.
        """
        cfg = self.cfg
        if write_cache and cache is not None and not cache.keys:
            cache.keys, cache.values = [None] * cfg.num_layers, [None] * cfg.num_layers
        grouped = mask is None
        route = Routing(inp.length, inp.und_idx, inp.gen_idx, grouped)
        rope_ids = torch.cat([inp.rope_ids[inp.und_idx], inp.rope_ids[inp.gen_idx]]) if grouped else inp.rope_ids
        hu_UD = self.embed_tokens(inp.text_ids)
        hg_ND = self.embed_latents(inp.latents, inp.timesteps, inp.pos2d).to(hu_UD.dtype)
        has_gen = self.ray_embed is not None and inp.gen_idx.numel() > 0
        if self.camera_folded and self.training:
            raise RuntimeError("this GaC's CGA is folded for sampling (gac.fast_inference); train an unfolded copy")
        if self.camera_folded and has_gen:
            ray_NQ, per_layer = None, camera_terms if camera_terms is not None else self.camera_terms(inp.rays)
        else:
            ray_NQ, per_layer = (self.ray_features(inp.rays) if has_gen else None), None
        if cfg.camera == "add" and ray_NQ is not None:  # conditioning by simple addition (Table 5, w/o CGA)
            hg_ND, ray_NQ = hg_ND + ray_NQ.to(hg_ND.dtype), None
        rope = rope_cos_sin(rope_ids, cfg.head_dim_, cfg.rope_theta)
        has_past = cache is not None and bool(cache.keys) and cache.keys[0] is not None
        layers = self._compiled_layers if grouped and self._compiled_layers else self.layers
        for i, layer in enumerate(layers):
            past = (cache.keys[i], cache.values[i]) if has_past else None
            if past is not None and layers is self._compiled_layers:  # one graph for every context length
                for t in past:
                    torch._dynamo.maybe_mark_dynamic(t, 0)
            args = (hu_UD, hg_ND, per_layer[i] if per_layer is not None else ray_NQ, route, rope, mask, past)
            ac = self.activation_checkpointing
            if ac and ac != "none" and self.training and torch.is_grad_enabled():
                extra = {"context_fn": selective_checkpoint_context} if ac == "selective" else {}
                hu_UD, hg_ND, kv = torch.utils.checkpoint.checkpoint(layer, *args, use_reentrant=False, **extra)
            else:
                hu_UD, hg_ND, kv = layer(*args)
            if write_cache:
                cache.keys[i], cache.values[i] = kv
        v_NP = self.llm2vae(self.norm_gen(hg_ND))
        if return_text_hidden:
            return v_NP, self.norm_und(hu_UD)
        return v_NP

    def compile_sampling(self, **compile_kwargs) -> None:
        """torch.compile the decoder layers for the unmasked passes: the denoising steps and clean context items.

        Those passes are nearly all of sampling time and come in one or two query lengths (a grid item, a one-view
        item), with the cache length marked dynamic, so one graph serves every step, layer and context size;
        inductor fuses the RMSNorms, RoPE, gating and residual adds around the GEMMs and attention. Masked passes
        (prompts, training) keep the eager layers. The compiled wrappers live in a plain list, so the state dict is
        unchanged.
        """
        self._compiled_layers = [torch.compile(layer, **compile_kwargs) for layer in self.layers]


_SAVED_OPS = None


def _saved_ops() -> set:
    """Ops whose outputs selective checkpointing keeps: the matmuls and the attention kernels."""
    global _SAVED_OPS
    if _SAVED_OPS is None:
        aten = torch.ops.aten
        names = ["mm", "addmm", "bmm", "baddbmm", "_scaled_dot_product_flash_attention",
                 "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"]  # fmt: skip
        _SAVED_OPS = {getattr(aten, n).default for n in names if hasattr(aten, n)}
        flex = getattr(torch.ops.higher_order, "flex_attention", None)
        if flex is not None:
            _SAVED_OPS.add(flex)
    return _SAVED_OPS


def selective_checkpoint_context():
    """``context_fn`` for torch.utils.checkpoint: save matmul and attention outputs, recompute everything else."""
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    saved = _saved_ops()

    def policy(ctx, op, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if op in saved else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


def count_parameters(model: nn.Module, include: str | None = None, exclude: str | None = None) -> int:
    """Parameters whose name contains ``include`` (if given) and not ``exclude`` (if given); works on meta."""
    total = 0
    for name, p in model.named_parameters():
        if include is not None and include not in name:
            continue
        if exclude is not None and exclude in name:
            continue
        total += p.numel()
    return total


def build_model(cfg: GaCConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> GaCModel:
    """Construct on the meta device (no host memory for 7B), then materialise on ``device`` and initialise."""
    with torch.device("meta"):
        model = GaCModel(cfg)
    model = model.to_empty(device=device).to(dtype)
    model.initialize_weights()
    return model
