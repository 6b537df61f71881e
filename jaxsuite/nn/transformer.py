"""Transformer encoder and decoder stacks (Vaswani et al. 2017) in NNX, with the masks they take.

* Masks are boolean, True = may attend, broadcastable to [B, heads, queries, keys]: :func:`padding_mask` (keys that
  are real tokens), :func:`causal_mask` (key position <= query position), :func:`combine_masks` (AND).
* :class:`EncoderLayer`: self-attention then a feed-forward block, each residual; ``norm_first=False`` is
  post-LN (the original Transformer, BERT, SPAFormer's released encoder), ``True`` pre-LN.
* :class:`DecoderLayer`: masked self-attention, cross-attention to an encoder's output, feed-forward.
* :class:`Encoder` / :class:`Decoder`: stacks of them. ``Encoder(..., reset_tail=e)`` sets the last dims of the
  stream back to ``e`` after every layer (encodings re-injected, as SPAFormer's released encoder does with its
  group and sequence encodings); ``return_all=True`` also
  gives every layer's output.

Dropout is pure: a call takes ``key`` (a PRNG key; None = deterministic, e.g. at evaluation) and splits it per
layer, so no random state lives in the modules.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx


def padding_mask(valid: jax.Array) -> jax.Array:
    """[B, L] bool (True = a real token) -> [B, 1, 1, L]: every query may attend to the real keys only."""
    return valid[:, None, None, :].astype(bool)


def causal_mask(length: int) -> jax.Array:
    """[1, 1, L, L]: query i may attend to keys 0..i."""
    return jnp.tril(jnp.ones((length, length), bool))[None, None]


def combine_masks(*masks: jax.Array | None) -> jax.Array | None:
    """Logical AND of the masks given (None entries ignored; None if all are)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = jnp.logical_and(out, m)
    return out


def _keys(key: jax.Array | None, n: int) -> list[jax.Array | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


class FeedForward(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, activation: Callable = nnx.gelu, dropout: float = 0.0,
                 rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(dim, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, dim, rngs=rngs)
        self.activation = activation
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        h = self.activation(self.fc1(x))
        return self.fc2(self.dropout(h, deterministic=key is None, rngs=key))


class _Attention(nnx.Module):
    def __init__(self, dim: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.attn = nnx.MultiHeadAttention(heads, dim, dropout_rate=dropout, decode=False, keep_rngs=False,
                                           rngs=rngs)

    def __call__(self, q: jax.Array, kv: jax.Array, mask: jax.Array | None, key: jax.Array | None) -> jax.Array:
        rngs = None if key is None else nnx.Rngs(dropout=key)  # attention-weight dropout, from this call's key
        return self.attn(q, kv, mask=mask, deterministic=key is None, rngs=rngs)


class _Sublayers(nnx.Module):
    """Residual sub-layers, each ``x + dropout(f(x))`` with a LayerNorm before f (pre-LN) or after the sum."""

    def __init__(self, dim: int, count: int, dropout: float, norm_first: bool, eps: float, *, rngs: nnx.Rngs):
        self.norms = nnx.List([nnx.LayerNorm(dim, epsilon=eps, rngs=rngs) for _ in range(count)])
        self.dropout = nnx.Dropout(dropout)
        self.norm_first = norm_first

    def apply(self, i: int, x: jax.Array, f: Callable[[jax.Array], jax.Array], key: jax.Array | None) -> jax.Array:
        norm = self.norms[i]
        if self.norm_first:
            return x + self.dropout(f(norm(x)), deterministic=key is None, rngs=key)
        return norm(x + self.dropout(f(x), deterministic=key is None, rngs=key))


class EncoderLayer(nnx.Module):
    def __init__(self, dim: int, heads: int, ffn: int, *, dropout: float = 0.0, norm_first: bool = False,
                 activation: Callable = nnx.gelu, eps: float = 1e-5, rngs: nnx.Rngs):
        self.self_attn = _Attention(dim, heads, dropout, rngs=rngs)
        self.ffn = FeedForward(dim, ffn, activation=activation, dropout=dropout, rngs=rngs)
        self.sub = _Sublayers(dim, 2, dropout, norm_first, eps, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, key: jax.Array | None = None) -> jax.Array:
        k = _keys(key, 4)
        x = self.sub.apply(0, x, lambda h: self.self_attn(h, h, mask, k[0]), k[1])
        return self.sub.apply(1, x, lambda h: self.ffn(h, k[2]), k[3])


class DecoderLayer(nnx.Module):
    def __init__(self, dim: int, heads: int, ffn: int, *, dropout: float = 0.0, norm_first: bool = False,
                 activation: Callable = nnx.gelu, eps: float = 1e-5, rngs: nnx.Rngs):
        self.self_attn = _Attention(dim, heads, dropout, rngs=rngs)
        self.cross_attn = _Attention(dim, heads, dropout, rngs=rngs)
        self.ffn = FeedForward(dim, ffn, activation=activation, dropout=dropout, rngs=rngs)
        self.sub = _Sublayers(dim, 3, dropout, norm_first, eps, rngs=rngs)

    def __call__(self, x: jax.Array, memory: jax.Array, self_mask: jax.Array | None = None,
                 cross_mask: jax.Array | None = None, key: jax.Array | None = None) -> jax.Array:
        k = _keys(key, 6)
        x = self.sub.apply(0, x, lambda h: self.self_attn(h, h, self_mask, k[0]), k[1])
        x = self.sub.apply(1, x, lambda h: self.cross_attn(h, memory, cross_mask, k[2]), k[3])
        return self.sub.apply(2, x, lambda h: self.ffn(h, k[4]), k[5])


class Encoder(nnx.Module):
    """``layers`` EncoderLayers; with ``norm_first`` a final LayerNorm (pre-LN stacks need one)."""

    def __init__(self, layers: int, dim: int, heads: int, ffn: int, *, dropout: float = 0.0,
                 norm_first: bool = False, activation: Callable = nnx.gelu, eps: float = 1e-5, rngs: nnx.Rngs):
        self.layers = nnx.List([EncoderLayer(dim, heads, ffn, dropout=dropout, norm_first=norm_first,
                                             activation=activation, eps=eps, rngs=rngs) for _ in range(layers)])
        self.final_norm = nnx.LayerNorm(dim, epsilon=eps, rngs=rngs) if norm_first else None

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *, reset_tail: jax.Array | None = None,
                 key: jax.Array | None = None, return_all: bool = False):
        """x [B, L, D]; ``reset_tail`` [B, L, E]: after every layer the last E dims of the stream are set to it
        again (x should already end with it)."""
        outputs = []
        for layer, k in zip(self.layers, _keys(key, len(self.layers))):
            x = layer(x, mask, k)
            if reset_tail is not None:
                x = jnp.concatenate([x[..., :-reset_tail.shape[-1]], reset_tail], -1)
            outputs.append(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return (x, outputs) if return_all else x


class Decoder(nnx.Module):
    """``layers`` DecoderLayers; causal self-attention unless ``self_mask`` is given explicitly."""

    def __init__(self, layers: int, dim: int, heads: int, ffn: int, *, dropout: float = 0.0,
                 norm_first: bool = False, activation: Callable = nnx.gelu, eps: float = 1e-5, rngs: nnx.Rngs):
        self.layers = nnx.List([DecoderLayer(dim, heads, ffn, dropout=dropout, norm_first=norm_first,
                                             activation=activation, eps=eps, rngs=rngs) for _ in range(layers)])
        self.final_norm = nnx.LayerNorm(dim, epsilon=eps, rngs=rngs) if norm_first else None

    def __call__(self, x: jax.Array, memory: jax.Array, *, valid: jax.Array | None = None,
                 memory_valid: jax.Array | None = None, self_mask: jax.Array | None = None,
                 key: jax.Array | None = None) -> jax.Array:
        """x [B, T, D] (target tokens, shifted right), memory [B, S, D]; ``valid`` / ``memory_valid`` [B, T] / [B, S]
        mark real tokens. Default self-attention mask: causal AND the target's padding."""
        if self_mask is None:
            self_mask = combine_masks(causal_mask(x.shape[1]), None if valid is None else padding_mask(valid))
        cross_mask = None if memory_valid is None else padding_mask(memory_valid)
        for layer, k in zip(self.layers, _keys(key, len(self.layers))):
            x = layer(x, memory, self_mask, cross_mask, k)
        return x if self.final_norm is None else self.final_norm(x)
