"""`jaxsuite serve-llm`'s server asked by the official `openai` client on 127.0.0.1 (issue 41): usage and
finish_reason, list-form content, streaming, /v1/models, every end-of-sequence id, each error path mapped to the
client's exception type in OpenAI's error object, per-request validation that never touches the other requests of
a batch, body limits, a bounded queue (429), disconnected clients dropped, and a bounded number of compiled
programs whatever temperatures and max_tokens the clients send."""
from __future__ import annotations

import json
import math
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from jaxsuite.llm.decode import bucket, eos_ids
from jaxsuite.llm.engine import ChatEngine, GenerationSettings
from jaxsuite.llm.server import make_server
from jaxsuite.nn import llama_checkpoint
from tests import llama_fixtures as lf

openai = pytest.importorskip("openai")

MSG = [{"role": "user", "content": "question 1"}]


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return host, port


def _client(host_port, **kw):
    host, port = host_port
    return openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key=kw.pop("api_key", "unused"),
                         max_retries=kw.pop("max_retries", 0), timeout=kw.pop("timeout", 60), **kw)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    loaded = llama_checkpoint.load(lf.write_gguf(tmp_path_factory.mktemp("m") / "tiny.gguf"))
    return ChatEngine(loaded, batch_size=4, pad_to=16)


@pytest.fixture(scope="module")
def server(engine):
    srv = make_server(engine, port=0, batch_window=0.05, min_bucket=64)  # few programs to compile in the tests
    _serve(srv)
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def client(server):
    return _client(server.server_address[:2])


def _stub_server(engine, generate, **kw):
    """A server whose decoder is replaced by ``generate(rows)`` (no model run, no compile)."""
    srv = make_server(engine, port=0, batch_window=0.02, **kw)
    srv.decoder.generate = generate
    _serve(srv)
    return srv


def test_reply_usage_finish_reason_and_list_content(engine, client):
    r = client.chat.completions.create(model="tiny-llama", messages=MSG, max_tokens=5, temperature=0)
    expected = engine.chat([MSG], GenerationSettings(max_new_tokens=5))[0]
    assert r.choices[0].message.content == expected and r.choices[0].message.role == "assistant"
    n_prompt = len(engine.render(MSG))
    assert r.choices[0].finish_reason == "length"  # the tiny random model does not stop within 5 tokens
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (n_prompt, 5, n_prompt + 5)
    listed = [{"role": "user", "content": [{"type": "text", "text": "question 1"}]}]
    r2 = client.chat.completions.create(model="tiny-llama", messages=listed, max_tokens=5, temperature=0)
    assert r2.choices[0].message.content == expected


def test_stops_on_every_eos_id_with_finish_reason_stop(engine, server, client):
    # the tiny GGUF is laid out as SmolLM2's: eos = <|im_end|> (2), and <|endoftext|> (0) ends a reply too
    assert eos_ids(engine.tokenizer) == (0, 2) and server.decoder.stop_ids == (0, 2)
    full = server.decoder.generate([_row(engine, MSG, 8)])[0].tolist()
    k = [i for i, tok in enumerate(full) if tok not in full[:i]][-1]  # the last token that is new at its place
    old = server.decoder.stop_ids
    server.decoder.stop_ids = (*old, full[k])  # as if full[k] were one more end-of-sequence id
    try:
        r = client.chat.completions.create(model="tiny-llama", messages=MSG, max_tokens=8, temperature=0)
    finally:
        server.decoder.stop_ids = old
    assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == k
    assert r.choices[0].message.content == engine.tokenizer.decode(full[:k])


def _row(engine, messages, max_tokens, **kw):
    from jaxsuite.llm.decode import Row
    return Row(engine.render(messages), max_tokens, **kw)


def test_streaming_as_the_client_parses_it(client):
    plain = client.chat.completions.create(model="tiny-llama", messages=MSG, max_tokens=6, temperature=0)
    chunks = list(client.chat.completions.create(model="tiny-llama", messages=MSG, max_tokens=6, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert chunks[-1].usage.completion_tokens == 6 and not chunks[-1].choices
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_models_endpoint(client):
    assert [m.id for m in client.models.list()] == ["tiny-llama"]
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


BAD = [({"temperature": math.nan}, "temperature"), ({"temperature": math.inf}, "temperature"),
       ({"temperature": -0.5}, "temperature"), ({"temperature": 2.5}, "temperature"),
       ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"), ({"top_p": math.nan}, "top_p"),
       ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": -3}, "max_tokens"), ({"max_tokens": 2.5}, "max_tokens"),
       ({"max_tokens": 5000}, "messages"), ({"n": 2}, "n"), ({"seed": "x"}, "seed"),
       ({"messages": []}, "messages"), ({"messages": [{"role": "user"}]}, "messages"),
       ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages"),
       ({"messages": [{"role": "user", "content": "x" * 5000}]}, "messages")]


@pytest.mark.parametrize("bad,param", BAD, ids=[f"{k}={str(v)[:12]}" for (b, _) in BAD for k, v in b.items()])
def test_bad_parameters_get_400_with_an_openai_error_object(client, bad, param):
    kw = {"model": "tiny-llama", "messages": MSG, "max_tokens": 4, **bad}
    if any(isinstance(v, float) and not math.isfinite(v) for v in bad.values()):
        # the openai client refuses to send NaN/inf; other clients (json.dumps, httpx) send them as NaN/Infinity
        r = httpx.post(f"{client.base_url}chat/completions", content=json.dumps(kw),
                       headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 400
        body = r.json()["error"]
    else:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(**kw)
        body = err.value.body
    assert set(body) == {"message", "type", "param", "code"} and body["param"] == param
    assert body["type"] == "invalid_request_error"


def test_a_bad_request_never_touches_the_others_of_its_batch(engine, client):
    good = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]
    too_long = [{"role": "user", "content": "x" * 5000}]  # 5000+ tokens against the context of 4096

    def ask(messages):
        try:
            r = client.chat.completions.create(model="tiny-llama", messages=messages, max_tokens=5, temperature=0)
            return r.choices[0].message.content
        except openai.BadRequestError as e:
            return e

    with ThreadPoolExecutor(5) as pool:
        out = list(pool.map(ask, [*good[:2], too_long, *good[2:]]))
    assert isinstance(out[2], openai.BadRequestError) and out[2].code == "context_length_exceeded"
    assert out[:2] + out[3:] == engine.chat(good, GenerationSettings(max_new_tokens=5))


def test_compiled_programs_bounded_whatever_the_sampling_values(server, client):
    """50 distinct temperatures, top_p values and max_tokens: the programs compiled stay within the buckets."""
    before = server.decoder.compiles
    settings = [(round(0.05 + 0.03 * i, 3), round(0.5 + 0.01 * i, 3), 1 + 2 * i) for i in range(50)]

    def ask(s):
        r = client.chat.completions.create(model="tiny-llama", messages=MSG, temperature=s[0], top_p=s[1],
                                           max_tokens=s[2], seed=s[2])
        return r.usage.completion_tokens, r.choices[0].finish_reason

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(ask, settings))
    assert all(n <= s[2] and (f == "length") == (n == s[2]) for (n, f), s in zip(out, settings))
    m_buckets = {bucket(s[2], 64) for s in settings}  # 64, 128; one prompt-length bucket
    assert server.decoder.compiles - before <= 2 * len(m_buckets)  # a prefill and a decode program per bucket
    assert server.decoder.compiles <= server.decoder.bound() == 2 * 7 * 7  # buckets 64 ... 4096


def test_api_key_required(engine):
    srv = _stub_server(engine, lambda rows, *_: [np.array([70, 71]) for _ in rows], api_key="sk-test-key")
    try:
        for key in ("wrong", "unused"):
            with pytest.raises(openai.AuthenticationError) as err:
                _client(srv.server_address[:2], api_key=key).chat.completions.create(model="m", messages=MSG)
            assert err.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            _client(srv.server_address[:2], api_key="wrong").models.list()
        # a refused body is left unread: the connection closes, so that it is not taken for the next request
        body = b'{"messages": [{"role": "user", "content": "hi"}]}'
        reply = _raw(srv.server_address[:2], b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (len(body), body))
        assert reply.startswith(b"HTTP/1.1 401") and b"Connection: close" in reply
        ok = _client(srv.server_address[:2], api_key="sk-test-key")
        assert [m.id for m in ok.models.list()] == ["tiny-llama"]
        assert ok.chat.completions.create(model="m", messages=MSG, max_tokens=3).choices[0].finish_reason == "stop"
    finally:
        srv.shutdown()


def _raw(host_port, data: bytes, wait: float = 10.0) -> bytes:
    with socket.create_connection(host_port, timeout=wait) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_body_limits_and_read_timeout(engine):
    srv = _stub_server(engine, lambda rows, *_: [np.array([70]) for _ in rows], max_body_bytes=4096, read_timeout=0.5)
    hp = srv.server_address[:2]
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    try:
        t0 = time.monotonic()
        reply = _raw(hp, head + b"Content-Length: 100000000000\r\n\r\n{")
        assert reply.startswith(b"HTTP/1.1 413") and b'"request_too_large"' in reply and time.monotonic() - t0 < 5
        assert _raw(hp, head + b"\r\n").startswith(b"HTTP/1.1 411")
        assert _raw(hp, head + b"Content-Length: -5\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _raw(hp, head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").startswith(b"HTTP/1.1 411")
        t0 = time.monotonic()  # promises 100 bytes, sends 1: 408 after the read timeout
        assert _raw(hp, head + b"Content-Length: 100\r\n\r\n{").startswith(b"HTTP/1.1 408")
        assert time.monotonic() - t0 < 5
        assert _raw(hp, head + b"Content-Length: 5\r\n\r\n{nope").startswith(b"HTTP/1.1 400")
        with pytest.raises(openai.APIStatusError) as err:  # the client's own request over the cap
            _client(hp).chat.completions.create(model="m", messages=[{"role": "user", "content": "y" * 5000}])
        assert err.value.status_code == 413
        assert _client(hp).chat.completions.create(model="m", messages=MSG).usage.completion_tokens == 1
    finally:
        srv.shutdown()


def test_full_queue_answers_429_with_retry_after_and_errors_hide_internals(engine):
    release, calls = threading.Event(), []

    def blocked(rows, *_):
        calls.append([r.max_tokens for r in rows])
        release.wait(20)
        if any(r.max_tokens == 13 for r in rows):
            raise RuntimeError("secret internal detail /home/x")
        return [np.array([70, 71, 72]) for _ in rows]

    srv = _stub_server(engine, blocked, max_queue=1)
    c = _client(srv.server_address[:2])
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(c.chat.completions.create, model="m", messages=MSG, max_tokens=13)
            while not calls:  # the worker holds the first request
                time.sleep(0.01)
            second = pool.submit(c.chat.completions.create, model="m", messages=MSG, max_tokens=3)
            while srv.worker.requests.qsize() < 1:  # the second waits in the queue of 1
                time.sleep(0.01)
            with pytest.raises(openai.RateLimitError) as err:
                c.chat.completions.create(model="m", messages=MSG, max_tokens=3)
            assert err.value.response.headers["retry-after"] == "1" and err.value.code == "queue_full"
            release.set()
            with pytest.raises(openai.InternalServerError) as err:
                first.result()
            assert "secret" not in err.value.response.text and err.value.body["type"] == "server_error"
            assert second.result().choices[0].message.content == engine.tokenizer.decode([70, 71, 72])
    finally:
        release.set()
        srv.shutdown()


def test_a_failing_request_is_isolated_from_its_batch(engine):
    def fails_on_13(rows, *_):
        if any(r.max_tokens == 13 for r in rows):
            raise RuntimeError("boom")
        return [np.array([70] * r.max_tokens) for r in rows]

    srv = _stub_server(engine, fails_on_13)
    srv.worker.batch_window = 0.3
    c = _client(srv.server_address[:2])

    def ask(n):
        try:
            return c.chat.completions.create(model="m", messages=MSG, max_tokens=n).usage.completion_tokens
        except openai.InternalServerError:
            return "500"

    try:
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(ask, [2, 13, 3, 4])) == [2, "500", 3, 4]
    finally:
        srv.shutdown()


def test_a_disconnected_clients_waiting_request_is_dropped(engine):
    release, calls = threading.Event(), []

    def blocked(rows, *_):
        calls.append([r.max_tokens for r in rows])
        release.wait(20)
        return [np.array([70]) for _ in rows]

    srv = _stub_server(engine, blocked)
    hp = srv.server_address[:2]
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(_client(hp).chat.completions.create, model="m", messages=MSG, max_tokens=3)
            while not calls:
                time.sleep(0.01)
            body = b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}'
            with socket.create_connection(hp) as s:  # queued behind the first, then gone
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body))
                while srv.worker.requests.qsize() < 1:
                    time.sleep(0.01)
            time.sleep(0.6)  # the handler notices within 0.2 s
            release.set()
            assert first.result().usage.completion_tokens == 1
        time.sleep(0.3)
        assert calls == [[3]]  # max_tokens 7 never ran
    finally:
        release.set()
        srv.shutdown()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (1 << 12) / 2 ** 20


def test_load_64_concurrent_clients_mixed_lengths_10pct_invalid(engine, server, record_property):
    """64 concurrent clients, prompts of 5-40 characters and max_tokens 1-40, every 10th request invalid; twice:
    every valid request answered as the engine would, each invalid one its own 400, resident memory stable in the
    second round; latency p50/p99 recorded (``record_property``, printed)."""
    c = _client(server.server_address[:2], timeout=120)

    def make(i):
        msgs = [{"role": "user", "content": ("abcdefghij" * 4)[:5 + (i * 7) % 36]}]
        bad = i % 10 == 3
        return msgs, 1 + (i * 13) % 40, bad

    jobs = [make(i) for i in range(64)]

    def ask(job):
        msgs, n, bad = job
        t0 = time.monotonic()
        try:
            r = c.chat.completions.create(model="tiny-llama", messages=msgs, max_tokens=n,
                                          temperature=-1.0 if bad else 0)
            return r, time.monotonic() - t0
        except openai.BadRequestError as e:
            return e, time.monotonic() - t0

    rss = []
    for _ in range(2):
        with ThreadPoolExecutor(64) as pool:
            out = list(pool.map(ask, jobs))
        rss.append(_rss_mb())
    for (msgs, n, bad), (r, _) in zip(jobs, out):
        if bad:
            assert isinstance(r, openai.BadRequestError) and r.body["param"] == "temperature"
        else:  # as the request alone: the first n of its 40 greedy tokens (one compiled program for all)
            alone = server.decoder.generate([_row(engine, msgs, 40)])[0][:n]
            assert r.choices[0].message.content == engine.tokenizer.decode(alone)
            assert r.usage.completion_tokens == len(alone)
    lat = np.array([t for _, t in out])
    p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
    record_property("latency_p50_s", round(float(p50), 3))
    record_property("latency_p99_s", round(float(p99), 3))
    print(f"load: p50 {p50:.2f} s, p99 {p99:.2f} s, rss {rss[0]:.0f} -> {rss[1]:.0f} MB")
    assert rss[1] - rss[0] < 64, rss


def test_serve_llm_needs_the_named_key_variable(monkeypatch, capsys):
    from jaxsuite.cli import main

    monkeypatch.delenv("NO_SUCH_KEY_VAR_41", raising=False)
    assert main(["serve-llm", "--api-key-env", "NO_SUCH_KEY_VAR_41"]) == 2
    assert "NO_SUCH_KEY_VAR_41" in capsys.readouterr().err


def _ask_raw_then_leave(hp, wait_until):
    body = b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}'
    with socket.create_connection(hp) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        while not wait_until():
            time.sleep(0.01)


def test_a_disconnected_clients_running_generation_is_cancelled(engine):
    seen = {}

    def until_cancelled(rows, on_tokens, cancelled):
        if "running" in seen:  # the next request
            return [np.array([70]) for _ in rows]
        seen["running"] = time.monotonic()
        while not cancelled(0) and time.monotonic() - seen["running"] < 20:  # the decoder checks between segments
            time.sleep(0.01)
        seen["cancelled"] = cancelled(0)
        return [np.array([70]) for _ in rows]

    srv = _stub_server(engine, until_cancelled)
    try:
        _ask_raw_then_leave(srv.server_address[:2], lambda: "running" in seen)
        t0 = time.monotonic()
        while "cancelled" not in seen and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        assert seen.get("cancelled") is True and time.monotonic() - t0 < 2
        # the next request does not wait for the gone one
        assert _client(srv.server_address[:2]).chat.completions.create(
            model="m", messages=MSG, max_tokens=3).usage.completion_tokens == 1
    finally:
        srv.shutdown()


def test_streaming_sends_tokens_as_they_are_decoded(engine):
    release = threading.Event()

    def two_segments(rows, on_tokens, cancelled):
        on_tokens(0, np.array([70, 71]))
        release.wait(20)
        on_tokens(0, np.array([72]))
        return [np.array([70, 71, 72])]

    srv = _stub_server(engine, two_segments)
    try:
        stream = _client(srv.server_address[:2]).chat.completions.create(model="m", messages=MSG, max_tokens=5,
                                                                         stream=True)
        it = iter(stream)
        assert next(it).choices[0].delta.role == "assistant"
        first = next(it).choices[0].delta.content  # before the second segment exists
        assert first == engine.tokenizer.decode([70, 71]) and not release.is_set()
        release.set()
        rest = list(it)
        assert first + "".join(c.choices[0].delta.content or "" for c in rest) == engine.tokenizer.decode([70, 71, 72])
        assert rest[-1].choices[0].finish_reason == "stop"
    finally:
        release.set()
        srv.shutdown()


def test_per_row_sampling_settings_in_one_batch(engine, client):
    """Rows of one batch keep their own settings: top_p near 0 is greedy at any temperature, and a seeded sampled
    reply is the same whatever it is batched with."""
    greedy = client.chat.completions.create(model="m", messages=MSG, max_tokens=12, temperature=0)
    others = [[{"role": "user", "content": f"other {i}"}] for i in range(3)]

    def ask(args):
        msgs, kw = args
        return client.chat.completions.create(model="m", messages=msgs, max_tokens=12, **kw).choices[0].message.content

    runs = []
    for companions in (others, others[:1]):
        jobs = [(MSG, {"temperature": 1.5, "top_p": 1e-6}), (MSG, {"temperature": 1.0, "seed": 7}),
                *[(c, {"temperature": 0.7, "seed": i}) for i, c in enumerate(companions)]]
        with ThreadPoolExecutor(len(jobs)) as pool:
            runs.append(list(pool.map(ask, jobs)))
    assert runs[0][0] == runs[1][0] == greedy.choices[0].message.content
    assert runs[0][1] == runs[1][1] != greedy.choices[0].message.content  # sampled, and reproducible
