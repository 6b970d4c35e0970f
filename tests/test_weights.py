"""The weights registry: locations, presence, size/sha256 checks, the printed table. Nothing may touch the network."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from gac_bench import weights as W


@pytest.fixture(autouse=True)
def offline_and_isolated(tmp_path, monkeypatch):
    """Every test: network calls raise, and all caches point into tmp_path."""

    def no_network(*args, **kwargs):
        raise AssertionError("the weights registry must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for var in ("GAC_BENCH_INCEPTION", "GAC_BENCH_VGGT", "GAC_BENCH_FLUX_VAE", "GAC_BENCH_BAGEL", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GAC_BENCH_HOME", str(tmp_path / "gac"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _status(statuses, name):
    return next(s for s in statuses if s.name == name)


def test_registry_has_every_file_and_lead_api_still_works():
    assert {"alexnet-owt-7be5be79.pth", W.INCEPTION_FILE_NAME, "VGGT-1B", "flux-vae", "BAGEL-7B-MoT"} <= set(
        W.WEIGHT_FILES
    )
    assert W.WEIGHT_FILES["alexnet-owt-7be5be79.pth"] is W.LPIPS_ALEXNET
    assert W.LPIPS_ALEXNET.sha256_prefix == "7be5be79" and W.FID_INCEPTION.sha256_prefix == "6726825d"
    hint = W.LPIPS_ALEXNET.fix_hint()
    assert str(W.LPIPS_ALEXNET.path) in hint and W.LPIPS_ALEXNET.url in hint and "\n" not in hint
    assert issubclass(W.WeightsMissing, RuntimeError)


def test_fake_alexnet_with_wrong_hash_is_reported_by_check(tmp_path):
    fake = tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the real alexnet")
    assert W.LPIPS_ALEXNET.path == fake
    assert _status(W.list_weights(), fake.name).state == "present"  # listing does not hash
    status = _status(W.check_weights(verify_hash=True), fake.name)
    assert status.state == "hash-mismatch" and status.verified
    assert status.sha256 == hashlib.sha256(b"not the real alexnet").hexdigest()
    table = W.format_weights_table(W.check_weights())
    assert "hash-mismatch" in table and f"HASH-MISMATCH: {fake}" in table


def test_missing_file_gives_one_clear_line_with_path_and_url(tmp_path):
    statuses = W.list_weights()
    status = _status(statuses, W.INCEPTION_FILE_NAME)
    expected = tmp_path / "gac" / "weights" / W.INCEPTION_FILE_NAME
    assert status.state == "missing" and status.path == expected
    lines = [line for line in W.format_weights_table(statuses).splitlines() if line.startswith("MISSING")]
    inception_line = next(line for line in lines if W.INCEPTION_FILE_NAME in line)
    assert str(expected) in inception_line and W.FID_INCEPTION.url in inception_line
    with pytest.raises(W.WeightsMissing, match="GAC_BENCH_INCEPTION"):
        W.require(W.FID_INCEPTION)


def test_env_var_overrides_location(tmp_path, monkeypatch):
    custom = tmp_path / "inception.pth"
    custom.write_bytes(b"x")
    monkeypatch.setenv("GAC_BENCH_INCEPTION", str(custom))
    assert W.FID_INCEPTION.path == custom and W.require(W.FID_INCEPTION) == custom


def test_known_full_digest_and_prefix_are_verified(tmp_path):
    content = b"some weights"
    digest = hashlib.sha256(content).hexdigest()
    path = tmp_path / "w.bin"
    path.write_bytes(content)
    full = W.WeightFile("test-full", "tests", lambda: path, "https://example.invalid/w", len(content), sha256=digest)
    prefix = W.WeightFile("test-prefix", "tests", lambda: path, "https://example.invalid/w", sha256_prefix=digest[:8])
    wrong_size = W.WeightFile("test-size", "tests", lambda: path, "https://example.invalid/w", size_bytes=1)
    assert W.weight_status(full, verify_hash=True).state == "present"
    assert W.weight_status(full, verify_hash=True).verified
    assert W.weight_status(prefix, verify_hash=True).state == "present"
    assert W.weight_status(wrong_size).state == "size-mismatch"


def test_sha256_is_read_in_chunks(tmp_path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert W.file_sha256(path, chunk_bytes=1000) == hashlib.sha256(data).hexdigest()


def test_register_weight_file_hook():
    entry = W.WeightFile("test-method.ckpt", "a test method", lambda: Path("/nonexistent/x.ckpt"), "https://e.invalid")
    try:
        assert W.register_weight_file(entry) is entry
        W.register_weight_file(entry)  # same entry again: fine
        assert _status(W.list_weights(), "test-method.ckpt").state == "missing"
        clash = W.WeightFile("test-method.ckpt", "another", lambda: Path("/y"), "https://e.invalid")
        with pytest.raises(ValueError, match="already registered"):
            W.register_weight_file(clash)
    finally:
        W.WEIGHT_FILES.pop("test-method.ckpt", None)


def test_flux_vae_folder_needs_both_files(tmp_path):
    folder = tmp_path / "gac" / "weights" / "flux-vae"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    status = W.weight_status(W.FLUX_VAE)
    assert status.state == "missing" and "diffusion_pytorch_model.safetensors" in status.detail
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"0")
    assert W.weight_status(W.FLUX_VAE, verify_hash=True).state == "present"


def test_vggt_resolves_from_the_hf_cache_and_env(tmp_path, monkeypatch):
    assert "models--facebook--VGGT-1B" in str(W.VGGT_1B.path) and not W.VGGT_1B.present()
    repo = tmp_path / "hf" / "hub" / "models--facebook--VGGT-1B"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snap / "model.pt").write_bytes(b"0")
    assert W.VGGT_1B.path == snap / "model.pt" and W.VGGT_1B.present()
    (snap / "model.safetensors").write_bytes(b"0")
    assert W.VGGT_1B.path == snap / "model.safetensors"
    own = tmp_path / "vggt.pt"
    monkeypatch.setenv("GAC_BENCH_VGGT", str(own))
    assert W.VGGT_1B.path == own and not W.VGGT_1B.present()


def test_bagel_prefers_gac_home_then_hf_cache(tmp_path):
    snap = tmp_path / "hf" / "hub" / "models--ByteDance-Seed--BAGEL-7B-MoT" / "snapshots" / "r1"
    snap.mkdir(parents=True)
    assert W.BAGEL_7B_MOT.path == snap
    home = tmp_path / "gac" / "weights" / "BAGEL-7B-MoT"
    home.mkdir(parents=True)
    assert W.BAGEL_7B_MOT.path == home
    assert "ema.safetensors" in W.weight_status(W.BAGEL_7B_MOT).detail
