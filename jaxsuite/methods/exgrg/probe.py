"""Linear evaluation of frozen embeddings: softmax regression (AdamW) trained in JAX for every
(split, weight decay) pair at once (vmap); the (weight decay, epoch) is picked on each split's validation nodes."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

WEIGHT_DECAYS = (1e-4, 1e-2)


@functools.partial(jax.jit, static_argnames=("num_classes", "steps", "standardise"))
def _fit_eval(emb, labels, train, val, test, wds, *, num_classes: int, steps: int = 300, lr: float = 0.01,
              standardise: bool = False):
    """Per split (leading axis of the masks): the test accuracy at the (weight decay, epoch) with the best
    validation accuracy -- the model selection CCA-SSG and BGRL use for their linear probes."""
    if standardise:
        emb = (emb - emb.mean(0)) / (emb.std(0) + 1e-8)
    safe = jnp.maximum(labels, 0)

    def one(train_m, val_m, test_m, wd):
        w0 = jnp.zeros((emb.shape[1], num_classes)), jnp.zeros((num_classes,))
        opt = optax.adamw(lr, weight_decay=wd)

        def loss(w):
            ce = optax.softmax_cross_entropy_with_integer_labels(emb @ w[0] + w[1], safe)
            return jnp.sum(ce * train_m) / jnp.maximum(train_m.sum(), 1)

        def step(carry, _):
            w, s = carry
            u, s = opt.update(jax.grad(loss)(w), s, w)
            w = optax.apply_updates(w, u)
            correct = jnp.argmax(emb @ w[0] + w[1], -1) == labels
            accs = (jnp.sum(correct * val_m) / jnp.maximum(val_m.sum(), 1),
                    jnp.sum(correct * test_m) / jnp.maximum(test_m.sum(), 1))
            return (w, s), accs

        _, (va, te) = jax.lax.scan(step, (w0, opt.init(w0)), None, length=steps)
        return va, te

    va, te = jax.vmap(lambda a, b, c: jax.vmap(lambda wd: one(a, b, c, wd))(wds))(train, val, test)  # [S, W, T]
    flat_va, flat_te = va.reshape(va.shape[0], -1), te.reshape(te.shape[0], -1)
    return jnp.take_along_axis(flat_te, jnp.argmax(flat_va, -1)[:, None], -1)[:, 0]


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
    """Test accuracy on the public split and mean / std over random 10/10/80 splits, weight decay
    chosen on validation accuracy per split."""
    rs = random_splits(np.asarray(labels), num_random_splits)
    train = np.concatenate([np.asarray(train_mask)[None], rs[0]])
    val = np.concatenate([np.asarray(val_mask)[None], rs[1]])
    test = np.concatenate([np.asarray(test_mask)[None], rs[2]])
    best = np.asarray(_fit_eval(jnp.asarray(emb), jnp.asarray(labels), jnp.asarray(train, jnp.float32),
                                jnp.asarray(val, jnp.float32), jnp.asarray(test, jnp.float32),
                                jnp.asarray(WEIGHT_DECAYS), num_classes=num_classes))
    return {"test_accuracy": float(best[0]), "random_split_accuracy": float(best[1:].mean()),
            "random_split_std": float(best[1:].std())}
