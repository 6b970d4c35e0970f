"""The text-guided interleaved sequence (paper 4.3) packed in Bagel's layout, and geometry dropout.

    variant "geometry" (#1, eq. 10):  <Image> I_0  <Geometry> G_0  <Image> I_1  <Geometry> G_1  <Image> I_2 ...
    variant "warped"   (#2, eq. 11):  <Image> I_0  <Warped> W_1  <Image> I_1  <Warped> W_2  <Image> I_2 ...
    variant "none"     (#3, eq. 12):  <Image> I_0  <Image> I_1  <Image> I_2 ...

Each prompt is a text segment ``[bos] + bytes(text) + [eos]`` (und expert, causal). Each latent item is
``<vision_start> tokens <vision_end>``: context images are packed once, clean (t = 0, FULL split, RoPE id then
advances); generated items are packed noisy (NOISE split, own t, loss, RoPE id not advanced) and then clean at the
same RoPE id so that later tokens condition on the clean copy (the last item of a sequence needs no clean copy).
Geometry dropout removes an auxiliary item together with its prompt; the remaining RoPE ids stay contiguous.

A model converted from Bagel carries its prompts as Bagel's Qwen2.5 tokenizer splits them
(``GaCConfig.prompt_tokens``); otherwise prompt text is tokenised byte by byte: byte b -> its rank in the GPT-2/Qwen2 byte-level alphabet, which is the
Qwen2.5 vocabulary id of that single-byte token (ids 0..255), so the same ids are valid for the 7B vocabulary
(a non-merged but legal tokenisation) and for the small presets' 260-token vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gac import flow
from gac.geometry import LatentItem, h2d, randn
from gac.masks import CAUSAL, FULL, NOISE
from gac.model import GaCConfig, PackedInputs

PROMPTS = {"image": "<Image>", "geometry": "<Geometry>", "warped": "<Warped>"}
MODALITY_CODE = {"image": 0, "geometry": 1, "warped": 2}
VARIANTS = ("geometry", "warped", "none")


def _byte_ranks() -> list[int]:
    """GPT-2 bytes_to_unicode order: printable bytes first, then the rest; rank = token id in Qwen2's vocab."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    rest = [b for b in range(256) if b not in printable]
    order = printable + rest
    ranks = [0] * 256
    for rank, b in enumerate(order):
        ranks[b] = rank
    return ranks


_BYTE_RANK = _byte_ranks()


def encode_text(text: str, cfg: GaCConfig) -> list[int]:
    """``[bos] + ids + [eos]`` (Bagel packs every text segment between <|im_start|> and <|im_end|>): the base
    model's own token ids where the config carries them (a model converted from Bagel), else byte ids."""
    ids = dict(cfg.prompt_tokens).get(text)
    body = list(ids) if ids is not None else [_BYTE_RANK[b] for b in text.encode("utf-8")]
    return [cfg.bos_id] + body + [cfg.eos_id]


# ---------------------------------------------------------------------------------------------- builder


@dataclass
class Packed:
    """A packed sequence plus what masks and the loss need."""

    inputs: PackedInputs
    split_id: torch.Tensor  # (L,) long
    split_mode: torch.Tensor  # (L,) long: CAUSAL / FULL / NOISE
    loss_idx: torch.Tensor  # (M,) rows of inputs.latents that carry loss (noisy tokens)
    v_target: torch.Tensor  # (M, P)
    next_rope: int
    next_split: int
    items: list[tuple[str, str, int, int]] = field(default_factory=list)  # (modality, role, gen_start, gen_end)
    loss_modality: torch.Tensor | None = None  # (M,) MODALITY_CODE of each loss row
    sample_id: torch.Tensor | None = None  # (L,) which packed sample a position belongs to (None: one sample)


class SequenceBuilder:
    """Appends text and latent items; ``build`` packs them into model inputs (rope/split ids may start > 0)."""

    def __init__(self, cfg: GaCConfig, rope_start: int = 0, split_start: int = 0):
        self.cfg = cfg
        self.rope, self.split = rope_start, split_start
        self.kind: list[int] = []  # 0 = und, 1 = gen, per position
        self.text_ids: list[int] = []
        self.rope_ids: list[int] = []
        self.split_ids: list[int] = []
        self.modes: list[int] = []
        self.lat: list[torch.Tensor] = []
        self.t: list[torch.Tensor] = []
        self.pos2d: list[torch.Tensor] = []
        self.rays: list[torch.Tensor] = []
        self.loss_rows: list[torch.Tensor] = []
        self.loss_codes: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.n_gen = 0
        self.items: list[tuple[str, str, int, int]] = []

    def _und(self, token: int, rope: int, mode: int) -> None:
        self.kind.append(0)
        self.text_ids.append(token)
        self.rope_ids.append(rope)
        self.split_ids.append(self.split)
        self.modes.append(mode)

    def text(self, text: str) -> SequenceBuilder:
        """A causal text segment; one new RoPE id per token."""
        for tok in encode_text(text, self.cfg):
            self._und(tok, self.rope, CAUSAL)
            self.rope += 1
        self.split += 1
        return self

    def prompt(self, modality: str) -> SequenceBuilder:
        return self.text(PROMPTS[modality])

    def latent(
        self,
        item: LatentItem,
        noisy: bool,
        t: float = 0.0,
        noise: torch.Tensor | None = None,
        modality: str = "image",
        x_t: torch.Tensor | None = None,
    ) -> SequenceBuilder:
        """``<vision_start> tokens <vision_end>`` sharing one RoPE id.

        Clean (noisy=False): x = x0, t = 0, FULL split, id advances; with ``t`` > 0 and ``noise`` it is
        noise-augmented context (x = (1 - t) x0 + t noise at flow time t, as training's ``--context-noise`` gives clean
        items), still FULL and out of the loss. Noisy: x_t = (1 - t) x0 + t noise (or the given ``x_t``), NOISE split,
        id stays; when ``noise`` is given the velocity target noise - x0 joins the loss.
        """
        n = item.num_tokens
        mode = NOISE if noisy else FULL
        x = item.tokens
        augmented = not noisy and t > 0
        if noisy and x_t is not None:
            x = x_t
        elif (noisy or augmented) and noise is not None:
            x = flow.interpolate(item.tokens, noise, torch.full((n,), t, dtype=item.tokens.dtype, device=x.device))
        elif noisy:
            raise ValueError("a noisy item needs noise or x_t")
        elif augmented:
            raise ValueError("a noise-augmented clean item (t > 0) needs noise")
        self._und(self.cfg.vision_start_id, self.rope, mode)
        start = self.n_gen
        self.kind.extend([1] * n)
        self.rope_ids.extend([self.rope] * n)
        self.split_ids.extend([self.split] * n)
        self.modes.extend([mode] * n)
        self.lat.append(x)
        self.t.append(torch.full((n,), float(t) if noisy or augmented else 0.0))
        self.pos2d.append(item.pos2d)
        self.rays.append(item.rays)
        if noisy and noise is not None:
            self.loss_rows.append(torch.arange(start, start + n))
            self.loss_codes.append(torch.full((n,), MODALITY_CODE[modality], dtype=torch.long))
            self.targets.append(flow.velocity_target(item.tokens, noise))
        self.n_gen += n
        self._und(self.cfg.vision_end_id, self.rope, mode)
        self.items.append((modality, "noisy" if noisy else "clean", start, start + n))
        self.split += 1
        if not noisy:
            self.rope += 1
        return self

    def build(self, device="cpu") -> Packed:
        """Pack into tensors on ``device``; host-side index tensors travel asynchronously (no GPU stall)."""
        cfg = self.cfg
        kind = torch.tensor(self.kind, dtype=torch.long)
        P, R = cfg.latent_dim, cfg.ray_dim
        empty = torch.zeros(0, P, device=device)
        host = {
            "text_ids": torch.tensor(self.text_ids, dtype=torch.long),
            "und_idx": torch.nonzero(kind == 0).flatten(),
            "gen_idx": torch.nonzero(kind == 1).flatten(),
            "rope_ids": torch.tensor(self.rope_ids, dtype=torch.long),
            "split_id": torch.tensor(self.split_ids, dtype=torch.long),
            "split_mode": torch.tensor(self.modes, dtype=torch.long),
            "timesteps": torch.cat(self.t) if self.t else torch.zeros(0),
            "loss_idx": torch.cat(self.loss_rows) if self.loss_rows else torch.zeros(0, dtype=torch.long),
            "loss_modality": torch.cat(self.loss_codes) if self.loss_codes else torch.zeros(0, dtype=torch.long),
        }
        dev = {k: h2d(v, device) for k, v in host.items()}
        inputs = PackedInputs(
            text_ids=dev["text_ids"],
            und_idx=dev["und_idx"],
            latents=_cat_on(self.lat, device) if self.lat else empty,
            timesteps=dev["timesteps"],
            pos2d=_cat_on(self.pos2d, device).long() if self.pos2d else torch.zeros(0, dtype=torch.long, device=device),
            rays=_cat_on(self.rays, device) if self.rays else torch.zeros(0, R, device=device),
            gen_idx=dev["gen_idx"],
            rope_ids=dev["rope_ids"],
        )
        return Packed(
            inputs=inputs,
            split_id=dev["split_id"],
            split_mode=dev["split_mode"],
            loss_idx=dev["loss_idx"],
            v_target=_cat_on(self.targets, device) if self.targets else empty,
            next_rope=self.rope,
            next_split=self.split,
            items=list(self.items),
            loss_modality=dev["loss_modality"],
        )


def _cat_on(parts: list[torch.Tensor], device) -> torch.Tensor:
    """Concatenate on the target device (items already there are not copied through host memory)."""
    return torch.cat([h2d(p, device) for p in parts])


# ---------------------------------------------------------------------------------------------- training sequences


@dataclass
class FrameData:
    """Clean latent items of one training frame: its image, and its auxiliary item (geometry G_k, or the warped
    image W_k rendered from frame k - 1 into frame k's cameras), or None."""

    image: LatentItem
    aux: LatentItem | None = None


def item_plan(num_frames: int, num_context: int, variant: str, keep_aux: list[bool]) -> list[tuple[str, int, bool]]:
    """(modality, frame, generated) of every latent item of a sample, in sequence order: per frame its warped image
    (#2, from the second frame on), its image (generated from ``num_context`` on), its geometry (#1); an auxiliary
    item only where ``keep_aux`` (geometry dropout) keeps it."""
    plan = []
    for k in range(num_frames):
        keep = variant != "none" and keep_aux[k] and (variant == "geometry" or k >= 1)
        if variant == "warped" and keep:
            plan.append(("warped", k, True))
        plan.append(("image", k, k >= num_context))
        if variant == "geometry" and keep:
            plan.append(("geometry", k, True))
    return plan


def build_training_sequence(
    cfg: GaCConfig,
    frames: list[FrameData],
    num_context: int,
    variant: str = "geometry",
    geometry_dropout: float = 0.5,
    t_shift: float = 1.0,
    generator: torch.Generator | None = None,
) -> Packed:
    """Interleaved sequence of one sample, item by item: frames [0, num_context) are clean context, the rest are
    targets (the readable reference of :mod:`gac.batch_builder`, which training uses).

    Every kept auxiliary item (geometry of every frame for #1, warped image of every transition for #2) is a
    generated item with loss; each is dropped with probability ``geometry_dropout`` (paper 4.3). Each noisy item
    draws its own t (logit-normal, ``t_shift``) and its own noise.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if not 1 <= num_context < len(frames):
        raise ValueError(f"num_context must be in [1, {len(frames) - 1}], got {num_context}")
    keep_aux = []
    for fr in frames:
        keep = variant != "none" and fr.aux is not None
        if keep and geometry_dropout > 0:
            keep = bool(torch.rand((), generator=generator) >= geometry_dropout)
        keep_aux.append(keep)
    plan = item_plan(len(frames), num_context, variant, keep_aux)
    b = SequenceBuilder(cfg)
    for idx, (modality, k, generated) in enumerate(plan):
        item = frames[k].image if modality == "image" else frames[k].aux
        b.prompt(modality)
        if generated:
            t = float(flow.sample_t(1, t_shift, generator)[0])
            noise = randn(item.tokens.shape, generator, item.tokens.device).to(item.tokens.dtype)
            b.latent(item, noisy=True, t=t, noise=noise, modality=modality)
            if idx < len(plan) - 1:
                b.latent(item, noisy=False, modality=modality)
        else:
            b.latent(item, noisy=False, modality=modality)
    return b.build(device=frames[0].image.tokens.device)
