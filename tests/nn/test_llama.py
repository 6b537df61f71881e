"""The JAX Llama against a numpy reference (tiny random checkpoints in GGUF and HuggingFace form): logits,
KV-cache decoding, left padding, a shared prefix, greedy and nucleus generation, and the tokenizer paths."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.core.errors import UserError
from jaxsuite.nn import llama, llama_checkpoint
from tests import llama_fixtures as lf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = lf.write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return llama_checkpoint.load(path)


@pytest.fixture(scope="module")
def weights():
    return lf.tiny_weights()


@pytest.fixture(scope="module")
def generate():
    return llama.make_generate()


def _prompt(tok, text):
    return tok.encode(tok.render_chat([{"role": "user", "content": text}]))


def _logits(model, tokens, valid=None):
    cache = llama.KVCache.empty(model.config, tokens.shape[0], tokens.shape[1])
    return np.asarray(model(jnp.asarray(tokens), cache, 0, None if valid is None else jnp.asarray(valid))[0])


def test_gguf_logits_match_numpy_reference(tiny, weights):
    toks = _prompt(tiny.tokenizer, "hi there 123")
    np.testing.assert_allclose(_logits(tiny.model, np.asarray([toks])), lf.reference_logits(weights, lf.TINY, toks)[None],
                               atol=1e-4, rtol=1e-4)


def test_hf_folder_loads_the_same_model(tiny, tmp_path):
    hf = llama_checkpoint.load(lf.write_hf_folder(tmp_path / "hf"))
    toks = _prompt(hf.tokenizer, "same model?")
    assert toks == _prompt(tiny.tokenizer, "same model?")
    np.testing.assert_allclose(_logits(hf.model, np.asarray([toks])), _logits(tiny.model, np.asarray([toks])),
                               atol=1e-5)


def test_tokenizer_round_trip_and_chat_template(tiny):
    tok = tiny.tokenizer
    text = "Ünïcode, digits 2024 and <|im_end|> marks"
    ids = tok.encode(text)
    assert tok.decode(ids) == text.replace("<|im_end|>", "")  # specials are skipped on decoding
    assert ids.count(2) == 1  # a special token is one token, never split into bytes
    rendered = tok.render_chat([{"role": "user", "content": "x"}])
    assert rendered == "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    assert tok.stop_ids == (2,)


def test_cached_decoding_and_left_padding_match_full_forward(tiny):
    model = tiny.model
    toks = np.asarray(_prompt(tiny.tokenizer, "cache check"))
    full = _logits(model, toks[None])[0]
    # one token at a time through the cache
    cache = llama.KVCache.empty(model.config, 1, len(toks))
    step = []
    for i, t in enumerate(toks):
        lg, cache = model(jnp.asarray([[t]]), cache, i)
        step.append(np.asarray(lg[0, 0]))
    np.testing.assert_allclose(np.stack(step), full, atol=1e-4)
    # left padding with arbitrary pad tokens changes nothing
    padded = np.concatenate([np.full(5, 7), toks])[None]
    valid = np.concatenate([np.zeros(5, bool), np.ones(len(toks), bool)])[None]
    np.testing.assert_allclose(_logits(model, padded, valid)[0, 5:], full, atol=1e-4)


def _greedy_reference(weights, toks, n, stop):
    toks, out = list(toks), []
    for _ in range(n):
        nxt = int(np.argmax(lf.reference_logits(weights, lf.TINY, toks)[-1]))
        if nxt in stop:
            break
        out.append(nxt)
        toks.append(nxt)
    return out


def test_batched_greedy_generation_matches_reference(tiny, weights, generate):
    tok = tiny.tokenizer
    prompts = [_prompt(tok, "a"), _prompt(tok, "a longer prompt here")]
    t = max(map(len, prompts))
    tokens = np.zeros((2, t), np.int32)
    valid = np.zeros((2, t), bool)
    for i, p in enumerate(prompts):
        tokens[i, t - len(p):], valid[i, t - len(p):] = p, True
    out, lengths = generate(tiny.model, jnp.asarray(tokens), jnp.asarray(valid), jax.random.key(0), max_new_tokens=8,
                            stop_ids=tok.stop_ids, pad_id=0)
    for i, p in enumerate(prompts):
        ref = _greedy_reference(weights, p, 8, tok.stop_ids)
        assert int(lengths[i]) == len(ref)
        assert np.asarray(out[i, :len(ref)]).tolist() == ref
        assert (np.asarray(out[i, len(ref):]) == 0).all()


def test_shared_prefix_cache_equals_plain_generation(tiny, generate):
    tok = tiny.tokenizer
    prefix = _prompt(tok, "a shared judge template that every row starts with")[:-3]
    rows = [prefix + tok.encode(s) for s in ("one", "second row")]
    t = max(len(r) - len(prefix) for r in rows)
    plain_t = max(map(len, rows))
    kw = dict(max_new_tokens=6, stop_ids=tok.stop_ids, pad_id=0)
    tokens, valid = np.zeros((2, t), np.int32), np.zeros((2, t), bool)
    ptok, pval = np.zeros((2, plain_t), np.int32), np.zeros((2, plain_t), bool)
    for i, r in enumerate(rows):
        own = r[len(prefix):]
        tokens[i, t - len(own):], valid[i, t - len(own):] = own, True
        ptok[i, plain_t - len(r):], pval[i, plain_t - len(r):] = r, True
    pre = llama.prefill_prefix(tiny.model, jnp.asarray(prefix))
    a = generate(tiny.model, jnp.asarray(tokens), jnp.asarray(valid), jax.random.key(0), prefix=pre, **kw)
    b = generate(tiny.model, jnp.asarray(ptok), jnp.asarray(pval), jax.random.key(0), **kw)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))


def test_sampling_is_keyed_and_top_p_tiny_is_greedy(tiny, generate):
    tok = tiny.tokenizer
    p = np.asarray([_prompt(tok, "sample")], np.int32)
    v = np.ones_like(p, bool)
    kw = dict(max_new_tokens=6, stop_ids=tok.stop_ids, pad_id=0)
    greedy = generate(tiny.model, p, v, jax.random.key(0), **kw)[0]
    nucleus = generate(tiny.model, p, v, jax.random.key(3), temperature=1.0, top_p=1e-6, **kw)[0]
    np.testing.assert_array_equal(np.asarray(greedy), np.asarray(nucleus))  # only the top token survives
    s1 = generate(tiny.model, p, v, jax.random.key(1), temperature=1.0, top_p=0.9, **kw)[0]
    s1b = generate(tiny.model, p, v, jax.random.key(1), temperature=1.0, top_p=0.9, **kw)[0]
    np.testing.assert_array_equal(np.asarray(s1), np.asarray(s1b))
    draws = {tuple(np.asarray(generate(tiny.model, p, v, jax.random.key(k), temperature=2.0, **kw)[0][0]))
             for k in range(4)}
    assert len(draws) > 1  # a random model at temperature 2: different keys, different text


def test_bad_checkpoint_paths_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="expected a .gguf file"):
        llama_checkpoint.load(tmp_path / "missing.bin")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(UserError, match="expected a llama model"):
        llama_checkpoint.load(tmp_path / "cfg")


def test_continuation_scores_match_the_reference(tiny, weights):
    tok = tiny.tokenizer
    prompts = [_prompt(tok, "judge this"), _prompt(tok, "and this longer one")]
    conts = [tok.encode("[[yes]]"), tok.encode("[[no]]")]
    t, k = max(map(len, prompts)), max(map(len, conts))
    tokens, valid = np.zeros((2, t), np.int32), np.zeros((2, t), bool)
    for i, p in enumerate(prompts):
        tokens[i, t - len(p):], valid[i, t - len(p):] = p, True
    table = np.zeros((2, k), np.int32)
    for c, ids in enumerate(conts):
        table[c, :len(ids)] = ids
    got = np.asarray(llama.score_continuations(tiny.model, jnp.asarray(tokens), jnp.asarray(valid), jnp.asarray(table),
                                               jnp.asarray([len(c) for c in conts])))
    for i, p in enumerate(prompts):
        for c, ids in enumerate(conts):
            logits = lf.reference_logits(weights, lf.TINY, p + ids)
            logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
                - logits.max(-1, keepdims=True)
            want = sum(logp[len(p) - 1 + j, ids[j]] for j in range(len(ids)))
            assert got[i, c] == pytest.approx(want, abs=1e-3)
