"""A Llama-architecture decoder in Flax NNX with an explicit KV cache, and jitted batched generation.

Architecture (Touvron et al. 2023, as in HuggingFace ``LlamaForCausalLM`` and llama.cpp's ``llama`` graph):
pre-norm blocks of RMSNorm -> grouped-query self-attention with rotary position embeddings (RoPE, the
``rotate_half`` layout of HuggingFace checkpoints) -> residual, RMSNorm -> SwiGLU feed-forward -> residual;
a final RMSNorm and an LM head (tied to the token embedding when the checkpoint has none).

The layers are one stacked module (``nnx.vmap`` at construction) run with ``jax.lax.scan``, so a 30-layer model
compiles as one layer. The KV cache is a plain pytree passed in and out (:class:`KVCache`), so every function
here is pure and jittable. Sequences in a batch are left-padded; ``valid`` marks the real slots of the cache and
each token's RoPE position is the number of real tokens before it, so padding anywhere (also between a shared
prefix and a suffix, see :func:`generate`) is invisible to the model.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    max_seq_len: int = 2048

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def __post_init__(self):
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"LlamaConfig: dim {self.dim} must divide into n_heads {self.n_heads}, and n_heads into "
                             f"n_kv_heads {self.n_kv_heads}")


class KVCache(NamedTuple):
    """Keys and values of every layer, ``[layers, batch, kv_heads, slots, head_dim]``; ``valid[b, s]`` marks the
    slots that hold a real token (not padding, not yet written)."""
    k: jax.Array
    v: jax.Array
    valid: jax.Array

    @classmethod
    def empty(cls, config: LlamaConfig, batch: int, slots: int, dtype=jnp.float32) -> "KVCache":
        shape = (config.n_layers, batch, config.n_kv_heads, slots, config.head_dim)
        return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((batch, slots), bool))


class RMSNorm(nnx.Module):
    def __init__(self, dim: int, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (y * self.scale[...]).astype(x.dtype)


def rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotary embedding of ``x [B, T, H, D]`` at integer ``positions [B, T]``, HuggingFace ``rotate_half`` layout
    (dimension i pairs with i + D/2)."""
    half = x.shape[-1] // 2
    inv_freq = 1.0 / (theta ** (jnp.arange(half, dtype=jnp.float32) / half))
    angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, D/2]
    cos, sin = jnp.cos(angles)[:, :, None, :], jnp.sin(angles)[:, :, None, :]
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class Attention(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        c, hd = config, config.head_dim
        lin = lambda i, o: nnx.Linear(i, o, use_bias=False, rngs=rngs)  # noqa: E731
        self.q, self.k, self.v = lin(c.dim, c.n_heads * hd), lin(c.dim, c.n_kv_heads * hd), lin(c.dim, c.n_kv_heads * hd)
        self.o = lin(c.n_heads * hd, c.dim)
        self.config = config

    def __call__(self, x, positions, cache_k, cache_v, layer, valid, write_at):
        """Attend from ``x [B, T, dim]`` (written to slots ``write_at .. write_at+T`` of layer ``layer`` of the
        whole-model caches ``[L, B, kv_heads, S, head_dim]``, updated in place) to every valid slot at or before
        its own; returns the output and the caches."""
        c = self.config
        b, t, _ = x.shape
        q = rope(self.q(x).reshape(b, t, c.n_heads, c.head_dim), positions, c.rope_theta)
        k = rope(self.k(x).reshape(b, t, c.n_kv_heads, c.head_dim), positions, c.rope_theta)
        v = self.v(x).reshape(b, t, c.n_kv_heads, c.head_dim)
        at = (layer, 0, 0, write_at, 0)  # cache layout [L, B, kv_heads, S, head_dim]: slots contiguous per head
        cache_k = jax.lax.dynamic_update_slice(cache_k, k.swapaxes(1, 2)[None].astype(cache_k.dtype), at)
        cache_v = jax.lax.dynamic_update_slice(cache_v, v.swapaxes(1, 2)[None].astype(cache_v.dtype), at)
        keys, values = cache_k[layer], cache_v[layer]
        groups = c.n_heads // c.n_kv_heads
        q = q.reshape(b, t, c.n_kv_heads, groups, c.head_dim)
        keys, values = keys.astype(q.dtype), values.astype(v.dtype)
        scores = jnp.einsum("btkgd,bksd->bkgts", q, keys).astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(c.head_dim))
        slots = jnp.arange(keys.shape[2])
        causal = slots[None, :] <= (write_at + jnp.arange(t))[:, None]  # [T, S]
        mask = causal[None, None, None] & valid[:, None, None, None, :]
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        out = jnp.einsum("bkgts,bksd->btkgd", probs, values).reshape(b, t, c.n_heads * c.head_dim)
        return self.o(out), cache_k, cache_v


class FeedForward(nnx.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.gate = nnx.Linear(config.dim, config.ffn_dim, use_bias=False, rngs=rngs)
        self.up = nnx.Linear(config.dim, config.ffn_dim, use_bias=False, rngs=rngs)
        self.down = nnx.Linear(config.ffn_dim, config.dim, use_bias=False, rngs=rngs)

    def __call__(self, x):
        return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class Block(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.attn_norm = RMSNorm(config.dim, config.norm_eps)
        self.attn = Attention(config, rngs=rngs)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.ffn = FeedForward(config, rngs=rngs)

    def __call__(self, x, positions, cache_k, cache_v, layer, valid, write_at):
        h, cache_k, cache_v = self.attn(self.attn_norm(x), positions, cache_k, cache_v, layer, valid, write_at)
        x = x + h
        return x + self.ffn(self.ffn_norm(x)), cache_k, cache_v


class Llama(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.embed = nnx.Embed(config.vocab_size, config.dim, rngs=rngs)

        @nnx.split_rngs(splits=config.n_layers)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make_layers(r):
            return Block(config, rngs=r)

        self.layers = make_layers(rngs)
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.lm_head = None if config.tie_embeddings else nnx.Linear(config.dim, config.vocab_size, use_bias=False,
                                                                     rngs=rngs)

    def __call__(self, tokens, cache: KVCache, write_at, token_valid=None, last: int | None = None):
        """Logits ``[B, T, vocab]`` of ``tokens [B, T]`` written at cache slots ``write_at ..``, and the new cache
        (``last``: the logits of the last ``last`` positions only, ``[B, last, vocab]``: generation needs one).

        ``token_valid [B, T]`` marks real tokens (False for left padding); positions count the real tokens before.
        """
        b, t = tokens.shape
        token_valid = jnp.ones((b, t), bool) if token_valid is None else token_valid
        valid = jax.lax.dynamic_update_slice_in_dim(cache.valid, token_valid, write_at, axis=1)
        before = jnp.sum(cache.valid, axis=1, keepdims=True)  # real tokens already in the cache
        positions = jnp.maximum(before + jnp.cumsum(token_valid, axis=1) - 1, 0)
        x = self.embed(tokens)
        graphdef, layer_state = nnx.split(self.layers)

        def body(carry, xs):  # the caches ride in the carry: updated in place, never copied per layer
            h, ck, cv = carry
            state, layer = xs
            return nnx.merge(graphdef, state)(h, positions, ck, cv, layer, valid, write_at), None

        (x, k, v), _ = jax.lax.scan(body, (x, cache.k, cache.v), (layer_state, jnp.arange(self.config.n_layers)))
        x = self.norm(x if last is None else x[:, -last:])
        logits = self.embed.attend(x) if self.lm_head is None else self.lm_head(x)
        return logits.astype(jnp.float32), KVCache(k, v, valid)


def _sample(logits, key, temperature: float, top_p: float):
    """Greedy at ``temperature == 0``; otherwise nucleus sampling (Holtzman et al. 2020): the smallest set of
    tokens whose probability reaches ``top_p``, renormalised, at the given temperature. The set's probability
    threshold is found by bisection (30 vectorised passes over the vocabulary) instead of sorting it, which is
    slow on XLA:CPU."""
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_p < 1.0:
        logits = nucleus(logits, top_p)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def nucleus(logits, top_p):
    """``logits`` [rows, vocab] with every token outside the row's nucleus (the smallest set whose probability
    reaches ``top_p``, a scalar or [rows]) set to -inf; the set's probability threshold, the largest one keeping
    >= top_p, is found by bisection (30 vectorised passes over the vocabulary) instead of sorting it."""
    probs = jax.nn.softmax(logits, axis=-1)

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        enough = jnp.sum(jnp.where(probs >= mid[:, None], probs, 0.0), axis=-1) >= top_p
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid)

    lo, _ = jax.lax.fori_loop(0, 30, halve, (jnp.zeros(probs.shape[0]), jnp.max(probs, axis=-1) * (1 + 1e-6)))
    return jnp.where(probs >= lo[:, None], logits, -jnp.inf)


def generate(model: Llama, tokens: jax.Array, token_valid: jax.Array, key: jax.Array, *, max_new_tokens: int,
             stop_ids: tuple[int, ...], temperature: float = 0.0, top_p: float = 1.0, pad_id: int = 0,
             prefix: KVCache | None = None):
    """Continue each left-padded prompt ``tokens [B, T]`` (``token_valid`` False on padding) by up to
    ``max_new_tokens`` tokens, stopping a row at its first stop token.

    ``prefix`` is an optional cache of a prompt prefix shared by every row (e.g. a long judge template), filled
    once by :func:`prefill_prefix`; the rows' own tokens then follow it. Returns ``(new_tokens [B, max_new_tokens],
    lengths [B])``: the generated tokens up to and excluding the stop token, ``pad_id`` after it.
    Wrap with ``nnx.jit(..., static_argnames=(...))`` (see :func:`make_generate`).
    """
    b, t = tokens.shape
    cache, p = _cache_after_prefix(model, b, t + max_new_tokens, prefix)
    logits, cache = model(tokens, cache, p, token_valid, last=1)
    stops = jnp.asarray(stop_ids, jnp.int32)
    keys = jax.random.split(key, max_new_tokens)
    first = _sample(logits[:, -1], keys[0], temperature, top_p)
    out = jnp.full((b, max_new_tokens), pad_id, jnp.int32)

    def cond(carry):
        i, done = carry[0], carry[3]
        return (i < max_new_tokens) & ~jnp.all(done)

    def body(carry):
        i, tok, cache, done, out, lengths = carry
        done = done | jnp.isin(tok, stops)
        out = out.at[:, i].set(jnp.where(done, pad_id, tok))
        lengths = lengths + (~done).astype(jnp.int32)
        logits, cache = model(tok[:, None], cache, p + t + i, ~done[:, None])
        nxt = _sample(logits[:, 0], keys[jnp.minimum(i + 1, max_new_tokens - 1)], temperature, top_p)
        return i + 1, nxt, cache, done, out, lengths

    init = (jnp.int32(0), first, cache, jnp.zeros((b,), bool), out, jnp.zeros((b,), jnp.int32))
    *_, out, lengths = jax.lax.while_loop(cond, body, init)
    return out, lengths


def _cache_after_prefix(model: Llama, batch: int, slots: int, prefix: KVCache | None):
    """An empty cache of ``slots`` slots after the shared ``prefix`` (copied to every row); and the prefix length."""
    c = model.config
    p = 0 if prefix is None else prefix.k.shape[3]
    cache = KVCache.empty(c, batch, p + slots, dtype=model.embed.embedding[...].dtype)
    if prefix is None:
        return cache, p
    shape = (c.n_layers, batch) + prefix.k.shape[2:]
    return KVCache(cache.k.at[:, :, :, :p].set(jnp.broadcast_to(prefix.k, shape)),
                   cache.v.at[:, :, :, :p].set(jnp.broadcast_to(prefix.v, shape)),
                   cache.valid.at[:, :p].set(jnp.broadcast_to(prefix.valid, (batch, p)))), p


def score_continuations(model: Llama, tokens: jax.Array, token_valid: jax.Array, continuations: jax.Array,
                        lengths: jax.Array, prefix: KVCache | None = None) -> jax.Array:
    """Log-likelihood ``[B, C]`` of each of ``C`` continuations (``continuations [C, K]`` token ids, the first
    ``lengths[c]`` of row c real) after each left-padded prompt ``tokens [B, T]`` (a shared ``prefix`` first).
    The prompt is run once; each continuation then extends its cache (multiple-choice scoring)."""
    b, t = tokens.shape
    n_choices, k = continuations.shape
    cache, p = _cache_after_prefix(model, b, t + k, prefix)
    first, cache = model(tokens, cache, p, token_valid, last=1)
    first = jax.nn.log_softmax(first[:, 0], axis=-1)  # [B, V]: the first continuation token
    scores = []
    for c in range(n_choices):
        ids = jnp.broadcast_to(continuations[c], (b, k))
        logits, _ = model(ids, cache, p + t, jnp.ones((b, k), bool))
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits[:, :-1], axis=-1), ids[:, 1:, None], axis=-1)[..., 0]
        real = jnp.arange(1, k) < lengths[c]
        scores.append(first[:, continuations[c, 0]] + jnp.sum(jnp.where(real[None], logp, 0.0), axis=1))
    return jnp.stack(scores, axis=1)


def prefill_prefix(model: Llama, tokens: jax.Array) -> KVCache:
    """The cache of one shared prefix ``tokens [P]`` (batch 1), to pass as ``generate(..., prefix=)``."""
    cache = KVCache.empty(model.config, 1, tokens.shape[0], dtype=model.embed.embedding[...].dtype)
    _, cache = model(tokens[None], cache, 0)
    return cache


def make_generate():
    """``generate`` jitted, with the generation settings static (one compile per batch shape and settings)."""
    return nnx.jit(generate, static_argnames=("max_new_tokens", "stop_ids", "temperature", "top_p", "pad_id"))
