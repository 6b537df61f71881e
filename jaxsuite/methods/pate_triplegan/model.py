"""The three players as NNX modules, sized for 28x28 (MNIST) or 8x8 (scikit-learn digits) grey images.

G(z, y): [z, onehot(y)] -> MLP -> image in [0, 1]. D(x, y): a projection discriminator over an MLP
of flatten(x) (no batch norm: a PATE teacher or a DP-SGD-trained D must see each example on its own). C(x): a small CNN ->
class logits. Layer sizes are config keys (the paper's are not public)."""
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
    """conv(32, 3x3) -> pool -> conv(64, 3x3) -> pool -> dense(128) -> dense(K)."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], channels: tuple[int, int] = (32, 64),
                 hidden: int = 128, *, rngs: nnx.Rngs):
        h, w, c = image_shape
        self.conv1 = nnx.Conv(c, channels[0], (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(channels[0], channels[1], (3, 3), rngs=rngs)
        flat = (h // 4) * (w // 4) * channels[1]
        self.fc1 = nnx.Linear(flat, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.max_pool(jax.nn.relu(self.conv1(x)), (2, 2), (2, 2))
        x = nnx.max_pool(jax.nn.relu(self.conv2(x)), (2, 2), (2, 2))
        return self.fc2(jax.nn.relu(self.fc1(x.reshape((x.shape[0], -1)))))
