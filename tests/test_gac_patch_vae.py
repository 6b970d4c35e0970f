"""The stand-in patch VAE: PCA start, per-channel normalisation folded into the weights, safetensors round trip."""

from __future__ import annotations

import numpy as np
import torch

from gac.patch_vae import PatchVAE, PatchVAEConfig
from gac.vae import LatentCodec, load_vae, save_vae


def _images(n=6, seed=0):
    """Smooth random images in [-1, 1] (sums of low-frequency sinusoids), (n, 3, 32, 64)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 64), indexing="ij")
    out = torch.zeros(n, 3, 32, 64)
    for _ in range(6):
        f = torch.rand(n, 3, 2, generator=g) * 6
        ph = torch.rand(n, 3, 1, 1, generator=g) * 6.28
        out += 0.15 * torch.sin(f[..., 0, None, None] * xx * 6.28 + f[..., 1, None, None] * yy * 6.28 + ph)
    return out.clamp(-1, 1)


def _psnr(a, b):
    return float(-10 * torch.log10(((a - b) / 2).pow(2).mean()))


def test_pca_start_is_the_best_linear_codec_and_beats_a_random_start():
    x = _images(8)
    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(latent_channels=16, width=32, blocks=1))
    with torch.no_grad():
        before = _psnr(vae.decode(vae.encode(x).latent_dist.mean).sample, x)
        patches = torch.nn.functional.pixel_unshuffle(x, 8).permute(0, 2, 3, 1).reshape(-1, 192)
        vae.init_linear(patches)
        after = _psnr(vae.decode(vae.encode(x).latent_dist.mean).sample, x)
        # the decoder's linear path reproduces projection onto the top-16 principal components exactly
        mu = patches.double().mean(0)
        _, vecs = torch.linalg.eigh(((patches.double() - mu).T @ (patches.double() - mu)))
        B = vecs[:, -16:]
        proj = ((patches.double() - mu) @ B @ B.T + mu).float()
        rec = torch.nn.functional.pixel_unshuffle(vae.decode(vae.encode(x).latent_dist.mean).sample, 8)
        np.testing.assert_allclose(rec.permute(0, 2, 3, 1).reshape(-1, 192), proj, atol=1e-4)
    assert after > before + 10


def test_folded_normalisation_gives_unit_channels_and_the_same_reconstruction():
    x = _images(8, seed=1)
    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(latent_channels=8, width=32, blocks=1))
    with torch.no_grad():
        vae.init_linear(torch.nn.functional.pixel_unshuffle(x, 8).permute(0, 2, 3, 1).reshape(-1, 192))
        for p in vae.parameters():  # a trained-looking network: nonzero corrections
            p.add_(0.01 * torch.randn_like(p))
        z = vae.encode(x).latent_dist.mean
        rec = vae.decode(z).sample
        zc = z.transpose(0, 1).flatten(1)
        vae.fold_normalization(zc.mean(1), zc.std(1))
        z2 = vae.encode(x).latent_dist.mean
        np.testing.assert_allclose(z2.transpose(0, 1).flatten(1).mean(1), 0, atol=1e-4)
        np.testing.assert_allclose(z2.transpose(0, 1).flatten(1).std(1), 1, atol=1e-4)
        np.testing.assert_allclose(vae.decode(z2).sample, rec, atol=1e-4)


def test_save_load_round_trip_through_the_codec(tmp_path):
    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(latent_channels=4, width=32, blocks=1))
    vae.register_to_config(scaling_factor=0.5, shift_factor=0.1)
    save_vae(vae, tmp_path / "vae")
    codec = load_vae(tmp_path / "vae")
    assert codec.downsample == 8 and codec.latent_channels == 4 and codec.scale == 0.5 and codec.shift == 0.1
    x = _images(2)
    ref = LatentCodec(vae)
    np.testing.assert_allclose(codec.encode_float(x), ref.encode_float(x), atol=1e-6)


def test_global_normalisation_keeps_channel_ratios_and_unit_mean_variance():
    from gac.train_vae import latent_normalization

    x = _images(8, seed=2)
    torch.manual_seed(0)
    vae = PatchVAE(PatchVAEConfig(latent_channels=8, width=32, blocks=1))
    with torch.no_grad():
        vae.init_linear(torch.nn.functional.pixel_unshuffle(x, 8).permute(0, 2, 3, 1).reshape(-1, 192))
        z = vae.encode(x).latent_dist.mean
        std_before = z.transpose(0, 1).flatten(1).std(1)
        assert float(std_before.max() / std_before.min()) > 1.3  # principal components differ in variance
        mean_c, std_c = latent_normalization(z, "global")
        assert torch.allclose(std_c, std_c[0].expand_as(std_c))
        rec = vae.decode(z).sample
        vae.fold_normalization(mean_c, std_c)
        z2 = vae.encode(x).latent_dist.mean
        zc = z2.transpose(0, 1).flatten(1)
        np.testing.assert_allclose(zc.mean(1), 0, atol=1e-4)
        np.testing.assert_allclose(float(zc.square().mean()), 1.0, rtol=1e-3)
        np.testing.assert_allclose(zc.std(1) / zc.std(1)[0], std_before / std_before[0], rtol=1e-3)
        np.testing.assert_allclose(vae.decode(z2).sample, rec, atol=1e-4)
    _, std_ch = latent_normalization(z, "channel")
    np.testing.assert_allclose(std_ch, std_before, rtol=1e-5)
