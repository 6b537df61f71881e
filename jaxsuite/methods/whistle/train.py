"""Pure train steps and evaluation: ``init(cfg, rng, optim=..., units=...) -> TrainState``, ``train_step`` (= ``ctc_step``)
and ``ssl_step`` ``(state, batch) -> (state, metrics)``, ``evaluate(state, data) -> metrics``.

The optimiser is CAT's: Adam (betas 0.9, 0.98) with L2 weight decay 1e-6 and the Noam schedule (linear warm-up,
then inverse square root decay), plus global-norm clipping; fine-tuning uses a constant lr after a short warm-up.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.audio.features import spec_augment
from jaxsuite.core.train_state import TrainState, module_state
from jaxsuite.methods.whistle import decoding, losses
from jaxsuite.methods.whistle.model import CTCModel, SSLModel
from jaxsuite.nn.conformer import subsampled_lengths


def noam(peak_lr: float, warmup: int):
    """lr(s) = peak * min(s / warmup, sqrt(warmup / s)) (Vaswani et al. 2017's schedule, peak at ``warmup``)."""
    def schedule(step):
        s = jnp.maximum(step.astype(jnp.float32) + 1.0, 1.0)
        return peak_lr * jnp.minimum(s / warmup, jnp.sqrt(warmup / s))
    return schedule


def optimizer(optim) -> optax.GradientTransformation:
    if optim.schedule == "noam":
        lr = noam(optim.lr, optim.warmup)
    elif optim.schedule == "constant":
        lr = optax.linear_schedule(0.0, optim.lr, max(optim.warmup, 1))
    else:
        raise ValueError(f"config key 'optim.schedule' must be noam or constant, got {optim.schedule!r}")
    return optax.chain(optax.clip_by_global_norm(optim.clip_norm), optax.add_decayed_weights(optim.weight_decay),
                       optax.scale_by_adam(b1=optim.b1, b2=optim.b2), optax.scale_by_learning_rate(lr))


def init(cfg, rng, *, optim, units: int | None = None, ssl: bool = False, encoder_from=None,
         head_rows=None, head_from=None) -> TrainState:
    """A CTC model over ``units`` outputs (or the SSL model), optionally starting from a pre-trained encoder
    (``encoder_from``: (params, model_state) of a pre-trained state's ``encoder``) and an output layer whose
    row u is ``head_from``'s row ``head_rows[u]`` (-1 = keep the fresh row): Whistle's output-layer mapping."""
    k_model, k_state = jax.random.split(rng)
    model = SSLModel(cfg, rngs=nnx.Rngs(k_model)) if ssl else CTCModel(cfg, units, rngs=nnx.Rngs(k_model))
    state = TrainState.create(model, optimizer(optim), k_state)
    params, rest = state.params, state.model_state
    if encoder_from is not None:
        params = {**params, "encoder": encoder_from[0]}
        rest = {**rest, "encoder": encoder_from[1]}
    if head_from is not None:
        rows = jnp.asarray(head_rows)
        keep = (rows >= 0)
        kernel = jnp.where(keep[None], head_from["kernel"][:, jnp.maximum(rows, 0)], params["head"]["kernel"])
        bias = jnp.where(keep, head_from["bias"][jnp.maximum(rows, 0)], params["head"]["bias"])
        params = {**params, "head": {"kernel": kernel, "bias": bias}}
    return state.replace(params=params, model_state=rest, opt_state=state.tx.init(params))


# CAT's cv-lang10 SpecAugment: 2 frequency masks of up to 35 % of the bins, 10 time masks of up to 5 % of the frames
PAPER_SPEC_AUGMENT = {"freq_masks": 2, "freq_width": 0.35, "time_masks": 10, "time_width": 0.05}


def ctc_step(state: TrainState, batch: dict, *, spec=None, compute_dtype=None) -> tuple[TrainState, dict]:
    """One step of CTC training on a padded batch {feats, feat_len, labels, label_len}, SpecAugment on
    (``spec``: its settings, the paper's by default). ``train_step`` is this step with the paper's settings.
    ``compute_dtype`` (e.g. ``jnp.bfloat16``): mixed precision, the forward and backward pass in that dtype
    on a cast of the float32 parameters, the CTC loss and the update in float32."""
    spec = PAPER_SPEC_AUGMENT if spec is None else spec
    k_aug, k_drop = jax.random.split(state.step_key())
    feats = spec_augment(k_aug, batch["feats"], batch["feat_len"], **spec)

    def loss_fn(params):
        if compute_dtype is not None:
            params = jax.tree.map(lambda p: p.astype(compute_dtype), params)
        model = state.merge(params)
        x = feats if compute_dtype is None else feats.astype(compute_dtype)
        logits, out_len = model(x, batch["feat_len"], key=k_drop, train=True)
        loss = losses.ctc(logits.astype(jnp.float32), out_len, batch["labels"], batch["label_len"])
        rest = jax.tree.map(lambda a: a.astype(jnp.float32), module_state(model))
        return loss, rest

    (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads, model_state), {"loss": loss, "grad_norm": optax.global_norm(grads)}


train_step = ctc_step


def gumbel_temperature(step, ssl) -> jax.Array:
    """wav2vec 2.0's schedule: tau = max(start * decay^step, end)."""
    return jnp.maximum(ssl.tau_start * ssl.tau_decay ** step.astype(jnp.float32), ssl.tau_end)


def ssl_step(state: TrainState, batch: dict, *, ssl) -> tuple[TrainState, dict]:
    """One wav2vec 2.0 step: L = L_m + alpha L_d + beta ||z||^2 (Baevski et al. 2020, Eq. 1 and Sec. 4.2)."""
    k_mask, k_neg, k_model = jax.random.split(state.step_key(), 3)
    feats, feat_len = batch["feats"], batch["feat_len"]
    frames = -(-feats.shape[1] // 4)
    out_len = subsampled_lengths(feat_len)
    mask = losses.span_mask(k_mask, out_len, frames, ssl.mask_prob, ssl.mask_span)
    tau = gumbel_temperature(state.step, ssl)

    def loss_fn(params):
        model = state.merge(params)
        out = model(feats, feat_len, mask, key=k_model, tau=tau, train=True)
        valid = losses.valid_mask(out["lengths"], frames)
        contrast = losses.contrastive(k_neg, out["context"], out["targets"], mask, negatives=ssl.negatives,
                                      temperature=ssl.temperature)
        div = losses.diversity(out["probs"], valid)
        penalty = jnp.sum(jnp.mean(out["conv_features"] ** 2, -1) * valid) / jnp.maximum(valid.sum(), 1)
        total = contrast + ssl.diversity_weight * div + ssl.feature_penalty * penalty
        return total, (module_state(model), {"contrastive": contrast, "diversity": div, "feature_penalty": penalty})

    (loss, (model_state, parts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, **parts, "tau": tau, "masked_frac": mask.sum() / jnp.maximum(out_len.sum(), 1),
               "grad_norm": optax.global_norm(grads)}
    return state.apply_gradients(grads, model_state), metrics


@jax.jit
def log_probs(state: TrainState, feats, feat_len):
    """Per-frame log-probabilities over the units (inference mode) and the output lengths."""
    logits, out_len = state.merge()(feats, feat_len, train=False)
    return jax.nn.log_softmax(logits, -1), out_len


def predict(state: TrainState, arrays: dict, batch_size: int, unit_mask=None) -> list[np.ndarray]:
    """[T_i, units] log-probabilities per utterance (padded to whole batches: one compile); ``unit_mask`` [units]
    restricts the outputs to one language's units (renormalised)."""
    n = len(arrays["feats"])
    out = []
    for start in range(0, n, batch_size):
        feats, lens = arrays["feats"][start:start + batch_size], arrays["feat_len"][start:start + batch_size]
        m = len(feats)
        if m < batch_size:
            feats = np.concatenate([feats, np.zeros((batch_size - m, *feats.shape[1:]), feats.dtype)])
            lens = np.concatenate([lens, np.ones(batch_size - m, lens.dtype)])
        lp, out_len = jax.device_get(log_probs(state, feats, lens))
        if unit_mask is not None:
            lp = np.where(unit_mask[None, None], lp, -np.inf)
            lp = lp - np.logaddexp.reduce(lp, axis=-1, keepdims=True)
        out.extend(lp[i, :out_len[i]] for i in range(m))
    return out


def evaluate(state: TrainState, data: dict, batch_size: int = 64) -> dict[str, float]:
    """Token error rate of greedy CTC decoding against ``data``'s labels {feats, feat_len, labels, label_len}
    (PER for a phone model)."""
    lps = predict(state, data, batch_size)
    refs = [list(lab[:n]) for lab, n in zip(np.asarray(data["labels"]), np.asarray(data["label_len"]))]
    return {"error_rate": decoding.error_rate(refs, [decoding.greedy(lp) for lp in lps])}


def step_fn(kind: str, cfg):
    """The train step for ``kind`` (ctc or ssl) with the config's static settings bound."""
    if kind == "ssl":
        return functools.partial(ssl_step, ssl=cfg.ssl)
    dtype = {"float32": None, "bfloat16": jnp.bfloat16}.get(cfg.model.compute_dtype, "bad")
    if dtype == "bad":
        raise ValueError(f"config key 'model.compute_dtype' must be float32 or bfloat16, got "
                         f"{cfg.model.compute_dtype!r}")
    return functools.partial(ctc_step, spec=dict(cfg.spec_augment), compute_dtype=dtype)
