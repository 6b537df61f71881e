"""Batched decoding for the server: per-row sampling settings as traced arrays, bucketed shapes.

:class:`BucketedDecoder` runs up to ``batch_size`` requests in one compiled call whatever their temperatures,
top_p values, seeds and ``max_tokens``: these are arrays ``[batch_size]`` inside the program, not compile-time
constants. Only two sizes are compile-time: the prompt width ``T`` (the longest prompt of the batch rounded up to a
power of two, at least ``min_bucket``) and the generation buffer ``M`` (the largest ``max_tokens`` of the batch
rounded up the same way); each row stops at its own ``max_tokens`` or at any of the model's end-of-sequence ids.

Bound on compiled programs: with ``n = log2(P / min_bucket) + 1`` buckets, where ``P`` is the model's context
rounded up to a power of two (prompts and ``max_tokens`` are both at most the context), there are at most ``n * n``
bucket pairs ``(T, M)`` and two programs per pair (the prefill and the decode segment), so at most ``2 * n * n``
programs whatever the clients send (context 4096 and ``min_bucket`` 16: n = 9, at most 162; SmolLM2's 8192: 200).
The batch dimension is fixed (filler rows pad a short batch); the segment's end step is traced.
:meth:`BucketedDecoder.bound` returns ``2 * n * n``.

Decoding runs in segments of ``segment`` steps (16): between two segments the host hands new tokens to a
streaming callback and ends the rows whose clients have gone, so a cancelled request stops within one segment.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.nn import llama

# end-of-sequence tokens of common chat checkpoints (SmolLM2 and ChatML: <|endoftext|>, <|im_end|>; Llama 3:
# <|eot_id|>, <|end_of_text|>; SentencePiece </s>): every one the vocabulary holds ends a reply
END_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "</s>", "<end_of_turn>")
MIN_TEMPERATURE = 1e-3  # positive temperatures below this are sampled at this one (logits / t stays finite)


def eos_ids(tokenizer) -> tuple[int, ...]:
    """Every end-of-sequence id of a checkpoint's tokenizer: its eos id and extra stop ids (from the GGUF
    metadata or generation_config.json) and the ids of :data:`END_TOKENS` in its vocabulary (SmolLM2's GGUF names
    ``<|im_end|>`` (2) as eos, but the model also ends with ``<|endoftext|>`` (0))."""
    ids = set(tokenizer.stop_ids)
    for tok in END_TOKENS:
        i = tokenizer.tokenizer.token_to_id(tok)
        if i is not None:
            ids.add(int(i))
    return tuple(sorted(ids))


def bucket(n: int, minimum: int = 16) -> int:
    """The smallest power of two >= max(n, minimum)."""
    return max(minimum, 1 << max(0, int(n) - 1).bit_length())


def _sample(logits, keys, temperature, top_p):
    """One token per row: greedy where ``temperature == 0``, else nucleus sampling at the row's temperature and
    top_p (:func:`jaxsuite.nn.llama.nucleus`)."""
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    scaled = logits / jnp.maximum(temperature, MIN_TEMPERATURE)[:, None]

    def cut(scaled):
        return jnp.where((top_p < 1.0)[:, None], llama.nucleus(scaled, top_p), scaled)

    scaled = jax.lax.cond(jnp.all(top_p >= 1.0), lambda s: s, cut, scaled)
    sampled = jax.vmap(lambda k, row: jax.random.categorical(k, row))(keys, scaled).astype(jnp.int32)
    return jnp.where(temperature > 0, sampled, greedy)


def _step_keys(seeds, i):
    return jax.vmap(lambda k: jax.random.fold_in(k, i))(jax.vmap(jax.random.key)(seeds))


def prefill_rows(model, tokens, token_valid, seeds, temperature, top_p, *, buffer: int, pad_id: int):
    """Run the left-padded prompts ``tokens [B, T]`` (``token_valid`` False on padding) into a cache of
    ``T + buffer`` slots and sample each row's first token: the carry that :func:`decode_rows` continues."""
    b, t = tokens.shape
    cache = llama.KVCache.empty(model.config, b, t + buffer, dtype=model.embed.embedding[...].dtype)
    logits, cache = model(tokens, cache, 0, token_valid, last=1)
    first = _sample(logits[:, -1], _step_keys(seeds, 0), temperature, top_p)
    return (jnp.int32(0), first, cache, jnp.zeros((b,), bool), jnp.full((b, buffer), pad_id, jnp.int32),
            jnp.zeros((b,), jnp.int32))


def decode_rows(model, carry, seeds, temperature, top_p, max_new, cancel, until, *, stop_ids: tuple[int, ...],
                pad_id: int):
    """Continue the carry up to step ``until`` (traced) or until every row is done; each row with its own
    ``temperature``, ``top_p``, ``seeds`` (uint32) and ``max_new`` (<= buffer); ``cancel [B]`` ends rows now.
    The carry's ``out [B, buffer]`` holds each row's tokens up to and excluding a stop token (``pad_id`` after)
    and ``lengths [B]`` their number; a row's tokens do not depend on the other rows."""
    i, tok, cache, done, out, lengths = carry
    buffer = out.shape[1]
    t = cache.k.shape[3] - buffer  # the prompt width
    stops = jnp.asarray(stop_ids, jnp.int32)
    done = done | cancel
    until = jnp.minimum(until, buffer)

    def cond(carry):
        return (carry[0] < until) & ~jnp.all(carry[3])

    def body(carry):
        i, tok, cache, done, out, lengths = carry
        done = done | jnp.isin(tok, stops) | (i >= max_new)
        out = out.at[:, i].set(jnp.where(done, pad_id, tok))
        lengths = lengths + (~done).astype(jnp.int32)
        logits, cache = model(tok[:, None], cache, t + i, ~done[:, None])
        nxt = _sample(logits[:, 0], _step_keys(seeds, i + 1), temperature, top_p)
        return i + 1, nxt, cache, done, out, lengths

    return jax.lax.while_loop(cond, body, (i, tok, cache, done, out, lengths))


@dataclasses.dataclass
class Row:
    """One request: its prompt ids and sampling settings (validated by the caller)."""
    prompt: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


class BucketedDecoder:
    """``generate(rows)`` for up to ``batch_size`` rows per call, decoded in segments of ``segment`` steps: between
    segments the new tokens go to ``on_tokens`` (streaming) and rows that ``cancelled`` names stop. Two programs
    (prefill, decode) per bucket pair: see the module docstring for the bound. ``compiles`` counts the traces (one
    per compiled program)."""

    def __init__(self, model, stop_ids: tuple[int, ...], pad_id: int, batch_size: int, min_bucket: int = 16,
                 segment: int = 16):
        self.model, self.stop_ids, self.pad_id = model, tuple(stop_ids), pad_id
        self.batch_size, self.min_bucket, self.segment = batch_size, min_bucket, segment
        self.context = model.config.max_seq_len
        self.compiles = 0

        def counted(fn):
            def traced(*args, **kw):
                self.compiles += 1  # runs once per trace, i.e. per compiled program
                return fn(*args, **kw)
            return traced

        self._prefill = nnx.jit(counted(prefill_rows), static_argnames=("buffer", "pad_id"))
        self._decode = nnx.jit(counted(decode_rows), static_argnames=("stop_ids", "pad_id"), donate_argnames="carry")

    def bound(self) -> int:
        """The most programs this decoder compiles: ``2 * n * n`` (module docstring)."""
        n = bucket(self.context, self.min_bucket).bit_length() - self.min_bucket.bit_length() + 1
        return 2 * n * n

    def generate(self, rows: list[Row], on_tokens=None, cancelled=None) -> list[np.ndarray]:
        """The generated ids of each row (stop token excluded). ``on_tokens(i, new_ids)`` is called for row ``i``
        after each segment that added tokens to it; ``cancelled(i)`` -> True stops row ``i`` (its ids so far are
        returned)."""
        if not 0 < len(rows) <= self.batch_size:
            raise ValueError(f"need 1 to {self.batch_size} rows, got {len(rows)}")
        for r in rows:
            if not r.prompt or r.max_tokens < 1 or len(r.prompt) + r.max_tokens > self.context:
                raise ValueError(f"a prompt of {len(r.prompt)} tokens with max_tokens {r.max_tokens} does not fit "
                                 f"the context of {self.context}")
        b = self.batch_size
        t = bucket(max(len(r.prompt) for r in rows), self.min_bucket)
        buffer = bucket(max(r.max_tokens for r in rows), self.min_bucket)
        tokens = np.full((b, t), self.pad_id, np.int32)
        valid = np.zeros((b, t), bool)
        valid[:, -1] = True  # filler rows hold one token, so that no row is empty
        seeds, temp, top_p = np.zeros(b, np.uint32), np.zeros(b, np.float32), np.ones(b, np.float32)
        max_new = np.zeros(b, np.int32)  # filler rows are done at once
        for i, r in enumerate(rows):
            tokens[i, t - len(r.prompt):], valid[i, t - len(r.prompt):] = r.prompt, True
            seeds[i], temp[i], top_p[i], max_new[i] = r.seed % 2 ** 32, r.temperature, r.top_p, r.max_tokens
        seeds, temp, top_p, max_new = map(jnp.asarray, (seeds, temp, top_p, max_new))
        carry = self._prefill(self.model, jnp.asarray(tokens), jnp.asarray(valid), seeds, temp, top_p,
                              buffer=buffer, pad_id=self.pad_id)
        sent = np.zeros(len(rows), int)
        cancel = np.zeros(b, bool)
        step = 0
        while True:
            step += self.segment
            carry = self._decode(self.model, carry, seeds, temp, top_p, max_new, jnp.asarray(cancel),
                                 jnp.int32(step), stop_ids=self.stop_ids, pad_id=self.pad_id)
            i, done, out, lengths = int(carry[0]), np.asarray(carry[3]), np.asarray(carry[4]), np.asarray(carry[5])
            if on_tokens is not None:
                for r in range(len(rows)):
                    if lengths[r] > sent[r]:
                        on_tokens(r, out[r, sent[r]:lengths[r]])
                        sent[r] = lengths[r]
            if i >= buffer or done.all():
                break
            if cancelled is not None:
                cancel[:len(rows)] = [bool(cancelled(r)) for r in range(len(rows))]
        return [out[r, :lengths[r]] for r in range(len(rows))]
