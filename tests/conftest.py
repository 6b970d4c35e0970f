import socket

import pytest


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: any attempt to open a connection beyond this machine fails loudly (servers a test
    starts on 127.0.0.1 are reachable)."""
    real_connect, real_create = socket.socket.connect, socket.create_connection

    def connect(self, address, *args, **kwargs):
        if isinstance(address, tuple) and address[0] in LOOPBACK:
            return real_connect(self, address, *args, **kwargs)
        raise RuntimeError("network access attempted during a test")

    def create_connection(address, *args, **kwargs):
        if address[0] in LOOPBACK:
            return real_create(address, *args, **kwargs)
        raise RuntimeError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)


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
