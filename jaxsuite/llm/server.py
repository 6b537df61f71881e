"""``jaxsuite serve-llm``: an OpenAI-compatible chat-completion server for the JAX Llama (stdlib HTTP server).

Endpoints: ``POST /v1/chat/completions`` (messages with string or list-of-text-parts content, max_tokens or
max_completion_tokens, temperature, top_p, seed, stream, stream_options.include_usage), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /health`` (never needs the key).

- Each request is parsed, tokenised and checked on its own (context length, parameter types and ranges, finite
  numbers) before it joins a batch: a bad request gets its own 4xx and never reaches the model. Should a batch
  fail anyway, its requests are rerun one by one, so that only the failing one gets the 500.
- Concurrent requests are gathered for up to ``batch_window`` seconds into one batched generation of up to the
  engine's ``batch_size`` rows, whatever their settings: temperature, top_p, seed and max_tokens are per-row arrays
  of one compiled program, and prompt and generation lengths are bucketed to powers of two, so that the number of
  compiled programs is bounded (:mod:`jaxsuite.llm.decode`: at most ``2 * n * n``, n = log2(context / 16) + 1).
- Resources: bodies over ``max_body_bytes`` get 413 unread; a body (or the next request on a kept-alive
  connection) must arrive within ``read_timeout`` seconds (else 408 and the connection closes); no Content-Length:
  411; at most ``max_queue`` requests wait for the model, more get 429 with ``Retry-After``. A request whose client
  disconnects is dropped if it waits, and its row ends at the next decode segment (16 tokens) if it runs.
- Replies carry ``usage`` and ``finish_reason`` ("length" when cut by max_tokens, else "stop"); generation stops on
  every end-of-sequence id of the model (:func:`jaxsuite.llm.decode.eos_ids`). ``stream: true`` answers in
  server-sent events as OpenAI does (a role chunk, content deltas, a chunk with finish_reason, an optional usage
  chunk, ``data: [DONE]``), content sent as each decode segment (16 tokens) ends.
- Errors are OpenAI error objects ``{"error": {"message", "type", "param", "code"}}``; internal exceptions are
  logged here and answered with a generic message. ``api_key``: requests need ``Authorization: Bearer <key>``
  (401 otherwise).
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import queue
import select
import socket
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jaxsuite.llm.decode import BucketedDecoder, Row, eos_ids
from jaxsuite.llm.engine import ChatEngine

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP error answered as OpenAI's error object."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None, close: bool = False):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers, self.close = headers or {}, close

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class Pending:
    """A validated request waiting for (or in) a batch: its row, its result, the tokens streamed so far
    (``progress``: lists of new ids, when streaming) and whether its client has gone."""

    def __init__(self, row: Row, stream: bool):
        self.row, self.future = row, Future()
        self.progress: queue.Queue | None = queue.Queue() if stream else None
        self.gone = threading.Event()
        self.streamed = False


class BatchingWorker(threading.Thread):
    """Runs validated :class:`Row` s through the decoder, up to ``batch_size`` per call; at most ``max_queue``
    wait (``submit`` raises ``queue.Full`` beyond)."""

    def __init__(self, decoder: BucketedDecoder, batch_window: float = 0.02, max_queue: int = 256):
        super().__init__(daemon=True)
        self.decoder, self.batch_window = decoder, batch_window
        self.requests: queue.Queue = queue.Queue(maxsize=max_queue)

    def submit(self, row: Row, stream: bool = False) -> Pending:
        item = Pending(row, stream)
        self.requests.put_nowait(item)
        return item

    def run(self):
        while True:
            batch = [self.requests.get()]
            deadline = time.monotonic() + self.batch_window
            while len(batch) < self.decoder.batch_size:
                try:
                    batch.append(self.requests.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            batch = [p for p in batch if p.future.set_running_or_notify_cancel()]  # drop those cancelled
            if batch:
                self._run(batch)

    def _run(self, batch: list[Pending]):
        def on_tokens(i, ids):
            if batch[i].progress is not None:
                batch[i].streamed = True
                batch[i].progress.put(ids.tolist())

        try:
            outs = self.decoder.generate([p.row for p in batch], on_tokens, lambda i: batch[i].gone.is_set())
        except Exception as err:  # noqa: BLE001 -- isolate: rerun one by one, only the failing request fails
            if len(batch) > 1:
                for p in batch:
                    if p.streamed:  # part of its reply is out: it cannot start again
                        p.future.set_exception(err)
                    else:
                        self._run([p])
                return
            log.exception("generation failed")
            batch[0].future.set_exception(err)
            return
        for p, ids in zip(batch, outs):
            p.future.set_result(ids)


def _number(body: dict, key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ApiError(400, f"'{key}' must be a finite number", param=key, code="invalid_value")
    if v > hi or v < lo or (lo_open and v == lo):
        raise ApiError(400, f"'{key}' must be in {'(' if lo_open else '['}{lo}, {hi}], got {v}", param=key,
                       code="invalid_value")
    return float(v)


def _integer(body: dict, key: str) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiError(400, f"'{key}' must be an integer", param=key, code="invalid_value")
    return v


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    bad = ApiError(400, "'messages' must be a non-empty list of {role: str, content: str or a list of "
                        "{type: 'text', text: str}}", param="messages", code="invalid_value")
    if not isinstance(messages, list) or not messages:
        raise bad
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad
        content = m.get("content")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise ApiError(400, "only text content parts ({type: 'text', text: str}) are supported",
                               param="messages", code="invalid_value")
            content = "\n".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise bad
        out.append({"role": m["role"], "content": content})
    return out


def parse_request(body, engine: ChatEngine, default_max_tokens: int = 256,
                  context: int | None = None) -> tuple[Row, bool, bool]:
    """``(row, stream, include_usage)`` of one chat-completion body, or :class:`ApiError` (400) naming the
    parameter. The prompt is tokenised here: prompt + max_tokens must fit the model's ``context`` (default: its
    config's; handler threads pass the value read once at start, since the decode thread's ``nnx.jit`` updates
    the model object while it runs and other threads must not read its attributes then)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    messages = _messages(body)
    if body.get("model") is not None and not isinstance(body["model"], str):
        raise ApiError(400, "'model' must be a string", param="model", code="invalid_value")
    for key, ok in (("n", lambda v: v == 1), ("stop", lambda v: v in ([], "")),
                    ("logprobs", lambda v: v is False), ("tools", lambda v: v == [])):
        if body.get(key) is not None and not ok(body[key]):
            raise ApiError(400, f"'{key}' is not supported by this server", param=key, code="unsupported_parameter")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", param="stream", code="invalid_value")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", param="stream_options", code="invalid_value")
    include_usage = bool((options or {}).get("include_usage"))
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True)
    seed = _integer(body, "seed") or 0
    max_tokens = _integer(body, "max_completion_tokens")
    max_tokens = _integer(body, "max_tokens") if max_tokens is None else max_tokens
    if max_tokens is not None and max_tokens < 1:
        raise ApiError(400, f"'max_tokens' must be at least 1, got {max_tokens}", param="max_tokens",
                       code="invalid_value")
    try:
        prompt = engine.render(messages)
    except Exception:  # noqa: BLE001 -- a template error (e.g. an unknown role): the client's, but no internals
        log.warning("the chat template rejected a request", exc_info=True)
        raise ApiError(400, "the model's chat template rejected these messages", param="messages",
                       code="invalid_value") from None
    context = engine.model.config.max_seq_len if context is None else context
    room = context - len(prompt)
    if max_tokens is None:
        max_tokens = min(default_max_tokens, room)
    if len(prompt) + max(max_tokens, 1) > context:
        raise ApiError(400, f"this model's context is {context} tokens; the messages take {len(prompt)} tokens "
                            f"and max_tokens asks for {max_tokens} more", param="messages",
                       code="context_length_exceeded")
    return Row(prompt, max_tokens, temperature, top_p, seed), bool(stream), include_usage


def make_server(engine: ChatEngine, host: str = "127.0.0.1", port: int = 8000, batch_window: float = 0.02,
                model_name: str | None = None, *, api_key: str | None = None, max_body_bytes: int = 1 << 20,
                read_timeout: float = 30.0, max_queue: int = 256, default_max_tokens: int = 256,
                retry_after: int = 1, min_bucket: int = 16) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port; read ``server.server_address``); call
    ``serve_forever()`` (e.g. in a thread) and ``shutdown()``. ``server.decoder.compiles`` counts compiled
    programs; ``min_bucket``: the smallest length bucket (:mod:`jaxsuite.llm.decode`)."""
    decoder = BucketedDecoder(engine.model, eos_ids(engine.tokenizer), engine.tokenizer.eos_id, engine.batch_size,
                              min_bucket)
    worker = BatchingWorker(decoder, batch_window, max_queue)
    worker.start()
    name = model_name or engine.name
    tokenizer = engine.tokenizer
    model_card = {"id": name, "object": "model", "created": int(time.time()), "owned_by": "jaxsuite"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = read_timeout  # socket timeout: a body or a next request must come within it

        def log_message(self, fmt, *args):  # requests carry user prompts: do not echo them to stderr
            pass

        def _send(self, code: int, payload: dict, headers: dict | None = None, close: bool = False):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def _fail(self, err: ApiError):
            self._send(err.status, err.body(), err.headers, err.close)

        def _check_key(self):
            if api_key is None:
                return
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                raise ApiError(401, "missing or incorrect API key (Authorization: Bearer <key>)",
                               code="invalid_api_key")

        def _route(self) -> str:
            return self.path.split("?", 1)[0].rstrip("/")

        def do_GET(self):  # noqa: N802
            path = self._route()
            try:
                if path == "/health":
                    self._send(200, {"status": "ok"})
                    return
                self._check_key()
                if path in ("/v1/models", "/models"):
                    self._send(200, {"object": "list", "data": [model_card]})
                elif path in (f"/v1/models/{name}", f"/models/{name}"):
                    self._send(200, model_card)
                elif path.startswith(("/v1/models/", "/models/")):
                    raise ApiError(404, f"no model {path.rsplit('/', 1)[1]!r}; this server has {name!r}",
                                   param="model", code="model_not_found")
                else:
                    raise ApiError(404, f"no route GET {path}", code="not_found")
            except ApiError as err:
                self._fail(err)

        def _read_json(self):
            if self.headers.get("Transfer-Encoding"):
                raise ApiError(411, "send the body with a Content-Length, not Transfer-Encoding", close=True)
            length = self.headers.get("Content-Length")
            if length is None:
                raise ApiError(411, "a Content-Length header is required", close=True)
            if not length.strip().isdigit():
                raise ApiError(400, "invalid Content-Length header", close=True)
            n = int(length)
            if n > max_body_bytes:
                raise ApiError(413, f"the body of {n} bytes exceeds the limit of {max_body_bytes} bytes",
                               code="request_too_large", close=True)
            try:
                data = self.rfile.read(n)
            except (TimeoutError, socket.timeout):
                raise ApiError(408, f"the body did not arrive within {read_timeout} s", close=True) from None
            if len(data) < n:
                raise ConnectionAbortedError("the client closed before sending its body")
            self.body_read = True
            try:
                return json.loads(data or b"null")
            except ValueError:
                raise ApiError(400, "the body is not valid JSON") from None

        def _client_gone(self) -> bool:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):
                return True

        def do_POST(self):  # noqa: N802
            self.body_read = False
            try:
                self._check_key()
                if self._route() not in ("/v1/chat/completions", "/chat/completions"):
                    raise ApiError(404, f"no route POST {self._route()}", code="not_found")
                row, stream, include_usage = parse_request(self._read_json(), engine, default_max_tokens,
                                                           context=decoder.context)
                try:
                    pending = worker.submit(row, stream)
                except queue.Full:
                    raise ApiError(429, "the server is busy: too many requests waiting; retry later",
                                   type_="server_overloaded", code="queue_full",
                                   headers={"Retry-After": str(retry_after)}) from None
                if stream:
                    self._stream(pending, include_usage)
                    return
                while True:
                    try:
                        ids = pending.future.result(timeout=0.2)
                        break
                    except TimeoutError:
                        if self._client_gone():
                            self._abandon(pending)
                            return
            except ApiError as err:
                err.close = err.close or not self.body_read  # an unread body would be taken for the next request
                self._fail(err)
                return
            except (ConnectionError, CancelledError):
                self.close_connection = True
                return
            except Exception:  # noqa: BLE001 -- logged here; the client gets no internals
                log.exception("chat completion failed")
                self._fail(ApiError(500, "internal server error", type_="server_error"))
                return
            finish = "length" if len(ids) >= row.max_tokens else "stop"
            self._send(200, {**_reply_head(name), "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": tokenizer.decode(ids)},
                "logprobs": None, "finish_reason": finish}], "usage": _usage(row, ids)})

        def _abandon(self, pending: Pending):
            """The client has gone: drop its request if it waits, end its row at the next segment if it runs."""
            pending.gone.set()
            pending.future.cancel()
            self.close_connection = True

        def _stream(self, pending: Pending, include_usage: bool):
            """Server-sent events as OpenAI's: a role chunk, content deltas as segments are decoded, a chunk with
            finish_reason, a usage chunk (``include_usage``), ``data: [DONE]``."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # the stream ends with the connection (no chunked encoding)
            self.close_connection = True
            self.end_headers()
            base = {**_reply_head(name), "object": "chat.completion.chunk"}

            def event(payload):
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def delta(d, finish_reason=None):
                return {**base, "choices": [{"index": 0, "delta": d, "logprobs": None,
                                             "finish_reason": finish_reason}]}

            ids: list[int] = []
            sent = ""
            try:
                event(delta({"role": "assistant", "content": ""}))
                while True:
                    try:
                        ids += pending.progress.get(timeout=0.05)
                    except queue.Empty:
                        if pending.future.done() and pending.progress.empty():
                            break
                        if self._client_gone():
                            self._abandon(pending)
                            return
                        continue
                    text = tokenizer.decode(ids)
                    if text.startswith(sent) and not text.endswith("\ufffd") and len(text) > len(sent):
                        event(delta({"content": text[len(sent):]}))
                        sent = text
                try:
                    final = pending.future.result()
                except Exception:  # noqa: BLE001 -- logged by the worker; the client gets no internals
                    event({"error": ApiError(500, "internal server error", type_="server_error").body()["error"]})
                    return
                text = tokenizer.decode(final)
                if text.startswith(sent) and len(text) > len(sent):
                    event(delta({"content": text[len(sent):]}))
                event(delta({}, "length" if len(final) >= pending.row.max_tokens else "stop"))
                if include_usage:
                    event({**base, "choices": [], "usage": _usage(pending.row, final)})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (ConnectionError, TimeoutError):
                self._abandon(pending)

    server = _Server((host, port), Handler)
    server.decoder, server.worker = decoder, worker
    return server


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the listen backlog (5 by default: bursts of clients would be refused)


def _reply_head(name: str) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": name}


def _usage(row: Row, ids) -> dict:
    return {"prompt_tokens": len(row.prompt), "completion_tokens": len(ids), "total_tokens": len(row.prompt) + len(ids)}
