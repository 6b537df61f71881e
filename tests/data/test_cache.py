"""Downloads through a real HTTP server on 127.0.0.1: success, wrong checksum, truncated transfer."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import cache
from jaxsuite.data.cache import RemoteFile, Source

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/file.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_succeeds_and_verifies(server, tmp_path):
    dest = cache.download(f"{server}/file.bin", tmp_path / "file.bin", SHA)
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["file.bin"]


def test_wrong_checksum_is_rejected_and_leaves_no_file(server, tmp_path):
    with pytest.raises(UserError, match="sha256"):
        cache.download(f"{server}/file.bin", tmp_path / "file.bin", "0" * 64)
    assert _leftovers(tmp_path) == []


def test_truncated_transfer_leaves_no_file(server, tmp_path):
    with pytest.raises(UserError):
        cache.download(f"{server}/truncated.bin", tmp_path / "file.bin", SHA, timeout=10)
    assert _leftovers(tmp_path) == []


def test_fetch_falls_back_to_mirror_and_check_reports(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    source = Source("demo", "test source", (RemoteFile("file.bin", SHA, (f"{server}/gone.bin", f"{server}/file.bin")),))
    assert source.status() == "missing"
    with pytest.raises(DataMissingError, match="jaxsuite data fetch demo"):
        source.path("file.bin")
    [path] = cache.fetch(source)
    assert path == tmp_path / "demo" / "file.bin" and source.status() == "present"
    assert cache.check(source) == {"file.bin": "ok"}
    path.write_bytes(b"corrupt")
    assert cache.check(source) == {"file.bin": "bad sha256"}
    cache.fetch(source)  # a corrupt file is downloaded again
    assert path.read_bytes() == PAYLOAD


def test_fetch_reports_every_failed_mirror(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSUITE_DATA", str(tmp_path))
    source = Source("demo", "", (RemoteFile("x.bin", SHA, (f"{server}/a.bin", f"{server}/b.bin")),))
    with pytest.raises(UserError, match="a.bin.*b.bin"):
        cache.fetch(source)
    assert _leftovers(tmp_path / "demo") == []
