"""`gac-bench weights --download` against a local HTTP server on 127.0.0.1: good file, hash mismatch, server error,
resume of a partial file; a partial or wrong file never lands under the final name."""

from __future__ import annotations

import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gac_bench.download import DownloadError, download
from gac_bench.weights import WeightFile

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files from a folder with HTTP range requests; /error answers 500."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path == "/error":
            self.send_error(500, "simulated failure")
            return
        data = (self.server.root / self.path.lstrip("/")).read_bytes()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "good.pth").write_bytes(PAYLOAD)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    httpd.root = root
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _weight(tmp_path, url, sha=None, prefix=None):
    dest = tmp_path / "install" / "w.pth"
    return WeightFile(name="w.pth", used_by="test", path_fn=lambda: dest, url=url, sha256=sha, sha256_prefix=prefix)


def test_a_good_file_is_verified_and_installed(server, tmp_path):
    w = _weight(tmp_path, f"{server}/good.pth", sha=hashlib.sha256(PAYLOAD).hexdigest())
    assert download(w, progress=False).read_bytes() == PAYLOAD
    assert not (w.path.parent / "w.pth.part").exists()


def test_a_hash_mismatch_installs_nothing(server, tmp_path):
    w = _weight(tmp_path, f"{server}/good.pth", prefix="00000000")
    with pytest.raises(DownloadError, match="does not match the expected 00000000; it was deleted, not installed"):
        download(w, progress=False)
    assert not w.path.exists() and not (w.path.parent / "w.pth.part").exists()


def test_a_server_error_says_so_and_installs_nothing(server, tmp_path):
    w = _weight(tmp_path, f"{server}/error")
    with pytest.raises(DownloadError, match="answered HTTP 500; nothing installed"):
        download(w, progress=False)
    assert not w.path.exists()


def test_a_partial_download_resumes_where_it_stopped(server, tmp_path):
    w = _weight(tmp_path, f"{server}/good.pth", prefix=hashlib.sha256(PAYLOAD).hexdigest()[:8])
    w.path.parent.mkdir(parents=True)
    (w.path.parent / "w.pth.part").write_bytes(PAYLOAD[:300_000])
    assert download(w, progress=False).read_bytes() == PAYLOAD


def test_cli_download_of_a_folder_entry_names_the_command(tmp_path):
    from click.testing import CliRunner

    from gac_bench.cli import main

    res = CliRunner().invoke(main, ["weights", "--download", "BAGEL-7B-MoT"])
    assert res.exit_code == 1 and "hf download ByteDance-Seed/BAGEL-7B-MoT" in res.output
    res = CliRunner().invoke(main, ["weights", "--download", "nope"])
    assert res.exit_code == 2 and "unknown weight file" in res.output
