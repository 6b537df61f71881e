"""Pure init / train steps / evaluation for UniVL: pre-training (stages I and II), the three fine-tunings.

Phases, each a fresh optimiser on the previous phase's parameters (as the official code runs main_pretrain.py
twice, then main_task_*.py):

* ``stage1`` -- StagedP stage I: the joint MIL-NCE loss on the two encoders; everything else frozen
  (``optax.set_to_zero``), as the official stage-I model has no cross encoder or decoder;
* ``stage2`` -- the five objectives (weights in ``state.aux["weights"]``: joint, cmlm, cmfm, align, decoder) with
  EnhancedV (``state.aux["enhance"]``): :func:`pretrain_terms`. The weights and the EnhancedV probability are
  arrays, so every ablation runs the same compiled step;
* ``retrieval`` -- FT-Joint: cosine of mean-pooled encoder features, max-margin ranking;
* ``align`` -- FT-Align: cross-encoder scores, softmax over the videos (``CrossEn``, the official stage-two loss);
* ``caption`` -- the decoder's cross entropy, video only (the text input is ``[CLS] [SEP]``).

Optimiser (official BertAdam, modules/optimization.py, as optax): Adam, linear warm-up over ``warmup`` of the
steps then linear decay to 0, weight decay 0.01 except biases and LayerNorm, gradients clipped to norm 1; the text
branch's learning rate x ``text_lr_mult`` (the official ``coef_lr``) by ``optax.multi_transform``.

``init(config, rng) -> state`` (stage II), ``train_step(state, batch) -> (state, metrics)`` (stage II, our
WordPiece's special ids), ``evaluate(state, data, codec=...) -> metrics``.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.univilm import decoding, losses, masking, metrics, networks

PRETRAIN_LOSSES = ("joint", "cmlm", "cmfm", "align", "decoder")
PHASES = ("stage1", "stage2", "retrieval", "align", "caption")
TEXT_BRANCH = ("word", "position", "token_type", "text_embed", "text_encoder")
ENCODERS = TEXT_BRANCH + ("normalize_video", "video_proj", "video_position", "video_embed", "video_encoder")


class Specials(NamedTuple):
    """Special token ids (our WordPiece's defaults; bert-base-uncased: 0, 100, 101, 102, 103)."""
    pad: int = 0
    unk: int = 1
    cls: int = 2
    sep: int = 3
    mask: int = 4


def specials_of(codec) -> Specials:
    return Specials(codec.pad, codec.unk, codec.cls, codec.sep, codec.mask)


def _top(path) -> str:
    return str(getattr(path[0], "key", path[0]))


def _no_decay(path) -> bool:
    last = str(getattr(path[-1], "key", path[-1]))
    return last.endswith("bias") or last == "scale"


@functools.lru_cache(maxsize=None)
def _optimizer(lr: float, steps: int, warmup: float, weight_decay: float, clip: float, text_lr_mult: float,
               encoders_only: bool) -> optax.GradientTransformation:
    warm = max(int(round(warmup * steps)), 1)
    schedule = optax.join_schedules([optax.linear_schedule(0.0, lr, warm),
                                     optax.linear_schedule(lr, 0.0, max(steps - warm, 1))], [warm])

    def adam(mult):
        decay_mask = lambda params: jax.tree_util.tree_map_with_path(lambda p, _: not _no_decay(p), params)
        return optax.adamw(lambda count: mult * schedule(count), b1=0.9, b2=0.999, eps=1e-6,
                           weight_decay=weight_decay, mask=decay_mask)

    def label(path, _):
        top = _top(path)
        if encoders_only and top not in ENCODERS:
            return "frozen"
        return "text" if top in TEXT_BRANCH else "rest"

    labels = lambda params: jax.tree_util.tree_map_with_path(label, params)
    return optax.chain(optax.clip_by_global_norm(clip),
                       optax.multi_transform({"text": adam(text_lr_mult), "rest": adam(1.0),
                                              "frozen": optax.set_to_zero()}, labels))


def phase_settings(config, phase: str) -> dict:
    """Optimiser settings and step count of a phase from the config's ``pretrain`` / ``finetune`` sections."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} (known: {PHASES})")
    if phase in ("stage1", "stage2"):
        p = config.pretrain
        steps = p.stage1_steps if phase == "stage1" else p.stage2_steps
        return {"lr": float(p.lr), "steps": int(steps), "warmup": float(p.warmup),
                "weight_decay": float(p.weight_decay), "clip": float(p.grad_clip),
                "text_lr_mult": float(p.text_lr_mult),
                # stage I, and stage II of the joint-only variant, train the encoders alone
                "encoders_only": phase == "stage1" or p.second_stage == "joint"}
    f = config.finetune
    return {"lr": float(f.lr), "steps": int(f[f"{phase}_steps"]), "warmup": float(f.warmup),
            "weight_decay": float(f.weight_decay), "clip": float(f.grad_clip), "text_lr_mult": 1.0,
            "encoders_only": False}


def pretrain_aux(config) -> dict:
    p = config.pretrain
    return {"weights": jnp.asarray([float(p.weights[k]) for k in PRETRAIN_LOSSES], jnp.float32),
            "enhance": jnp.asarray(float(p.enhance_v), jnp.float32)}


def init_phase(config, phase: str, rng: jax.Array, *, vocab_size: int | None = None, params=None) -> TrainState:
    """A phase's state: a fresh model (``params`` None) or the given parameters, the phase's optimiser."""
    model_key, state_key = jax.random.split(rng)
    model = networks.build(config, nnx.Rngs(params=model_key), vocab_size or int(config.data.vocab_size))
    tx = _optimizer(**phase_settings(config, phase))
    state = TrainState.create(model, tx, state_key)
    if params is not None:  # a copy: the phase's step donates its state, and other phases start from params too
        params = jax.tree.map(jnp.copy, params)
        state = state.replace(params=params, opt_state=tx.init(params))
    if phase in ("stage1", "stage2"):
        state = state.replace(aux=pretrain_aux(config))
    return state


def init(config, rng: jax.Array) -> TrainState:
    """A fresh model with the stage-II pre-training optimiser."""
    return init_phase(config, "stage2", rng)


def _flat(x):
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def pretrain_terms(model, batch: dict, key, enhance, *, stage: int, sp: Specials, align_all_clips: bool,
                   joint_temperature: float = 0.0, mil_anchors: str = "middle") -> dict:
    """The pre-training losses of one batch of videos (official UniVL.forward with do_pretrain).

    ``batch``: ``video`` [B, C, F, D], ``video_valid`` [B, C, F], ``text_ids`` / ``text_valid`` [B, C, L]: C
    consecutive clips of each of B videos. The joint loss (MIL-NCE, C positives) is on the encoders' outputs of the
    (EnhancedV-dropped) text; CMLM / CMFM on the cross encoder over the masked text and masked frames; the decoder
    reconstructs the full transcript from that cross output (its input masked 15% as the official loader does);
    the alignment (CrossEn over cross-encoder scores) on the masked encoders' outputs, over every clip
    (``align_all_clips``) or the middle clip of each video. ``joint_temperature`` 0 is the official joint similarity
    (plain dot product of the mean-pooled outputs); > 0 uses their cosine / temperature instead. ``mil_anchors``:
    the MIL-NCE anchors, the middle clip of each video (official) or every clip.
    """
    b, c = batch["text_ids"].shape[:2]
    k = jax.random.split(key, 9)
    ids, tvalid = batch["text_ids"], batch["text_valid"]
    caption_ids, caption_valid = _flat(ids), _flat(tvalid)
    if stage == 2:
        ids, tvalid = masking.enhance_video(k[0], ids, tvalid, enhance, cls_id=sp.cls, sep_id=sp.sep)
    ids, tvalid = _flat(ids), _flat(tvalid)
    video, vvalid = _flat(batch["video"]), _flat(batch["video_valid"])
    seq, vis = model.encode(ids, tvalid, video, vvalid, k[1])
    sim = model.joint_similarity(seq, vis, tvalid, vvalid, normalise=joint_temperature > 0)
    terms = {"joint": losses.mil_nce(sim / (joint_temperature or 1.0), c, mil_anchors)}
    if stage == 1:
        return terms
    vocab = model.word.num_embeddings
    masked_ids, mlm_labels = masking.mask_tokens(k[2], ids, tvalid, vocab_size=vocab, mask_id=sp.mask)
    masked_video, masked_frames = masking.mask_frames(k[3], video, vvalid)
    seq_m, vis_m = model.encode(masked_ids, tvalid, masked_video, vvalid, k[4])
    cross_out, _, cross_valid = model.cross(seq_m, vis_m, tvalid, vvalid, k[5])
    length = ids.shape[1]
    terms["cmlm"] = losses.masked_lm(model.mlm_logits(cross_out[:, :length]), mlm_labels)
    terms["cmfm"] = losses.masked_frame_nce(model.mfm_predict(cross_out[:, length:]), model.normalize_video(video),
                                            vvalid, masked_frames)
    caption_in, in_valid, target = masking.caption_io(caption_ids, caption_valid, sep_id=sp.sep, pad_id=sp.pad)
    caption_in, _ = masking.mask_tokens(k[6], caption_in, in_valid, vocab_size=vocab, mask_id=sp.mask)
    terms["decoder"] = losses.caption_nll(model.decode(caption_in, in_valid, cross_out, cross_valid, k[7]),
                                          target, in_valid)
    rows = jnp.arange(b * c) if align_all_clips else jnp.arange(b) * c + c // 2
    terms["align"] = losses.cross_entropy_retrieval(
        model.cross_similarity(seq_m[rows], vis_m[rows], tvalid[rows], vvalid[rows], k[8]))
    return terms


def _finish(state: TrainState, grads, loss, terms: dict):
    out = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}, "grad_norm": optax.global_norm(grads)}
    return state.apply_gradients(grads, state.model_state), out


@functools.lru_cache(maxsize=None)
def pretrain_step_for(stage: int, sp: Specials = Specials(), align_all_clips: bool = False,  # noqa: B008 -- an immutable default
                      joint_temperature: float = 0.0, mil_anchors: str = "middle"):
    def train_step(state: TrainState, batch: dict):
        def loss_fn(params):
            model = state.merge(params)
            terms = pretrain_terms(model, batch, state.step_key(), state.aux["enhance"], stage=stage, sp=sp,
                                   align_all_clips=align_all_clips, joint_temperature=joint_temperature,
                                   mil_anchors=mil_anchors)
            weights = state.aux["weights"]
            loss = sum(weights[i] * terms[name] for i, name in enumerate(PRETRAIN_LOSSES) if name in terms)
            return loss, terms

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return _finish(state, grads, loss, terms)

    return train_step


def video_only_text(batch: int, sp: Specials):
    """The caption task's text input: ``[CLS] [SEP]`` per example ([B, 2] ids and valid)."""
    ids = jnp.broadcast_to(jnp.asarray([sp.cls, sp.sep], jnp.int32), (batch, 2))
    return ids, jnp.ones((batch, 2), bool)


def caption_logits(model, batch: dict, sp: Specials, key=None):
    """Decoder logits for the caption task (video only), with the decoder input / target / valid."""
    k = [None] * 3 if key is None else jax.random.split(key, 3)
    ids, tvalid = video_only_text(batch["video"].shape[0], sp)
    seq, vis = model.encode(ids, tvalid, batch["video"], batch["video_valid"], k[0])
    cross_out, _, cross_valid = model.cross(seq, vis, tvalid, batch["video_valid"], k[1])
    caption_in, in_valid, target = masking.caption_io(batch["text_ids"], batch["text_valid"], sep_id=sp.sep,
                                                      pad_id=sp.pad)
    return model.decode(caption_in, in_valid, cross_out, cross_valid, k[2]), target, in_valid


@functools.lru_cache(maxsize=None)
def finetune_step_for(task: str, sp: Specials = Specials(), margin: float = 0.1):  # noqa: B008 -- an immutable default
    """``task``: ``retrieval`` (FT-Joint), ``align`` (FT-Align) or ``caption``; batch: ``video`` [B, F, D],
    ``video_valid``, ``text_ids`` / ``text_valid`` [B, L] (the captions)."""
    if task not in ("retrieval", "align", "caption"):
        raise ValueError(f"unknown fine-tuning task {task!r}")

    def train_step(state: TrainState, batch: dict):
        def loss_fn(params):
            model = state.merge(params)
            key = state.step_key()
            if task == "caption":
                logits, target, valid = caption_logits(model, batch, sp, key)
                return losses.caption_nll(logits, target, valid)
            k1, k2 = jax.random.split(key)
            ids, tvalid, vvalid = batch["text_ids"], batch["text_valid"], batch["video_valid"]
            seq, vis = model.encode(ids, tvalid, batch["video"], vvalid, k1)
            if task == "retrieval":
                sim = model.joint_similarity(seq, vis, tvalid, vvalid, normalise=True)
                return losses.max_margin_ranking(sim, margin=margin)
            return losses.cross_entropy_retrieval(model.cross_similarity(seq, vis, tvalid, vvalid, k2))

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return _finish(state, grads, loss, {})

    return train_step


# the contract's train step: stage-II pre-training, our WordPiece's special ids, the middle clip aligned
train_step = pretrain_step_for(2)


# --- evaluation -----------------------------------------------------------------------------------------------
@jax.jit
def _encode(state: TrainState, ids, tvalid, video, vvalid):
    return state.merge().encode(ids, tvalid, video, vvalid)


@jax.jit
def _cross_scores(state: TrainState, seq, tvalid, vis, vvalid):
    return state.merge().cross_similarity(seq, vis, tvalid, vvalid)


@functools.partial(jax.jit, static_argnames=("beam", "max_len", "sp"))
def _generate(state: TrainState, video, vvalid, *, beam: int, max_len: int, sp: Specials):
    model = state.merge()
    ids, tvalid = video_only_text(video.shape[0], sp)
    seq, vis = model.encode(ids, tvalid, video, vvalid)
    cross_out, _, cross_valid = model.cross(seq, vis, tvalid, vvalid)
    return decoding.beam_search(model, cross_out, cross_valid, beam=beam, max_len=max_len, cls_id=sp.cls,
                                sep_id=sp.sep, pad_id=sp.pad)


def _chunks(n: int, size: int):
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _padded(x: np.ndarray, size: int) -> np.ndarray:
    return x if len(x) == size else np.concatenate([x, np.repeat(x[-1:], size - len(x), 0)])


def encode_all(state: TrainState, data: dict, batch_size: int = 256):
    """Encoder outputs of every (caption, clip) of ``data`` (batches padded to one compiled shape)."""
    n = len(data["text_ids"])
    size = min(batch_size, n)
    seqs, viss = [], []
    for s, e in _chunks(n, size):
        seq, vis = _encode(state, *(_padded(data[k][s:e], size)
                                    for k in ("text_ids", "text_valid", "video", "video_valid")))
        seqs.append(np.asarray(seq)[:e - s])
        viss.append(np.asarray(vis)[:e - s])
    return np.concatenate(seqs), np.concatenate(viss)


def joint_scores(state: TrainState, data: dict, batch_size: int = 256) -> np.ndarray:
    """[texts, videos] FT-Joint similarities (cosine of mean-pooled encoder outputs)."""
    seq, vis = encode_all(state, data, batch_size)
    return np.asarray(networks.UniVL.joint_similarity(jnp.asarray(seq), jnp.asarray(vis), data["text_valid"],
                                                      data["video_valid"], normalise=True))


def align_scores(state: TrainState, data: dict, batch_size: int = 256, texts_per_call: int = 8) -> np.ndarray:
    """[texts, videos] FT-Align scores: every caption with every clip through the cross encoder."""
    seq, vis = encode_all(state, data, batch_size)
    vis, vvalid = jnp.asarray(vis), jnp.asarray(data["video_valid"])  # on the device once, not once per call
    n = len(seq)
    rows = []
    for s, e in _chunks(n, texts_per_call):
        scores = _cross_scores(state, _padded(seq[s:e], texts_per_call),
                               _padded(data["text_valid"][s:e], texts_per_call), vis, vvalid)
        rows.append(np.asarray(scores)[:e - s])
    return np.concatenate(rows)


def generate_captions(state: TrainState, data: dict, codec, *, beam: int, max_len: int,
                      batch_size: int = 256) -> list[str]:
    n = len(data["video"])
    size = min(batch_size, n)
    out = []
    for s, e in _chunks(n, size):
        ids = _generate(state, _padded(data["video"][s:e], size), _padded(data["video_valid"][s:e], size),
                        beam=beam, max_len=max_len, sp=specials_of(codec))
        out.extend(codec.decode(np.asarray(ids)[:e - s]))
    return out


def evaluate(state: TrainState, data: dict, *, codec=None, task: str = "retrieval", beam: int = 5,
             max_len: int = 20, batch_size: int = 256) -> dict[str, float]:
    """Test metrics of one fine-tuned state over ``data`` (arrays of :mod:`data`, plus ``captions`` for the
    caption task): ``retrieval`` / ``align`` -> r1, r5, r10, medr; ``caption`` -> bleu4, rouge_l, cider."""
    if task == "retrieval":
        return metrics.retrieval_metrics(joint_scores(state, data, batch_size))
    if task == "align":
        return metrics.retrieval_metrics(align_scores(state, data, batch_size))
    if task == "caption":
        hyps = generate_captions(state, data, codec, beam=beam, max_len=max_len, batch_size=batch_size)
        return metrics.caption_metrics(hyps, [[c] for c in data["captions"]])
    raise ValueError(f"unknown task {task!r}")


def param_count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))
