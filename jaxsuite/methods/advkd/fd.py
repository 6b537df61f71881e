"""The sample-quality metric: Frechet distance (FD, Heusel et al. 2017's FID formula) between Gaussians fitted to the
penultimate-layer features of a small classifier trained on the real training images (the MNIST analogue of FID's
Inception features), generated samples against held-out real images. Lower is better."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState


class FeatureNet(nnx.Module):
    """conv(32, stride 2) -> conv(64, stride 2) -> Linear(features) -> Linear(classes); ReLU between."""

    def __init__(self, in_ch: int, image_size: int, num_classes: int, features: int = 64, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(in_ch, 32, (3, 3), strides=(2, 2), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), strides=(2, 2), rngs=rngs)
        size = math.ceil(math.ceil(image_size / 2) / 2)  # two stride-2 SAME convs
        self.fc = nnx.Linear(64 * size * size, features, rngs=rngs)
        self.out = nnx.Linear(features, num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        return nnx.relu(self.fc(h.reshape(x.shape[0], -1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.features(x))


def init(cfg, rng: jax.Array) -> TrainState:
    c = cfg.fd
    net = FeatureNet(cfg.data.channels, cfg.data.image_size, cfg.data.num_classes, c.features,
                     rngs=nnx.Rngs(jax.random.fold_in(rng, 0)))
    return TrainState.create(net, optax.adam(c.lr), jax.random.fold_in(rng, 1))


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    def loss(p):
        logits = state.merge(p)(batch["image"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean(), logits

    (value, logits), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return state.apply_gradients(grads, state.model_state), {"loss": value, "accuracy": acc}


@jax.jit
def _features(state: TrainState, x: jax.Array) -> jax.Array:
    return state.merge().features(x)


@jax.jit
def _logits(state: TrainState, x: jax.Array) -> jax.Array:
    return state.merge()(x)


def _chunks(fn, state, x: np.ndarray, chunk: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(state, jnp.asarray(x[i:i + chunk]))) for i in range(0, len(x), chunk)])


def features(state: TrainState, x: np.ndarray, chunk: int = 500) -> np.ndarray:
    return _chunks(_features, state, x, chunk).astype(np.float64)


def accuracy(state: TrainState, x: np.ndarray, y: np.ndarray, chunk: int = 500) -> float:
    return float(np.mean(np.argmax(_chunks(_logits, state, x, chunk), -1) == y))


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(stats_a: tuple[np.ndarray, np.ndarray], stats_b: tuple[np.ndarray, np.ndarray]) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64 (the symmetric form of
    tr((S_a S_b)^1/2): the same eigenvalues, no complex square roots)."""
    (mu_a, s_a), (mu_b, s_b) = stats_a, stats_b
    root = _sqrt_psd(s_a)
    cross = np.linalg.eigvalsh(root @ s_b @ root)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0.0, None))))
