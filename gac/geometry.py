"""Token layout of views and grids, Plücker ray patches, pose normalisation and the geometry encodings.

Grid (paper 5.1: "four consecutive views in a single frame in a grid pattern"): cell c of a 2x2 frame sits at
row c // 2, column c % 2. Each view is VAE-encoded on its own and its latent tiles the grid (no VAE receptive field
crosses a cell border); a cell's tokens carry the 2D position ids of their place in the full grid, so the token
set of a frame equals Bagel's row-major packing of the tiled latent up to a permutation inside one bidirectional
split. A frame may hold fewer than four cells (the single reference view that starts a rollout): missing cells
simply have no tokens.

Scale: a sample's poses are made relative to its anchor view (the first context view, CameraCtrl's "relative
pose") and every length (camera translations, depth) is divided by the scene scale s = median depth of the anchor
view, so Plücker moments and geometry share one unit.

Geometry encodings for the RGB VAE (3 channels in [-1, 1]):
    depth:     u = d / (s + d) (0 at the camera, 1/2 at the median depth, 1 at infinity); x = 2u - 1, replicated.
    point map: anchor-frame points p / s, squashed per axis as p / (1 + |p|).
Both are smooth, invertible and need no clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gac_bench import cameras
from gac_bench.host import h2d  # noqa: F401  (geo.h2d: GaC's host-to-device copies)

# ---------------------------------------------------------------------------------------------- device


def randn(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Standard normal noise on ``device`` from ``generator`` (drawn where the generator lives)."""
    device = torch.device(device)
    if generator is not None and generator.device.type == device.type:
        return torch.randn(shape, generator=generator, device=device)
    return h2d(torch.randn(shape, generator=generator), device)


# ---------------------------------------------------------------------------------------------- tokens


def patchify(latent_CHW: torch.Tensor, p: int) -> torch.Tensor:
    """(C, h, w) -> (h/p * w/p, p*p*C), tokens row-major, each ordered (row in patch, column in patch, channel)."""
    C, h, w = latent_CHW.shape
    x = latent_CHW.reshape(C, h // p, p, w // p, p).permute(1, 3, 2, 4, 0)
    return x.reshape((h // p) * (w // p), p * p * C)


def unpatchify(tokens_NP: torch.Tensor, C: int, h: int, w: int, p: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (h/p * w/p, p*p*C) -> (C, h, w)."""
    x = tokens_NP.reshape(h // p, w // p, p, p, C).permute(4, 0, 2, 1, 3)
    return x.reshape(C, h, w)


def ray_patches(rays_6HW: torch.Tensor, k: int) -> torch.Tensor:
    """(6, H, W) -> (H/k * W/k, 6*k*k), each patch flattened (channel, row, column) like a Conv2d weight."""
    c, H, W = rays_6HW.shape
    x = rays_6HW.reshape(c, H // k, k, W // k, k).permute(1, 3, 0, 2, 4)
    return x.reshape((H // k) * (W // k), c * k * k)


def cell_pos_ids(cell: int, h_tok: int, w_tok: int, grid_cols: int, max_latent_size: int, device="cpu") -> torch.Tensor:
    """2D position ids i * S + j of a cell's tokens inside the grid frame, row-major within the cell."""
    key = (cell, h_tok, w_tok, grid_cols, max_latent_size, str(device))
    if key not in _POS_CACHE:  # a handful of distinct cells: computed once per device
        r0, c0 = (cell // grid_cols) * h_tok, (cell % grid_cols) * w_tok
        i = torch.arange(h_tok)[:, None] + r0
        j = torch.arange(w_tok)[None, :] + c0
        if (c0 + w_tok) > max_latent_size:
            raise ValueError(f"grid is {c0 + w_tok} tokens wide but max_latent_size is {max_latent_size}; raise it")
        _POS_CACHE[key] = (i * max_latent_size + j).reshape(-1).to(device)
    return _POS_CACHE[key]


_POS_CACHE: dict[tuple, torch.Tensor] = {}


@dataclass
class LatentItem:
    """One frame (a grid of up to 4 views, or a single view) as latent tokens.

    tokens (N, P) clean x0; rays (N, R) Plücker patches; pos2d (N,) long; cells: the grid cells present, in order;
    tokens_per_cell = N / len(cells).
    """

    tokens: torch.Tensor
    rays: torch.Tensor
    pos2d: torch.Tensor
    cells: tuple[int, ...]

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def with_tokens(self, tokens: torch.Tensor) -> LatentItem:
        return LatentItem(tokens, self.rays, self.pos2d, self.cells)


def make_item(
    latents: list[torch.Tensor], rays: list[torch.Tensor], cells: list[int], cfg, grid_cols: int
) -> LatentItem:
    """Build a frame from per-view latents (C, h, w) and ray maps (6, H, W) placed in ``cells``."""
    p, k, S = cfg.latent_patch_size, cfg.pixels_per_token, cfg.max_latent_size
    toks, rps, pos = [], [], []
    for lat, ray, cell in zip(latents, rays, cells):
        h_tok, w_tok = lat.shape[1] // p, lat.shape[2] // p
        toks.append(patchify(lat, p))
        rps.append(ray_patches(ray.to(lat.dtype), k))
        pos.append(cell_pos_ids(cell, h_tok, w_tok, grid_cols, S, lat.device))
    return LatentItem(torch.cat(toks), torch.cat(rps), torch.cat(pos), tuple(cells))


def split_item_tokens(item_tokens: torch.Tensor, num_cells: int, C: int, h: int, w: int, p: int) -> list[torch.Tensor]:
    """Token block of a frame back to per-cell latents (C, h, w)."""
    return [unpatchify(t, C, h, w, p) for t in item_tokens.chunk(num_cells)]


# ---------------------------------------------------------------------------------------------- poses and rays


def scene_scale(depth: np.ndarray) -> float:
    """s = median of the valid (finite, positive) depth of the anchor view."""
    d = np.asarray(depth, dtype=np.float64)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ValueError("scene scale: the depth map has no valid pixel")
    return float(np.median(d))


def normalize_poses(c2w: np.ndarray, anchor_c2w: np.ndarray, scale: float) -> np.ndarray:
    """c2w (N, 4, 4) relative to the anchor camera (anchor -> identity), translations divided by ``scale``."""
    rel = cameras.invert_rigid(np.asarray(anchor_c2w))[None] @ np.asarray(c2w, dtype=np.float64)
    rel = rel.copy()
    rel[:, :3, 3] /= scale
    return rel


def view_rays(K: np.ndarray, c2w_norm: np.ndarray, height: int, width: int, device="cpu") -> torch.Tensor:
    """Plücker maps (N, 6, H, W) float32 of normalised poses: CameraCtrl's (o x d, d) with unit d through pixel
    centres (u + 0.5, v + 0.5), the construction of :func:`gac_bench.cameras.plucker_rays`, computed in torch."""
    c2w = h2d(np.asarray(c2w_norm, dtype=np.float64), device)
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float64) + 0.5,
                          torch.arange(width, device=device, dtype=torch.float64) + 0.5, indexing="ij")  # fmt: skip
    d_cam = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)
    d_cam = d_cam / d_cam.norm(dim=-1, keepdim=True)
    d = torch.einsum("hwj,nij->nhwi", d_cam, c2w[:, :3, :3])
    o = c2w[:, None, None, :3, 3].expand_as(d)
    return torch.cat([torch.linalg.cross(o, d, dim=-1), d], -1).permute(0, 3, 1, 2).float().contiguous()


# ---------------------------------------------------------------------------------------------- geometry encodings


def encode_depth(depth_z: np.ndarray, scale: float) -> np.ndarray:
    """z-depth (H, W) -> (H, W, 3) float32 in [-1, 1]: 2 d / (s + d) - 1, replicated over RGB."""
    d = np.clip(np.nan_to_num(np.asarray(depth_z, dtype=np.float64), nan=0.0, posinf=1e12), 0.0, None) / scale
    x = (2.0 * d / (1.0 + d) - 1.0).astype(np.float32)
    return np.repeat(x[..., None], 3, axis=-1)


def decode_depth(img: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of :func:`encode_depth` from a decoded (H, W, 3) image in [-1, 1] (channels averaged)."""
    u = np.clip((np.asarray(img, dtype=np.float64).mean(-1) + 1.0) / 2.0, 0.0, 1.0 - 1e-4)
    return (scale * u / (1.0 - u)).astype(np.float32)


def encode_pointmap(depth_z: np.ndarray, K: np.ndarray, c2w_norm: np.ndarray, scale: float) -> np.ndarray:
    """z-depth -> anchor-frame points / s, squashed p / (1 + |p|): (H, W, 3) float32 in (-1, 1)."""
    pts = cameras.unproject_depth(np.asarray(depth_z, dtype=np.float64) / scale, K, c2w_norm)
    return (pts / (1.0 + np.abs(pts))).astype(np.float32)


def decode_pointmap_depth(img: np.ndarray, c2w_norm: np.ndarray, scale: float) -> np.ndarray:
    """z-depth of a view from its decoded point map (inverse squash, then into the view's camera frame)."""
    x = np.clip(np.asarray(img, dtype=np.float64), -1 + 1e-4, 1 - 1e-4)
    pts = x / (1.0 - np.abs(x))
    w2c = cameras.invert_rigid(c2w_norm)
    z = pts @ w2c[:3, :3].T[:, 2] + w2c[2, 3]
    return (z * scale).astype(np.float32)


def encode_geometry(kind: str, depth_z: np.ndarray, K: np.ndarray, c2w_norm: np.ndarray, scale: float) -> np.ndarray:
    if kind == "depth":
        return encode_depth(depth_z, scale)
    if kind == "pointmap":
        return encode_pointmap(depth_z, K, c2w_norm, scale)
    raise ValueError(f"unknown geometry kind {kind!r}; known: depth, pointmap")


def encode_geometry_torch(
    kind: str, depth_z: torch.Tensor, K: np.ndarray, c2w_norm: np.ndarray, scale
) -> torch.Tensor:
    """:func:`encode_geometry` for a batch on any device: z-depth (V, H, W) -> (V, 3, H, W) float32 in [-1, 1].
    ``scale``: one float, or one per view (a tensor on the device)."""
    if torch.is_tensor(scale):
        scale = scale.float().reshape(-1, 1, 1)
    d = torch.nan_to_num(depth_z.float(), nan=0.0, posinf=1e12).clamp_min(0.0) / scale
    if kind == "depth":
        return (2.0 * d / (1.0 + d) - 1.0)[:, None].expand(-1, 3, -1, -1).contiguous()
    if kind == "pointmap":
        V, H, W = d.shape
        dev = d.device
        v, u = torch.meshgrid(torch.arange(H, device=dev, dtype=torch.float32) + 0.5,
                              torch.arange(W, device=dev, dtype=torch.float32) + 0.5, indexing="ij")  # fmt: skip
        p_cam = torch.stack([(u - float(K[0, 2])) / float(K[0, 0]) * d, (v - float(K[1, 2])) / float(K[1, 1]) * d, d],
                            dim=-1)  # fmt: skip
        c2w = h2d(np.asarray(c2w_norm, dtype=np.float32), dev)
        pts = torch.einsum("vhwj,vij->vhwi", p_cam, c2w[:, :3, :3]) + c2w[:, None, None, :3, 3]
        return (pts / (1.0 + pts.abs())).permute(0, 3, 1, 2).contiguous()
    raise ValueError(f"unknown geometry kind {kind!r}; known: depth, pointmap")


def decode_geometry(kind: str, img: np.ndarray, c2w_norm: np.ndarray, scale: float) -> np.ndarray:
    if kind == "depth":
        return decode_depth(img, scale)
    if kind == "pointmap":
        return decode_pointmap_depth(img, c2w_norm, scale)
    raise ValueError(f"unknown geometry kind {kind!r}; known: depth, pointmap")
