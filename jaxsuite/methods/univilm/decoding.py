"""Caption generation: beam search over the decoder as the official modules/beam.py runs it (beam 5 at test):
beams ranked by summed log-probabilities (no length penalty), every beam extended every step, and an example's
search stops once its best beam ends with [SEP]; its caption is that beam up to the [SEP]. Greedy is ``beam=1``.

(Freezing finished beams at their score instead, the common variant, let a beam that ended at the first step outrank
every longer caption here: without a length penalty, the official stopping rule is what keeps captions whole.)

Fixed shapes for jit: every beam holds ``max_len + 1`` tokens starting with [CLS]; the decoder is re-run on the
whole prefix each step (no key / value cache: captions are a few dozen tokens).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def beam_search(model, memory, memory_valid, *, beam: int, max_len: int, cls_id: int, sep_id: int,
                pad_id: int = 0) -> jax.Array:
    """Token ids [B, max_len] (after [CLS]; [PAD] after the first [SEP]) of the best beam per example."""
    b = memory.shape[0]
    mem = jnp.repeat(memory, beam, axis=0)
    mem_valid = jnp.repeat(memory_valid, beam, axis=0)
    tokens = jnp.full((b, beam, max_len + 1), pad_id, jnp.int32).at[:, :, 0].set(cls_id)
    scores = jnp.full((b, beam), -jnp.inf).at[:, 0].set(0.0)  # one live beam at the start
    done = jnp.zeros((b,), bool)

    def step(t, carry):
        tokens, scores, done = carry
        prefix = tokens[:, :, :max_len].reshape(b * beam, max_len)
        valid = jnp.broadcast_to(jnp.arange(max_len)[None, :] <= t, prefix.shape)
        logp = jax.nn.log_softmax(model.decode(prefix, valid, mem, mem_valid)[:, t], -1).reshape(b, beam, -1)
        vocab = logp.shape[-1]
        top, idx = jax.lax.top_k((scores[..., None] + logp).reshape(b, beam * vocab), beam)  # sorted, best first
        src, tok = idx // vocab, idx % vocab
        new_tokens = jnp.take_along_axis(tokens, src[..., None], 1).at[:, :, t + 1].set(tok)
        keep = done[:, None, None]
        return (jnp.where(keep, tokens, new_tokens), jnp.where(done[:, None], scores, top),
                done | (tok[:, 0] == sep_id))

    tokens, _, _ = jax.lax.fori_loop(0, max_len, step, (tokens, scores, done))
    best = tokens[:, 0, 1:]
    after_sep = jnp.cumsum(best == sep_id, axis=1) - (best == sep_id) > 0
    return jnp.where(after_sep, pad_id, best)
