"""Texture library of the synthroom scenes: bundled scikit-image photos and procedural patterns.

Every texture is a square ``TEXTURE_SIZE`` x ``TEXTURE_SIZE`` RGB image (uint8) plus the aspect ratio
(height / width) of the picture it came from, so a material can tile it in world units without stretching
(tile height = tile width * aspect). The library is fixed: it does not depend on the dataset seed, and
the procedural patterns use their own fixed random generators, so every process builds identical pixels.

Only loaders whose files ship inside the scikit-image wheel are used (no pooch, no network).

:class:`TextureAtlas` packs every texture and its mip pyramid (2x2 box averages) into one flat
``(texels, 3)`` float32 array that the ray caster samples with bilinear lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

TEXTURE_SIZE = 256  # texels per side at mip level 0; a power of two so every level halves exactly
NUM_MIP_LEVELS = 7  # 256 ... 4 texels


@dataclass(frozen=True)
class Texture:
    name: str
    rgb: np.ndarray  # (TEXTURE_SIZE, TEXTURE_SIZE, 3) uint8
    aspect: float  # height / width of the source picture; tile_v_m = tile_u_m * aspect
    kind: str  # "photo" (a picture: hang it once), "pattern" (tiles seamlessly), "tiled-photo"


# ---------------------------------------------------------------------------------------------- helpers


def _square_uint8(img: np.ndarray) -> np.ndarray:
    """Resample any uint8 image (gray, RGB or RGBA) to TEXTURE_SIZE^2 RGB with a box-like filter."""
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:  # composite RGBA onto white so transparent regions are not black
        alpha = img[..., 3:4].astype(np.float64) / 255.0
        img = (img[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(img[..., :3]))
    return np.asarray(pil.resize((TEXTURE_SIZE, TEXTURE_SIZE), resample=Image.LANCZOS))


def _to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return (np.clip(rgb01, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _tint(gray01: np.ndarray, dark_rgb, light_rgb) -> np.ndarray:
    """Map a gray image in [0, 1] onto the segment between two colours."""
    g = gray01[..., None]
    return (1.0 - g) * np.asarray(dark_rgb, dtype=np.float64) + g * np.asarray(light_rgb, dtype=np.float64)


def _periodic_noise(rng: np.random.Generator, size: int, beta: float, aniso=(1.0, 1.0)) -> np.ndarray:
    """Seamlessly tiling 1/f^beta noise in [0, 1]; ``aniso`` stretches frequencies per axis (y, x)."""
    white = rng.standard_normal((size, size))
    fy = np.fft.fftfreq(size)[:, None] * aniso[0]
    fx = np.fft.fftfreq(size)[None, :] * aniso[1]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(white) / radius**beta
    spectrum[0, 0] = 0.0
    noise = np.fft.ifft2(spectrum).real
    return (noise - noise.min()) / (noise.max() - noise.min())


def _grid(size: int = TEXTURE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Texel-centre coordinates in [0, 1): (y, x)."""
    c = (np.arange(size) + 0.5) / size
    return np.meshgrid(c, c, indexing="ij")


# ---------------------------------------------------------------------------------------------- procedural


def _wood_planks(seed: int, base_rgb, planks: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid()
    plank = np.floor(y * planks).astype(int)
    grain_noise = _periodic_noise(rng, TEXTURE_SIZE, 1.6, aniso=(1.0, 0.12))
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (y * planks * 3.0 + 4.0 * grain_noise))
    shade = 0.78 + 0.14 * rings + 0.16 * rng.uniform(-1, 1, planks)[plank]
    joints = rng.uniform(0, 1, planks)[plank]
    gap = (np.abs(((x - joints) % 1.0) - 0.5) > 0.497) | ((y * planks) % 1.0 < 0.03)
    rgb = np.asarray(base_rgb)[None, None] * shade[..., None]
    rgb[gap] *= 0.45
    return _to_uint8(rgb)


def _tiles(seed: int, colour_a, colour_b, per_side: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid()
    iy, ix = np.floor(y * per_side).astype(int), np.floor(x * per_side).astype(int)
    pick = rng.uniform(0, 1, (per_side, per_side))[iy, ix][..., None]
    rgb = (1 - pick) * np.asarray(colour_a) + pick * np.asarray(colour_b)
    rgb = rgb * (0.85 + 0.3 * _periodic_noise(rng, TEXTURE_SIZE, 1.2))[..., None]
    grout = ((y * per_side) % 1.0 < 0.035) | ((x * per_side) % 1.0 < 0.035)
    rgb[grout] = 0.32
    return _to_uint8(rgb)


def _checker(seed: int, colour_a, colour_b, per_side: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid()
    odd = ((np.floor(y * per_side) + np.floor(x * per_side)) % 2)[..., None]
    rgb = (1 - odd) * np.asarray(colour_a) + odd * np.asarray(colour_b)
    return _to_uint8(rgb * (0.88 + 0.24 * _periodic_noise(rng, TEXTURE_SIZE, 1.0))[..., None])


def _stripes(seed: int, colours) -> np.ndarray:
    """Wallpaper: vertical stripes of uneven width with a faint noise motif."""
    rng = np.random.default_rng(seed)
    y, x = _grid()
    widths = rng.uniform(0.5, 2.0, 12)
    edges = np.cumsum(widths) / widths.sum()
    band = np.searchsorted(edges, x, side="right")
    palette = np.asarray(colours, dtype=np.float64)
    rgb = palette[band % len(palette)]
    motif = _periodic_noise(rng, TEXTURE_SIZE, 0.9)
    return _to_uint8(rgb * (0.82 + 0.3 * motif)[..., None])


def _books(seed: int) -> np.ndarray:
    """Bookshelf front: four shelves of coloured spines of varying width and height."""
    rng = np.random.default_rng(seed)
    rgb = np.full((TEXTURE_SIZE, TEXTURE_SIZE, 3), 0.22)
    shelf_px = TEXTURE_SIZE // 4
    for shelf in range(4):
        top, x = shelf * shelf_px, 0
        while x < TEXTURE_SIZE:
            w = int(rng.integers(5, 16))
            h = int(rng.integers(int(shelf_px * 0.55), shelf_px - 6))
            colour = rng.uniform(0.15, 0.95, 3)
            band = np.linspace(0.8, 1.1, min(w, TEXTURE_SIZE - x))[None, :, None]
            rgb[top + shelf_px - 4 - h : top + shelf_px - 4, x : x + w] = colour * band
            label = top + shelf_px - 4 - int(h * rng.uniform(0.3, 0.7))
            rgb[label : label + 3, x + 1 : x + w - 1] = 0.95
            x += w + int(rng.integers(0, 3))
        rgb[top + shelf_px - 4 : top + shelf_px] = (0.45, 0.3, 0.18)
    return _to_uint8(rgb)


def _marble(seed: int, colour_dark, colour_light) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid()
    turbulence = _periodic_noise(rng, TEXTURE_SIZE, 1.8)
    veins = np.abs(np.sin(2 * np.pi * (x + y + 3.0 * turbulence))) ** 0.35
    return _to_uint8(_tint(veins, colour_dark, colour_light))


def _plaster(seed: int, colour) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = _periodic_noise(rng, TEXTURE_SIZE, 2.0)
    fine = _periodic_noise(rng, TEXTURE_SIZE, 0.7)
    shade = 0.72 + 0.22 * coarse + 0.14 * fine
    return _to_uint8(np.asarray(colour)[None, None] * shade[..., None])


def _fabric(seed: int, colour_a, colour_b) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid()
    weave = 0.5 + 0.25 * np.sin(2 * np.pi * 48 * x) * np.sin(2 * np.pi * 48 * y)
    blotch = _periodic_noise(rng, TEXTURE_SIZE, 1.5)
    return _to_uint8(_tint(np.clip(0.6 * weave + 0.5 * blotch, 0, 1), colour_a, colour_b))


# ---------------------------------------------------------------------------------------------- library


def _skimage_loaders() -> dict[str, tuple[Callable[[], np.ndarray], str]]:
    """Photos bundled in the scikit-image wheel: name -> (loader, kind)."""
    from skimage import data

    return {
        "astronaut": (data.astronaut, "photo"),
        "coffee": (data.coffee, "photo"),
        "chelsea": (data.chelsea, "photo"),
        "rocket": (data.rocket, "photo"),
        "colorwheel": (data.colorwheel, "photo"),
        "immunohistochemistry": (data.immunohistochemistry, "photo"),
        "hubble": (data.hubble_deep_field, "photo"),
        "retina": (data.retina, "photo"),
        "motorcycle": (lambda: data.stereo_motorcycle()[0], "photo"),
        "logo": (data.logo, "photo"),
        "camera": (data.camera, "photo"),
        "coins": (data.coins, "photo"),
        "clock": (data.clock, "photo"),
    }


# gray photos used as tiled surface materials: name -> (loader name, dark tint, light tint)
_TINTED = {
    "brick": ("brick", (0.30, 0.10, 0.06), (0.95, 0.62, 0.45)),
    "grass_carpet": ("grass", (0.10, 0.22, 0.10), (0.60, 0.80, 0.45)),
    "gravel_stone": ("gravel", (0.22, 0.20, 0.18), (0.90, 0.86, 0.78)),
    "moon_plaster": ("moon", (0.45, 0.42, 0.38), (1.00, 0.97, 0.90)),
    "text_wallpaper": ("text", (0.25, 0.20, 0.35), (0.95, 0.92, 0.80)),
    "page_wallpaper": ("page", (0.20, 0.25, 0.30), (0.92, 0.90, 0.84)),
    "coins_panel": ("coins", (0.20, 0.16, 0.10), (0.95, 0.82, 0.55)),
    "cell_blue": ("cell", (0.05, 0.12, 0.30), (0.70, 0.85, 1.00)),
}

_PROCEDURAL: dict[str, Callable[[], np.ndarray]] = {
    "wood_oak": lambda: _wood_planks(11, (0.72, 0.50, 0.30)),
    "wood_walnut": lambda: _wood_planks(12, (0.45, 0.29, 0.18)),
    "wood_pale": lambda: _wood_planks(13, (0.86, 0.74, 0.55), planks=6),
    "tiles_cream": lambda: _tiles(21, (0.90, 0.86, 0.76), (0.70, 0.62, 0.50)),
    "tiles_blue": lambda: _tiles(22, (0.55, 0.68, 0.85), (0.85, 0.88, 0.92), per_side=6),
    "checker_bw": lambda: _checker(31, (0.12, 0.12, 0.14), (0.92, 0.90, 0.86)),
    "checker_red": lambda: _checker(32, (0.70, 0.18, 0.15), (0.95, 0.85, 0.70), per_side=4),
    "stripes_green": lambda: _stripes(41, [(0.55, 0.70, 0.55), (0.90, 0.88, 0.78), (0.35, 0.50, 0.40)]),
    "stripes_rose": lambda: _stripes(42, [(0.85, 0.60, 0.62), (0.95, 0.90, 0.86), (0.60, 0.35, 0.40)]),
    "stripes_blue": lambda: _stripes(43, [(0.45, 0.55, 0.75), (0.88, 0.90, 0.95), (0.25, 0.30, 0.50)]),
    "books": lambda: _books(51),
    "marble": lambda: _marble(61, (0.35, 0.35, 0.38), (0.95, 0.94, 0.92)),
    "plaster_warm": lambda: _plaster(71, (0.95, 0.88, 0.76)),
    "plaster_cool": lambda: _plaster(72, (0.80, 0.86, 0.92)),
    "fabric_teal": lambda: _fabric(81, (0.05, 0.25, 0.28), (0.35, 0.70, 0.70)),
    "fabric_mustard": lambda: _fabric(82, (0.35, 0.22, 0.02), (0.90, 0.72, 0.25)),
    "fabric_grey": lambda: _fabric(83, (0.18, 0.18, 0.20), (0.70, 0.70, 0.72)),
}


@lru_cache(maxsize=1)
def texture_library() -> tuple[Texture, ...]:
    """Every texture, in a fixed order (the order is part of the output: scenes index into it by name)."""
    out: list[Texture] = []
    loaders = _skimage_loaders()
    for name, (load, kind) in loaders.items():
        img = load()
        out.append(Texture(name, _square_uint8(img), img.shape[0] / img.shape[1], kind))
    from skimage import data

    for name, (loader, dark, light) in _TINTED.items():
        gray = getattr(data, loader)()
        g01 = _square_uint8(gray)[..., 0].astype(np.float64) / 255.0
        out.append(Texture(name, _to_uint8(_tint(g01, dark, light)), gray.shape[0] / gray.shape[1], "tiled-photo"))
    for name, make in _PROCEDURAL.items():
        out.append(Texture(name, make(), 1.0, "pattern"))
    return tuple(out)


def texture_names(kind: str | None = None) -> list[str]:
    return [t.name for t in texture_library() if kind is None or t.kind == kind]


# ---------------------------------------------------------------------------------------------- atlas


def _mip_pyramid(rgb: np.ndarray) -> list[np.ndarray]:
    """Level 0 .. NUM_MIP_LEVELS-1, each a 2x2 box average of the previous (exact, order-fixed)."""
    levels = [rgb]
    for _ in range(NUM_MIP_LEVELS - 1):
        a = levels[-1]
        levels.append(np.float32(0.25) * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
    return levels


@dataclass(frozen=True)
class TextureAtlas:
    """All textures and their mips in one flat array of packed RGBA8 texels.

    Texel (x, y) of texture ``i`` at mip level ``l`` is ``texels[level_offset[l] + (i * s + y) * s + x]``
    with ``s = TEXTURE_SIZE >> l`` (textures are stacked level by level so one gather serves all). Each
    texel is one uint32 whose bytes are R, G, B, 0 (``texels.view(np.uint8)``): gathering one 4-byte word
    is several times faster than gathering three floats, and the atlas stays small enough for the cache.
    """

    names: tuple[str, ...]
    aspects: np.ndarray  # (T,) height / width of each source picture
    texels: np.ndarray  # (sum over levels of T * s^2,) uint32, bytes R G B 0
    level_offset: np.ndarray  # (NUM_MIP_LEVELS,) int64

    def index(self, name: str) -> int:
        return self.names.index(name)


@lru_cache(maxsize=1)
def texture_atlas() -> TextureAtlas:
    lib = texture_library()
    sizes = [len(lib) * (TEXTURE_SIZE >> level) ** 2 for level in range(NUM_MIP_LEVELS)]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rgba = np.zeros((sum(sizes), 4), dtype=np.uint8)
    for i, texture in enumerate(lib):  # one texture at a time keeps the peak memory small
        for level, img in enumerate(_mip_pyramid(texture.rgb.astype(np.float32))):
            n = img.shape[0] * img.shape[1]
            start = offsets[level] + i * n
            rgba[start : start + n, :3] = np.floor(img.reshape(-1, 3) + np.float32(0.5)).astype(np.uint8)
    return TextureAtlas(
        names=tuple(t.name for t in lib),
        aspects=np.array([t.aspect for t in lib]),
        texels=rgba.view(np.uint32).reshape(-1),
        level_offset=offsets,
    )
