"""`jaxsuite serve-llm`'s server and the OpenAI-compatible client over 127.0.0.1: the same replies as the engine,
concurrency, retries with backoff on 5xx/429, clear errors on 4xx and malformed replies, API keys from the
environment only and never in messages."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jaxsuite.core.errors import UserError
from jaxsuite.llm.engine import ChatEngine, GenerationSettings
from jaxsuite.llm.openai_client import ChatClientError, OpenAIChatClient
from jaxsuite.llm.server import make_server
from jaxsuite.nn import llama_checkpoint
from tests import llama_fixtures as lf


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/v1"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    loaded = llama_checkpoint.load(lf.write_gguf(tmp_path_factory.mktemp("m") / "tiny.gguf"))
    return ChatEngine(loaded, batch_size=4, pad_to=16)


@pytest.fixture(scope="module")
def served(engine):
    server = make_server(engine, port=0, batch_window=0.05)
    yield _serve(server)
    server.shutdown()


CONVS = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]


def test_server_replies_equal_the_engine_and_batch_concurrent_requests(engine, served):
    client = OpenAIChatClient(served, "tiny", concurrency=6)
    via_http = client.chat(CONVS, max_tokens=5)
    direct = engine.chat(CONVS, GenerationSettings(max_new_tokens=5))
    assert via_http == direct
    assert client._client.get(served + "/models").json()["data"][0]["id"] == "tiny-llama"


def test_server_rejects_bad_requests(served):
    client = OpenAIChatClient(served, "tiny", max_retries=0)
    r = client._client.post(served + "/chat/completions", json={"messages": "hi"})
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = client._client.post(served + "/chat/completions", json={"messages": CONVS[0], "max_tokens": -1})
    assert r.status_code == 400
    with pytest.raises(ChatClientError, match="HTTP 400"):
        client.complete(CONVS[0], max_tokens=0)


class _Flaky(BaseHTTPRequestHandler):
    """Fails ``fail`` times with ``status`` then answers; records the Authorization headers it saw."""
    fail, status, seen, auth = 2, 503, [0], []

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).auth.append(self.headers.get("Authorization"))
        type(self).seen[0] += 1
        if type(self).seen[0] <= type(self).fail:
            body, code = b'{"error": "busy"}', type(self).status
        else:
            body, code = json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode(), 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def flaky():
    _Flaky.seen, _Flaky.auth = [0], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    yield _serve(server)
    server.shutdown()


def test_client_retries_transient_errors_with_backoff(flaky, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret-123")
    client = OpenAIChatClient(flaky, "m", api_key_env="TEST_LLM_KEY", backoff=0.01)
    assert client.complete(CONVS[0], max_tokens=3) == "ok"
    assert _Flaky.seen[0] == 3 and _Flaky.auth == ["Bearer sk-secret-123"] * 3


def test_client_gives_up_without_leaking_the_key(flaky, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret-123")
    _Flaky.fail = 10
    try:
        client = OpenAIChatClient(flaky, "m", api_key_env="TEST_LLM_KEY", max_retries=2, backoff=0.01)
        with pytest.raises(ChatClientError, match="gave up after 3 attempts") as err:
            client.complete(CONVS[0], max_tokens=3)
        assert "sk-secret" not in str(err.value)
    finally:
        _Flaky.fail = 2


def test_client_needs_its_key_variable_and_a_reachable_server(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(UserError, match="NO_SUCH_KEY_VAR"):
        OpenAIChatClient("http://127.0.0.1:9/v1", "m", api_key_env="NO_SUCH_KEY_VAR")
    client = OpenAIChatClient("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01, timeout=1.0)
    with pytest.raises(ChatClientError, match="ConnectError"):
        client.complete(CONVS[0], max_tokens=3)


def test_serve_llm_command_end_to_end(engine, tmp_path, monkeypatch):
    """`jaxsuite serve-llm --model tiny.gguf --api-key-env VAR` in its own process, asked through the client (with
    the key; 401 without it), then stopped."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = lf.write_gguf(tmp_path / "tiny.gguf")
    monkeypatch.setenv("TEST_SERVE_KEY", "sk-serve-41")
    proc = subprocess.Popen([sys.executable, "-m", "jaxsuite", "serve-llm", "--model", str(model), "--port", str(port),
                             "--batch-size", "4", "--api-key-env", "TEST_SERVE_KEY"], stderr=subprocess.PIPE,
                            text=True, env={**os.environ})
    try:
        client = OpenAIChatClient(f"http://127.0.0.1:{port}/v1", "tiny", max_retries=0, timeout=60,
                                  api_key_env="TEST_SERVE_KEY")
        for _ in range(120):  # the server is up once /health answers
            try:
                if client._client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except Exception:  # noqa: BLE001
                time.sleep(0.25)
        reply = client.complete(CONVS[0], max_tokens=5)
        keyless = OpenAIChatClient(f"http://127.0.0.1:{port}/v1", "tiny", max_retries=0, timeout=60)
        with pytest.raises(ChatClientError, match="HTTP 401"):
            keyless.complete(CONVS[0], max_tokens=5)
        engine_reply = ChatEngine(engine.loaded, batch_size=4, pad_to=16).chat([CONVS[0]],
                                                                                GenerationSettings(max_new_tokens=5))
        assert reply == engine_reply[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "serving tiny-llama at http://127.0.0.1" in proc.stderr.read()
