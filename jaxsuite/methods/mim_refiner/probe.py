"""Frozen-feature evaluation of an encoder, per block: k-NN, linear probe and 1-shot classification.

``evaluate_encoder(eval_cfg, encoder, splits)`` is what every variant reports: k-NN of every block, then for the
evaluated block (``eval_cfg.block``: "final", or "best" = best k-NN on a validation part of the train split)
``knn_accuracy``, ``linear_accuracy`` and ``one_shot_accuracy`` on the test split.

Features are the CLS token of every block's output and of the final output; before every classifier they
are standardised with the train features' mean and std, then (k-NN, 1-shot) L2-normalised, as the paper's
k-NN protocol (k = 20, tau = 0.07, DINO's exp(sim / tau) weighted vote).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.mim_refiner.losses import l2_normalize
from jaxsuite.nn.vit import ViT


def block_features(encoder: ViT, images: jax.Array) -> jax.Array:
    """[depth + 1, B, D]: the CLS token after each block, then the final (normed) output's CLS token."""
    out = encoder(images)
    return jnp.stack([b[:, 0] for b in out.blocks] + [out.cls]).astype(jnp.float32)


@functools.partial(jax.jit, static_argnums=0)
def _block_features(graphdef, state, images):
    return block_features(nnx.merge(graphdef, state), images)


def extract(encoder: ViT, images: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """``block_features`` over a whole split in fixed-size chunks (the last one padded): one compile per
    encoder architecture and chunk size, shared by every call."""
    graphdef, state = nnx.split(encoder)
    fn = functools.partial(_block_features, graphdef)
    n = len(images)
    chunk = min(chunk, n)
    outs = []
    for i in range(0, n, chunk):
        part = images[i:i + chunk]
        pad = chunk - len(part)
        if pad:
            part = np.concatenate([part, np.zeros((pad,) + part.shape[1:], part.dtype)])
        outs.append(np.asarray(fn(state, part))[:, :chunk - pad])
    return np.concatenate(outs, axis=1)


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return [(x - mean) / std for x in (train, *others)]


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def _knn_chunk(train_f, train_y, test_f, k: int, tau: float, num_classes: int):
    sim = test_f @ train_f.T
    top_sim, top_i = jax.lax.top_k(sim, k)
    votes = jax.nn.one_hot(train_y[top_i], num_classes) * jnp.exp(top_sim / tau)[..., None]
    return jnp.argmax(votes.sum(1), axis=-1)


def knn_accuracy(train_f, train_y, test_f, test_y, *, k: int = 20, tau: float = 0.07, num_classes: int,
                 chunk: int = 1000) -> float:
    train_s, test_s = standardize(train_f, test_f)
    train_n, test_n = l2_normalize(jnp.asarray(train_s)), l2_normalize(jnp.asarray(test_s))
    k = min(k, len(train_f))
    preds = [np.asarray(_knn_chunk(train_n, jnp.asarray(train_y), test_n[i:i + chunk], k, tau, num_classes))
             for i in range(0, len(test_f), chunk)]
    return float(np.mean(np.concatenate(preds) == np.asarray(test_y)))


@functools.partial(jax.jit, static_argnames=("num_classes", "steps"))
def _logreg(x, y, num_classes: int, steps: int, lr: float, weight_decay: float):
    params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros((num_classes,))}
    tx = optax.adamw(optax.cosine_decay_schedule(lr, steps), weight_decay=weight_decay)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(x @ p["w"] + p["b"], y).mean()

    def body(_, carry):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    params, _ = jax.lax.fori_loop(0, steps, body, (params, tx.init(params)))
    return params


def linear_accuracy(train_f, train_y, test_f, test_y, *, num_classes: int, steps: int = 500, lr: float = 0.01,
                    weight_decay: float = 1e-4) -> float:
    """Multinomial logistic regression on standardised frozen features (full batch, AdamW, cosine)."""
    train_s, test_s = standardize(train_f, test_f)
    p = _logreg(jnp.asarray(train_s), jnp.asarray(train_y), num_classes, steps, lr, weight_decay)
    pred = np.asarray(jnp.argmax(jnp.asarray(test_s) @ p["w"] + p["b"], -1))
    return float(np.mean(pred == np.asarray(test_y)))


def one_shot_accuracy(train_f, train_y, test_f, test_y, *, num_classes: int, draws: int = 10, seed: int = 0) -> float:
    """One labelled train image per class -> nearest prototype by cosine on standardised features; the mean
    accuracy over ``draws`` random choices of the labelled images."""
    train_s, test_s = standardize(train_f, test_f)
    test_n = np.asarray(l2_normalize(jnp.asarray(test_s)))
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(draws):
        shots = np.array([rng.choice(np.flatnonzero(train_y == c)) for c in range(num_classes)])
        protos = np.asarray(l2_normalize(jnp.asarray(train_s[shots])))
        accs.append(np.mean(np.argmax(test_n @ protos.T, -1) == test_y))
    return float(np.mean(accs))


def evaluate_encoder(e, encoder: ViT, splits: dict, *, seed: int) -> dict:
    """``evaluate_features`` on the CLS features of every block of ``encoder`` for every split."""
    return evaluate_features(e, {name: extract(encoder, splits[name]["image"]) for name in splits}, splits, seed=seed)


def evaluate_features(e, features: dict[str, np.ndarray], splits: dict, *, seed: int) -> dict:
    """Features ``{"train", "val", "test"} -> [blocks, N, D]`` (the last block the final output) -> the metrics.

    Validation first, and every choice from it: ``extra/val_knn_block<i>`` for every block, the evaluated block
    (``e.block``: "final", or "best" = the best validation k-NN) and its ``val_knn_accuracy`` /
    ``val_linear_accuracy`` / ``val_one_shot_accuracy``. Then the test split, read once: ``extra/knn_block<i>``
    (the per-block figure) and the evaluated block's ``knn_accuracy`` / ``linear_accuracy`` /
    ``one_shot_accuracy``. The labelled bank of every probe is the train part (validation held out of it).
    ``e``: block, knn_k, knn_tau, linear_steps, one_shot_draws (the config's ``eval`` section)."""
    ytr = splits["train"]["label"]
    nc = int(ytr.max()) + 1
    train_f = features["train"]
    depth = len(train_f)
    if e.block not in ("final", "best"):
        raise ConfigError(f"config key 'eval.block' must be 'final' or 'best', got {e.block!r}")
    knn = functools.partial(knn_accuracy, k=e.knn_k, tau=e.knn_tau, num_classes=nc)
    out = {}

    def probes(split: str, block: int, prefix: str) -> None:
        f, y = features[split][block], splits[split]["label"]
        out[f"{prefix}knn_accuracy"] = knn(train_f[block], ytr, f, y)
        out[f"{prefix}linear_accuracy"] = linear_accuracy(train_f[block], ytr, f, y, num_classes=nc,
                                                          steps=e.linear_steps)
        out[f"{prefix}one_shot_accuracy"] = one_shot_accuracy(train_f[block], ytr, f, y, num_classes=nc,
                                                              draws=e.one_shot_draws, seed=seed)

    val_knn = [knn(train_f[i], ytr, features["val"][i], splits["val"]["label"]) for i in range(depth)]
    out.update({f"extra/val_knn_block{i}": v for i, v in enumerate(val_knn)})
    block = depth - 1 if e.block == "final" else int(np.argmax(val_knn))
    out["evaluated_block"] = float(block)
    probes("val", block, "val_")
    # the test split: read once, at the end of the run
    out.update({f"extra/knn_block{i}": knn(train_f[i], ytr, features["test"][i], splits["test"]["label"])
                for i in range(depth)})
    probes("test", block, "")
    return out
