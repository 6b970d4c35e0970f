import socket

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: any attempt to open a connection fails loudly."""

    def guard(*args, **kwargs):
        raise RuntimeError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Caches go to a per-session temporary home, and torch hub points at an empty folder (no LPIPS weights)."""
    home = tmp_path_factory.getbasetemp() / "gac_home"
    monkeypatch.setenv("GAC_BENCH_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))


@pytest.fixture(scope="session")
def plane_root(tmp_path_factory):
    return tmp_path_factory.mktemp("plane")


@pytest.fixture
def plane_split(plane_root):
    from tests.fixtures import register_plane_split

    name = register_plane_split(plane_root)
    yield name
