"""The JAX Llama on the real SmolLM2-135M-Instruct GGUF against llama.cpp (llama-cpp-python, the `llamacpp`
extra): the same tokens for the chat prompts, and the same greedy continuations.

llama.cpp multiplies Q4_1 weights with activations quantised to 8 bits; we dequantise the weights to float32
and keep activations in float32. So the exact check runs both on a float32 copy of the GGUF (same weights,
tokenizer and template; llama.cpp then quantises nothing): logits and continuations must agree. On the Q4_1
file itself the two may differ where llama.cpp's top two logits are within its activation rounding: there a
continuation must agree up to such a near-tie."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "List three uses of a paperclip.",
           "How do I bake bread at home?", "Explain photosynthesis to a child.", "What is 17 times 23?",
           "Give me a tip for learning a new language.", "Why is the sky blue?"]
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def q4_path():
    pytest.importorskip("llama_cpp")
    from jaxsuite.nn import llama_checkpoint

    try:
        return llama_checkpoint.default_model_path()
    except Exception as err:  # noqa: BLE001
        pytest.skip(str(err))


def _pair(path):
    import llama_cpp

    from jaxsuite.nn import llama_checkpoint

    return (llama_checkpoint.load(path),
            llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=2, logits_all=True, verbose=False, seed=0))


def test_float32_copy_logits_and_continuations_equal_llama_cpp(q4_path, tmp_path):
    from tests.llama_fixtures import dequantized_copy

    ours, ref = _pair(dequantized_copy(q4_path, tmp_path / "f32.gguf"))
    _compare(ours, ref, near_tie=0.05, logit_atol=0.1, min_identical=len(PROMPTS) - 1)


def test_q4_continuations_agree_up_to_quantisation_near_ties(q4_path):
    ours, ref = _pair(q4_path)
    _compare(ours, ref, near_tie=1.5, logit_atol=None, min_identical=0)


def _compare(ours, ref, near_tie, logit_atol, min_identical):
    from jaxsuite.nn import llama

    tok = ours.tokenizer
    texts = [tok.render_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    ids = [tok.encode(t) for t in texts]
    for t, i in zip(texts, ids):
        assert ref.tokenize(t.encode(), add_bos=False, special=True) == i
    if logit_atol is not None:  # every prompt position's next-token logits
        ref.reset()
        ref.eval(ids[0])
        theirs = np.asarray(ref.scores[:ref.n_tokens])
        mine = np.asarray(ours.model(jnp.asarray([ids[0]]), llama.KVCache.empty(ours.model.config, 1, len(ids[0])),
                                     0)[0][0])
        assert np.abs(mine - theirs).max() < logit_atol
    t = max(map(len, ids))
    tokens, valid = np.zeros((len(ids), t), np.int32), np.zeros((len(ids), t), bool)
    for r, i in enumerate(ids):
        tokens[r, t - len(i):], valid[r, t - len(i):] = i, True
    out, lengths = llama.make_generate()(ours.model, jnp.asarray(tokens), jnp.asarray(valid), jax.random.key(0),
                                         max_new_tokens=NEW_TOKENS, stop_ids=tok.stop_ids, pad_id=tok.eos_id)
    full = 0
    for r, prompt_ids in enumerate(ids):
        mine = np.asarray(out[r, :int(lengths[r])]).tolist()
        ref.reset()
        ref.eval(prompt_ids)
        theirs = []
        for _ in range(NEW_TOKENS):
            logits = np.asarray(ref.scores[ref.n_tokens - 1])
            nxt = int(np.argmax(logits))
            if nxt in tok.stop_ids:
                break
            theirs.append(nxt)
            ref.eval([nxt])
        if mine == theirs:
            full += 1
            continue
        k = next(i for i in range(min(len(mine), len(theirs)) + 1)
                 if i == len(mine) or i == len(theirs) or mine[i] != theirs[i])
        assert k < len(theirs), f"prompt {r}: ours ran past llama.cpp's stop"
        ref.reset()
        ref.eval(prompt_ids + theirs[:k])
        logits = np.asarray(ref.scores[ref.n_tokens - 1])
        our_pick = mine[k] if k < len(mine) else max(tok.stop_ids, key=lambda i: logits[i])  # we stopped there
        gap = logits[theirs[k]] - logits[our_pick]
        assert gap < near_tie, (f"prompt {r}: continuations differ at token {k}, where llama.cpp prefers its token "
                                f"by {gap:.3f} logits")
    assert full >= min_identical, f"only {full}/{len(PROMPTS)} continuations identical"
