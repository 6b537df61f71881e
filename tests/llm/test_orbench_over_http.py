"""orbench's evaluation over HTTP against `jaxsuite serve-llm`'s server on 127.0.0.1 (issue 41): the served
model's replies and keyword rejection rates equal the in-process engine's on the same prompts (greedy), and the
served model is judged by its family's keyword rule (the name "tiny-llama": open_source)."""
from __future__ import annotations

import threading

import pytest

from jaxsuite.core.config import load_config
from jaxsuite.llm.engine import ChatEngine
from jaxsuite.llm.server import make_server
from jaxsuite.methods.orbench import refusal, stats
from jaxsuite.methods.orbench.backends import JaxBackend, backend_from_spec
from jaxsuite.methods.orbench.evaluate import evaluate_set
from jaxsuite.methods.orbench.response_cache import ResponseCache
from jaxsuite.nn import llama_checkpoint
from tests import llama_fixtures as lf


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    loaded = llama_checkpoint.load(lf.write_gguf(tmp_path_factory.mktemp("m") / "tiny.gguf"))
    return ChatEngine(loaded, batch_size=4, pad_to=16)


@pytest.fixture(scope="module")
def base_url(engine):
    srv = make_server(engine, port=0, batch_window=0.05, min_bucket=64)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    host, port = srv.server_address[:2]
    yield f"http://{host}:{port}/v1"
    srv.shutdown()


PROMPTS = [f"How do I safely handle item {i}?" for i in range(5)]


def test_orbench_evaluation_over_http_equals_in_process(engine, base_url, tmp_path):
    cfg = load_config("orbench", "quick")
    served = backend_from_spec(f"http:{base_url}#tiny-llama", cfg.backend)
    fam = refusal.family_for(served, cfg.eval.keyword_family, cfg.eval.get("served_family", ""))
    assert fam == "open_source"  # from the served name; the in-process model keeps "paper"
    assert refusal.family_for(JaxBackend(engine), cfg.eval.keyword_family) == "paper"
    kw = dict(max_new_tokens=6, judge_items=0, judge_max_new_tokens=4)
    via_http = evaluate_set(served, None, PROMPTS, ["c"] * len(PROMPTS), "Be careful.", keyword_family=fam,
                            cache=ResponseCache(tmp_path / "http.jsonl"), **kw)
    direct = evaluate_set(JaxBackend(engine), None, PROMPTS, ["c"] * len(PROMPTS), "Be careful.",
                          keyword_family=fam, cache=ResponseCache(tmp_path / "jax.jsonl"), **kw)
    assert via_http["replies"] == direct["replies"] and all(isinstance(r, str) for r in direct["replies"])
    assert via_http["keyword"] == direct["keyword"] == [refusal.keyword_refusal(r, "open_source")
                                                        for r in direct["replies"]]
    rate = stats.rate(via_http["keyword"])["rate"]
    assert 0.0 <= rate <= 1.0 and rate == stats.rate(direct["keyword"])["rate"]
