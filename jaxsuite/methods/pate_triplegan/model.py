"""The three players as NNX modules, sized for 28x28 (MNIST) or 8x8 (scikit-learn digits) grey images.

G(z, y): [z, onehot(y)] -> MLP -> image in [0, 1]. D(x, y): a projection discriminator over an MLP
of flatten(x) (no batch norm: a PATE teacher or a DP-SGD-trained D must see each example on its own). C(x): a small CNN,
or logistic regression -> class logits. Layer sizes are config keys (the paper's are not public)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, sizes: tuple[int, ...], *, rngs: nnx.Rngs, leaky: float = 0.2):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.leaky = leaky

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.leaky_relu(x, self.leaky)
        return x


class Generator(nnx.Module):
    def __init__(self, latent: int, num_classes: int, image_shape: tuple[int, int, int], hidden: tuple[int, ...],
                 *, rngs: nnx.Rngs):
        self.num_classes, self.image_shape = num_classes, image_shape
        out = image_shape[0] * image_shape[1] * image_shape[2]
        self.net = MLP((latent + num_classes, *hidden, out), rngs=rngs)

    def __call__(self, z, y):
        h = self.net(jnp.concatenate([z, jax.nn.one_hot(y, self.num_classes)], -1))
        return jax.nn.sigmoid(h).reshape((z.shape[0], *self.image_shape))


class Discriminator(nnx.Module):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = w . phi(x) + e_y . phi(x), phi an MLP; the class
    enters through an inner product with the features rather than as an input, which conditions far faster."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], hidden: tuple[int, ...], *,
                 rngs: nnx.Rngs):
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.features = MLP((size, *hidden), rngs=rngs)
        self.out = nnx.Linear(hidden[-1], 1, rngs=rngs)
        self.embed = nnx.Embed(num_classes, hidden[-1], rngs=rngs)

    def __call__(self, x, y):
        h = jax.nn.leaky_relu(self.features(x.reshape((x.shape[0], -1))), 0.2)
        return self.out(h)[:, 0] + jnp.sum(self.embed(y) * h, -1)


class Classifier(nnx.Module):
    """[conv(3x3) -> relu -> pool 2x2] per entry of ``channels`` -> [dense(hidden) -> relu if hidden] -> dense(K).
    ``channels=()`` and ``hidden=0`` give multinomial logistic regression: a DP-SGD-trained C on a few hundred
    labels does far better with few parameters, since the noise's norm grows with the square root of their count."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], channels: tuple[int, ...] = (32, 64),
                 hidden: int = 128, *, rngs: nnx.Rngs):
        h, w, c = image_shape
        sizes = (c, *channels)
        self.convs = nnx.List([nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        scale = 2 ** len(channels)
        flat = (h // scale) * (w // scale) * sizes[-1]
        self.fc1 = nnx.Linear(flat, hidden, rngs=rngs) if hidden else None
        self.fc2 = nnx.Linear(hidden or flat, num_classes, rngs=rngs)

    def __call__(self, x):
        for conv in self.convs:
            x = nnx.max_pool(jax.nn.relu(conv(x)), (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        if self.fc1 is not None:
            x = jax.nn.relu(self.fc1(x))
        return self.fc2(x)
