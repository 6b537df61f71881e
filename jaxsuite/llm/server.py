"""``jaxsuite serve-llm``: an OpenAI-compatible chat-completion server for the JAX Llama (stdlib HTTP server).

Endpoints: ``POST /v1/chat/completions`` (messages, max_tokens, temperature, top_p, seed; no streaming),
``GET /v1/models``, ``GET /health``. Concurrent requests with the same settings are gathered for up to
``batch_window`` seconds into one batched generation (one engine call at a time: a single accelerator).
"""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jaxsuite.llm.engine import ChatEngine, GenerationSettings


class BatchingWorker(threading.Thread):
    def __init__(self, engine: ChatEngine, batch_window: float = 0.02):
        super().__init__(daemon=True)
        self.engine, self.batch_window = engine, batch_window
        self.requests: queue.Queue = queue.Queue()

    def submit(self, messages, settings: GenerationSettings) -> Future:
        fut: Future = Future()
        self.requests.put((messages, settings, fut))
        return fut

    def run(self):
        while True:
            first = self.requests.get()
            batch, later = [first], []
            deadline = time.monotonic() + self.batch_window
            while len(batch) < self.engine.batch_size:
                try:
                    item = self.requests.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (batch if item[1] == first[1] else later).append(item)
            for item in later:
                self.requests.put(item)
            try:
                replies = self.engine.chat([m for m, _, _ in batch], first[1])
            except Exception as err:  # noqa: BLE001 -- reported to each waiting request
                for _, _, fut in batch:
                    fut.set_exception(err)
                continue
            for (_, _, fut), text in zip(batch, replies):
                fut.set_result(text)


def _validate(body) -> tuple[list[dict], GenerationSettings]:
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise ValueError("'messages' must be a non-empty list of {role: str, content: str}")
    if body.get("stream"):
        raise ValueError("streaming is not supported")
    try:
        get = lambda k, default: default if body.get(k) is None else body[k]  # noqa: E731 -- JSON null = unset
        settings = GenerationSettings(max_new_tokens=int(get("max_tokens", 256)),
                                      temperature=float(get("temperature", 1.0)), top_p=float(get("top_p", 1.0)),
                                      seed=int(get("seed", 0)))
    except (TypeError, ValueError):
        raise ValueError("max_tokens, seed must be integers and temperature, top_p numbers") from None
    if settings.max_new_tokens <= 0 or settings.temperature < 0 or not 0 < settings.top_p <= 1:
        raise ValueError("need max_tokens > 0, temperature >= 0, 0 < top_p <= 1")
    return [{"role": m["role"], "content": m["content"]} for m in messages], settings


def make_server(engine: ChatEngine, host: str = "127.0.0.1", port: int = 8000, batch_window: float = 0.02,
                model_name: str | None = None) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port; read ``server.server_address``); call
    ``serve_forever()`` (e.g. in a thread) and ``shutdown()``."""
    worker = BatchingWorker(engine, batch_window)
    worker.start()
    name = model_name or engine.name

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # requests carry user prompts: do not echo them to stderr
            pass

        def _send(self, code: int, payload: dict):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "jaxsuite"}]})
            elif self.path.rstrip("/") == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):  # noqa: N802
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                messages, settings = _validate(json.loads(self.rfile.read(length) or b"null"))
            except (ValueError, json.JSONDecodeError) as err:
                self._send(400, {"error": {"message": str(err), "type": "invalid_request_error"}})
                return
            try:
                text = worker.submit(messages, settings).result()
            except Exception as err:  # noqa: BLE001
                self._send(400 if isinstance(err, ValueError) else 500,
                           {"error": {"message": str(err), "type": type(err).__name__}})
                return
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion", "created": int(time.time()),
                "model": name, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                            "finish_reason": "stop"}]})

    return ThreadingHTTPServer((host, port), Handler)
