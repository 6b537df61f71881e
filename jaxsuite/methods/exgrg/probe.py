"""Linear evaluation of frozen embeddings: softmax regression (AdamW) trained in JAX for every
(split, weight decay) pair at once (vmap); the (weight decay, epoch) is picked on each split's validation nodes.

Each split's training and validation nodes are gathered into fixed-size index arrays (padded, with a mask),
so one step costs O((n_train + n_val) d) instead of O(N d); the classifier with the best validation accuracy
so far rides along in the scan and is scored on the test nodes once, at the end."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

WEIGHT_DECAYS = (1e-4, 1e-2)  # CCA-SSG's probe weight decays for Cora and CiteSeer


def _padded_index(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[S, N] bool -> ([S, M] node ids, [S, M] validity), M = the largest count."""
    width = max(int(masks.sum(1).max()), 1)
    idx = np.zeros((len(masks), width), np.int32)
    valid = np.zeros((len(masks), width), np.float32)
    for s, m in enumerate(masks):
        ids = np.flatnonzero(m)
        idx[s, :len(ids)], valid[s, :len(ids)] = ids, 1.0
    return idx, valid


@functools.partial(jax.jit, static_argnames=("num_classes", "steps"))
def _fit_eval(emb, labels, train, val, test, wds, *, num_classes: int, steps: int = 300, lr: float = 0.01):
    """Per split (leading axis of the (index, validity) pairs): (test accuracy, validation accuracy) at the
    (weight decay, epoch) with the best validation accuracy -- the model selection CCA-SSG and BGRL use."""
    safe = jnp.maximum(labels, 0)

    def one(tr, va, te, wd):
        (tr_i, tr_m), (va_i, va_m), (te_i, te_m) = tr, va, te
        x_tr, y_tr, x_va, y_va = emb[tr_i], safe[tr_i], emb[va_i], labels[va_i]
        w0 = jnp.zeros((emb.shape[1], num_classes)), jnp.zeros((num_classes,))
        opt = optax.adamw(lr, weight_decay=wd)

        def loss(w):
            ce = optax.softmax_cross_entropy_with_integer_labels(x_tr @ w[0] + w[1], y_tr)
            return jnp.sum(ce * tr_m) / jnp.maximum(tr_m.sum(), 1)

        def step(carry, _):
            w, s, best_w, best_acc = carry
            u, s = opt.update(jax.grad(loss)(w), s, w)
            w = optax.apply_updates(w, u)
            acc = jnp.sum((jnp.argmax(x_va @ w[0] + w[1], -1) == y_va) * va_m) / jnp.maximum(va_m.sum(), 1)
            better = acc > best_acc  # the first epoch reaching the best validation accuracy
            best_w = jax.tree.map(lambda b, c: jnp.where(better, c, b), best_w, w)
            return (w, s, best_w, jnp.maximum(acc, best_acc)), None

        (_, _, best_w, best_acc), _ = jax.lax.scan(step, (w0, opt.init(w0), w0, -1.0), None, length=steps)
        correct = jnp.argmax(emb[te_i] @ best_w[0] + best_w[1], -1) == labels[te_i]
        return jnp.sum(correct * te_m) / jnp.maximum(te_m.sum(), 1), best_acc

    per_wd = jax.vmap(lambda a, b, c: jax.vmap(lambda wd: one(a, b, c, wd))(wds))(train, val, test)  # [S, W]
    te, va = per_wd
    pick = jnp.argmax(va, -1)[:, None]  # ties: the smaller weight decay
    return jnp.take_along_axis(te, pick, -1)[:, 0], jnp.take_along_axis(va, pick, -1)[:, 0]


def random_splits(labels: np.ndarray, count: int = 10, fractions=(0.1, 0.1), seed: int = 0):
    """``count`` random train/val/test splits (10/10/80 by default) of the labelled nodes."""
    labelled = np.flatnonzero(labels >= 0)
    masks = np.zeros((3, count, len(labels)), bool)
    for i in range(count):
        perm = np.random.default_rng([seed, i]).permutation(labelled)
        a = int(round(fractions[0] * len(perm)))
        b = a + int(round(fractions[1] * len(perm)))
        masks[0, i, perm[:a]], masks[1, i, perm[a:b]], masks[2, i, perm[b:]] = True, True, True
    return masks


def linear_probe(emb, labels, train_mask, val_mask, test_mask, *, num_classes: int, num_random_splits: int = 10):
    """Test accuracy on the public split and mean / std over random 10/10/80 splits, weight decay and epoch
    chosen on validation accuracy per split."""
    rs = random_splits(np.asarray(labels), num_random_splits)
    splits = [np.concatenate([np.asarray(m)[None], r]) for m, r in zip((train_mask, val_mask, test_mask), rs)]
    tr, va, te = (tuple(jnp.asarray(a) for a in _padded_index(m)) for m in splits)
    test, val = _fit_eval(jnp.asarray(emb, jnp.float32), jnp.asarray(labels), tr, va, te, jnp.asarray(WEIGHT_DECAYS),
                          num_classes=num_classes)
    test, val = np.asarray(test), np.asarray(val)
    return {"test_accuracy": float(test[0]), "val_accuracy": float(val[0]),
            "random_split_accuracy": float(test[1:].mean()), "random_split_std": float(test[1:].std())}


def validation_accuracy(emb, labels, train_mask, val_mask, *, num_classes: int) -> float:
    """The public split's validation accuracy of the same probe (weight decay and epoch picked on it), for model
    selection: the test nodes are not read (the validation nodes stand in for them)."""
    tr, va = (tuple(jnp.asarray(a) for a in _padded_index(np.asarray(m)[None])) for m in (train_mask, val_mask))
    _, val = _fit_eval(jnp.asarray(emb, jnp.float32), jnp.asarray(labels), tr, va, va, jnp.asarray(WEIGHT_DECAYS),
                       num_classes=num_classes)
    return float(np.asarray(val)[0])
