"""Served models (OpenAI-compatible endpoints) get their model family's keyword refusal rule (issue 41)."""
import pytest

from jaxsuite.methods.orbench import refusal
from jaxsuite.methods.orbench.backends import HttpBackend, JaxBackend
from jaxsuite.methods.orbench.evaluate import evaluate_set
from jaxsuite.methods.orbench.response_cache import ResponseCache


class FakeClient:
    def __init__(self, name, reply):
        self.name, self.reply = name, reply

    def chat(self, conversations, **kw):
        return [self.reply for _ in conversations]


def _jax_like(name):
    b = object.__new__(JaxBackend)
    b.name = name
    return b


def test_family_for_served_and_in_process():
    assert refusal.family_for(HttpBackend(FakeClient("gpt-3.5-turbo-0125", "")), "paper") == "gpt-3.5"
    assert refusal.family_for(HttpBackend(FakeClient("Meta-Llama-3-70B-Instruct", "")), "paper") == "open_source"
    assert refusal.family_for(HttpBackend(FakeClient("claude-3-opus", "")), "paper") == "claude"
    # an unrecognisable served name falls back to keyword_family; served_family overrides the name
    assert refusal.family_for(HttpBackend(FakeClient("my-finetune", "")), "paper") == "paper"
    assert refusal.family_for(HttpBackend(FakeClient("my-finetune", "")), "paper", "mistral") == "mistral"
    # in-process models keep keyword_family, whatever their name
    assert refusal.family_for(_jax_like("gpt-4-lookalike"), "paper") == "paper"
    with pytest.raises(ValueError):
        refusal.family_for(HttpBackend(FakeClient("x", "")), "paper", "nope")


def test_served_model_judged_by_its_family_rule(tmp_path):
    # "... can't ..." mid-reply: a refusal for gpt-3.5's "contains" rule, not for the paper's opening keywords
    reply = "Here is why I can't say more."
    backend = HttpBackend(FakeClient("gpt-3.5-turbo", reply))
    cache = ResponseCache(tmp_path / "c.jsonl")
    fam = refusal.family_for(backend, "paper")
    res = evaluate_set(backend, None, ["p1", "p2"], ["a", "b"], None, max_new_tokens=8, keyword_family=fam,
                       judge_items=0, judge_max_new_tokens=8, cache=cache)
    assert res["keyword"] == [True, True]
    assert not refusal.keyword_refusal(reply, "paper")


def test_experiment_uses_family_for():
    import inspect

    from jaxsuite.methods.orbench import experiment
    src = inspect.getsource(experiment)
    assert "refusal.family_for(backend" in src and "keyword_family=cfg.eval.keyword_family" not in src
