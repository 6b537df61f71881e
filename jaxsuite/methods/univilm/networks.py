"""UniVL's four components (Luo et al. 2020, section 3.1; official modules/module_{bert,visual,cross,decoder}.py),
post-LN BERT-style Transformers (jaxsuite/nn/transformer.py), embeddings initialised N(0, 0.02):

* text encoder: word + position + token-type embeddings, LayerNorm, dropout, ``text_layers`` layers;
* video encoder: the frame features LayerNorm'ed (``NormalizeVideo``), then Linear -> + positions -> LayerNorm,
  dropout, ``video_layers`` layers;
* cross encoder: [text; video] with type embeddings 0 / 1 and positions, ``cross_layers`` layers; pooled output
  tanh(Linear(first token));
* decoder: masked self-attention + cross-attention to the cross encoder's output, ``decoder_layers`` layers; its word
  and position embeddings are the text encoder's, and its output layer is the transposed word embedding (+ bias).

Heads: the masked-language-model head (transform + tied word embedding), the masked-frame head (transform, then the
transposed video projection back to the feature size), and ``similarity_dense`` (Linear -> 1) on the pooled cross
output (the alignment score). The similarities: :meth:`UniVL.joint_similarity` (mean-pooled encoder outputs, text
without [CLS]; cosine or plain dot product) and :meth:`UniVL.cross_similarity` (every text with every video
through the cross encoder).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsuite.nn.transformer import Decoder, Encoder, padding_mask

_EPS = 1e-12  # BERT's LayerNorm epsilon
_init = nnx.initializers.normal(0.02)


def _split(key, n):
    return [None] * n if key is None else list(jax.random.split(key, n))


class _Embedded(nnx.Module):
    """LayerNorm then dropout of a sum of embeddings (BERT's embedding block)."""

    def __init__(self, dim: int, dropout: float, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, epsilon=_EPS, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, key):
        return self.dropout(self.norm(x), deterministic=key is None, rngs=key)


class _Transform(nnx.Module):
    """BERT's prediction-head transform: dense -> GELU -> LayerNorm."""

    def __init__(self, dim: int, rngs: nnx.Rngs):
        self.dense = nnx.Linear(dim, dim, kernel_init=_init, rngs=rngs)
        self.norm = nnx.LayerNorm(dim, epsilon=_EPS, rngs=rngs)

    def __call__(self, x):
        return self.norm(nnx.gelu(self.dense(x), approximate=False))


class UniVL(nnx.Module):
    def __init__(self, *, vocab_size: int, video_dim: int, max_words: int, max_frames: int, dim: int, heads: int,
                 ffn: int, text_layers: int, video_layers: int, cross_layers: int, decoder_layers: int,
                 dropout: float, rngs: nnx.Rngs):
        stack = {"dim": dim, "heads": heads, "ffn": ffn, "dropout": dropout, "eps": _EPS, "rngs": rngs}
        # text encoder
        self.word = nnx.Embed(vocab_size, dim, embedding_init=_init, rngs=rngs)
        self.position = nnx.Embed(max_words, dim, embedding_init=_init, rngs=rngs)
        self.token_type = nnx.Embed(2, dim, embedding_init=_init, rngs=rngs)
        self.text_embed = _Embedded(dim, dropout, rngs)
        self.text_encoder = Encoder(text_layers, **stack)
        # video encoder
        self.normalize_video = nnx.LayerNorm(video_dim, epsilon=_EPS, rngs=rngs)
        self.video_proj = nnx.Linear(video_dim, dim, kernel_init=_init, rngs=rngs)
        self.video_position = nnx.Embed(max_frames, dim, embedding_init=_init, rngs=rngs)
        self.video_embed = _Embedded(dim, dropout, rngs)
        self.video_encoder = Encoder(video_layers, **stack)
        # cross encoder
        self.cross_type = nnx.Embed(2, dim, embedding_init=_init, rngs=rngs)
        self.cross_position = nnx.Embed(max_words + max_frames, dim, embedding_init=_init, rngs=rngs)
        self.cross_embed = _Embedded(dim, dropout, rngs)
        self.cross_encoder = Encoder(cross_layers, **stack)
        self.pooler = nnx.Linear(dim, dim, kernel_init=_init, rngs=rngs)
        self.similarity_dense = nnx.Linear(dim, 1, kernel_init=_init, rngs=rngs)
        # decoder (embeddings and output layer tied to self.word / self.position)
        self.decoder_embed = _Embedded(dim, dropout, rngs)
        self.decoder = Decoder(decoder_layers, **stack)
        self.decoder_head = _Transform(dim, rngs)
        self.decoder_bias = nnx.Param(jnp.zeros((vocab_size,)))
        # pre-training heads
        self.mlm_head = _Transform(dim, rngs)
        self.mlm_bias = nnx.Param(jnp.zeros((vocab_size,)))
        self.mfm_head = _Transform(dim, rngs)
        self.mfm_bias = nnx.Param(jnp.zeros((video_dim,)))

    # --- encoders -------------------------------------------------------------------------------------------
    def encode_text(self, ids, valid, key=None):
        k1, k2 = _split(key, 2)
        pos = jnp.arange(ids.shape[1])
        x = self.word(ids) + self.position(pos)[None] + self.token_type(jnp.zeros_like(ids))
        return self.text_encoder(self.text_embed(x, k1), padding_mask(valid), key=k2)

    def encode_video(self, video, valid, key=None):
        """``video``: features already passed through :attr:`normalize_video`."""
        k1, k2 = _split(key, 2)
        x = self.video_proj(video) + self.video_position(jnp.arange(video.shape[1]))[None]
        return self.video_encoder(self.video_embed(x, k1), padding_mask(valid), key=k2)

    def encode(self, ids, text_valid, video, video_valid, key=None):
        """(text output [B, L, D], video output [B, F, D]) from raw (un-normalised) frame features."""
        k1, k2 = _split(key, 2)
        return (self.encode_text(ids, text_valid, k1),
                self.encode_video(self.normalize_video(video), video_valid, k2))

    def cross(self, text_out, video_out, text_valid, video_valid, key=None):
        """(cross output [B, L + F, D], pooled [B, D], joint valid [B, L + F])."""
        k1, k2 = _split(key, 2)
        x = jnp.concatenate([text_out, video_out], 1)
        valid = jnp.concatenate([text_valid, video_valid], 1)
        types = jnp.concatenate([jnp.zeros(text_valid.shape, jnp.int32), jnp.ones(video_valid.shape, jnp.int32)], 1)
        x = x + self.cross_type(types) + self.cross_position(jnp.arange(x.shape[1]))[None]
        out = self.cross_encoder(self.cross_embed(x, k1), padding_mask(valid), key=k2)
        return out, jnp.tanh(self.pooler(out[:, 0])), valid

    def decode(self, caption_in, caption_valid, memory, memory_valid, key=None):
        """Logits [B, T, vocab] of the next token at every position of ``caption_in`` ([CLS] + words)."""
        k1, k2 = _split(key, 2)
        x = self.word(caption_in) + self.position(jnp.arange(caption_in.shape[1]))[None]
        h = self.decoder(self.decoder_embed(x, k1), memory, valid=caption_valid, memory_valid=memory_valid, key=k2)
        return self.decoder_head(h) @ self.word.embedding.value.T + self.decoder_bias.value

    # --- heads ----------------------------------------------------------------------------------------------
    def mlm_logits(self, text_cross_out):
        return self.mlm_head(text_cross_out) @ self.word.embedding.value.T + self.mlm_bias.value

    def mfm_predict(self, video_cross_out):
        """[B, F, video_dim]: the transposed video projection applied to the transformed cross output."""
        return self.mfm_head(video_cross_out) @ self.video_proj.kernel.value.T + self.mfm_bias.value

    # --- similarities ---------------------------------------------------------------------------------------
    @staticmethod
    def joint_similarity(text_out, video_out, text_valid, video_valid, *, normalise: bool):
        """[B_text, B_video]: mean-pooled text (without [CLS]) against mean-pooled video; cosine if ``normalise``
        (fine-tuning), the plain dot product otherwise (MIL-NCE pre-training)."""
        tmask = jnp.asarray(text_valid).astype(text_out.dtype).at[:, 0].set(0.0)[..., None]
        t = (text_out * tmask).sum(1) / jnp.maximum(tmask.sum(1), 1.0)
        vmask = jnp.asarray(video_valid).astype(video_out.dtype)[..., None]
        v = (video_out * vmask).sum(1) / jnp.maximum(vmask.sum(1), 1.0)
        if normalise:
            t = t / jnp.maximum(jnp.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
            v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
        return t @ v.T

    def cross_similarity(self, text_out, video_out, text_valid, video_valid, key=None):
        """[B_text, B_video]: ``similarity_dense(pooled cross output)`` of every (text, video) pair."""
        bt, bv = text_out.shape[0], video_out.shape[0]
        rep_t = lambda x: jnp.repeat(x, bv, axis=0)  # row i * bv + j = text i
        rep_v = lambda x: jnp.tile(x, (bt,) + (1,) * (x.ndim - 1))  # ... with video j
        _, pooled, _ = self.cross(rep_t(text_out), rep_v(video_out), rep_t(text_valid), rep_v(video_valid), key)
        return self.similarity_dense(pooled)[:, 0].reshape(bt, bv)


def build(config, rngs: nnx.Rngs, vocab_size: int) -> UniVL:
    m, d = config.model, config.data
    return UniVL(vocab_size=vocab_size, video_dim=int(d.feature_dim), max_words=int(d.max_words),
                 max_frames=int(d.max_frames), dim=m.dim, heads=m.heads, ffn=m.ffn, text_layers=m.text_layers,
                 video_layers=m.video_layers, cross_layers=m.cross_layers, decoder_layers=m.decoder_layers,
                 dropout=m.dropout, rngs=rngs)
