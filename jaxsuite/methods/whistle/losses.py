"""Losses: CTC (Graves et al. 2006; optax.ctc_loss) and wav2vec 2.0's contrastive + diversity objective."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def valid_mask(lengths: jax.Array, size: int) -> jax.Array:
    return jnp.arange(size)[None] < lengths[:, None]


def ctc(logits, logit_len, labels, label_len) -> jax.Array:
    """Mean over utterances of -log p(labels | x) / |labels| (PyTorch CTCLoss's "mean", as CAT's AMTrainer
    applies it to the log-softmax of the encoder output)."""
    logit_pad = 1.0 - valid_mask(logit_len, logits.shape[1]).astype(jnp.float32)
    label_pad = 1.0 - valid_mask(label_len, labels.shape[1]).astype(jnp.float32)
    per_seq = optax.ctc_loss(logits, logit_pad, labels, label_pad, blank_id=0)
    return jnp.mean(per_seq / jnp.maximum(label_len, 1))


def span_mask(key, lengths, size: int, prob: float, span: int) -> jax.Array:
    """wav2vec 2.0's time mask: each valid frame starts a span of ``span`` masked frames with probability
    ``prob`` (spans may overlap); at least one frame per utterance is masked. -> [B, size] bool."""
    valid = valid_mask(lengths, size)
    starts = jax.random.bernoulli(key, prob, valid.shape) & valid
    first = jnp.zeros_like(starts).at[:, 0].set(True)
    starts = jnp.where(starts.any(1, keepdims=True), starts, first)
    covered = jnp.zeros(valid.shape, jnp.int32)
    for offset in range(span):
        covered = covered + jnp.pad(starts, ((0, 0), (offset, 0)))[:, :size]
    return (covered > 0) & valid


def sample_negatives(key, mask, count: int) -> jax.Array:
    """For every frame, ``count`` indices of *other* masked frames of the same utterance, uniformly
    (wav2vec 2.0 samples its distractors from the utterance's masked time steps). -> [B, T, count]."""
    b, t = mask.shape
    order = jnp.argsort(~mask, axis=1, stable=True)  # masked positions first, in time order
    masked = mask.sum(1)  # [B]
    rank = jnp.argsort(order, axis=1)  # each frame's place in that order
    draw = jnp.floor(jax.random.uniform(key, (b, t, count)) * jnp.maximum(masked - 1, 1)[:, None, None])
    draw = draw.astype(jnp.int32)
    draw = draw + (draw >= rank[..., None])  # skip the frame itself
    draw = jnp.minimum(draw, jnp.maximum(masked - 1, 0)[:, None, None])
    return jnp.take_along_axis(order[:, None, :], draw.reshape(b, 1, t * count), axis=2).reshape(b, t, count)


def contrastive(key, context, targets, mask, *, negatives: int, temperature: float) -> jax.Array:
    """L_m (wav2vec 2.0, Eq. 2): at each masked frame, -log of the softmax of cos(c_t, q_t) / kappa against
    ``negatives`` distractors q_~t from other masked frames; a distractor equal to q_t is excluded."""
    idx = sample_negatives(key, mask, negatives)
    neg = jax.vmap(lambda q, i: q[i])(targets, idx)  # [B, T, K, D]
    cand = jnp.concatenate([targets[:, :, None], neg], axis=2)
    cos = optax.cosine_similarity(context[:, :, None], cand, epsilon=1e-6) / temperature
    same = jnp.all(neg == targets[:, :, None], axis=-1)
    cos = cos.at[:, :, 1:].set(jnp.where(same, -jnp.inf, cos[:, :, 1:]))
    nll = -jax.nn.log_softmax(cos, axis=-1)[..., 0]
    return jnp.sum(nll * mask) / jnp.maximum(mask.sum(), 1)


def diversity(probs, valid) -> jax.Array:
    """L_d (wav2vec 2.0, Eq. 4): (GV - sum_g exp(H(mean softmax of group g over the batch's frames))) / GV."""
    groups, entries = probs.shape[-2:]
    weights = valid[..., None, None].astype(probs.dtype)
    mean = jnp.sum(probs * weights, axis=(0, 1)) / jnp.maximum(weights.sum(), 1)
    perplexity = jnp.exp(-jnp.sum(mean * jnp.log(mean + 1e-7), axis=-1)).sum()
    return (groups * entries - perplexity) / (groups * entries)
