"""Adv-KD's two networks (official code: src/prodm/models/proddpm_student.py, src/prodm/models/kd_gan.py).

* :class:`ProgressiveStudent` -- the "layerwise transformations for denoising": K sub-modules, each one or more
  blocks of 3x3 conv (the last a stride-2 3x3 transposed conv where the resolution doubles) + BatchNorm +
  LeakyReLU, applied in sequence to the noise x_T resized to ``input_size``; sub-module k has its own output head (conv-BN-LReLU-conv) that
  predicts the teacher's state at checkpoint k. ``student(z, stage)`` runs sub-modules 0..stage and returns that
  stage's head. Deviation: the official heads all end in tanh; ours ends in tanh only on the last stage (x_0 lies
  in [-1, 1]; the intermediate states x_t of the teacher do not).
* :class:`NoiseConditionedDiscriminator` -- D(x, z): a DCGAN-style branch (4x4 stride-2 convs, ``ndf`` channels
  doubling, capped) on the image, a branch on the noise z (conv3x3 -> 32, conv3x3 stride 2 -> 64), concatenated,
  Linear -> norm -> LeakyReLU -> Linear 1. Deviation: LayerNorm where the official code has BatchNorm1d, so D is
  a per-example function and the gradient penalty is the per-example one WGAN-GP defines.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


def resize(x: jax.Array, size: int) -> jax.Array:
    """[B, H, W, C] -> [B, size, size, C]: antialiased bilinear (area-like when shrinking)."""
    b, _, _, c = x.shape
    return jax.image.resize(x, (b, size, size, c), "linear", antialias=True)


def stage_sizes(input_size: int, upsample: Sequence[bool]) -> tuple[int, ...]:
    sizes, size = [], input_size
    for up in upsample:
        size *= 2 if up else 1
        sizes.append(size)
    return tuple(sizes)


class ProgressiveStudent(nnx.Module):
    """``channels[k]`` lists the output channels of sub-module k's blocks (the official model: (16,), (16,),
    (32, 32), (32, 32), (64, 64), ..., (128, 128)); if ``upsample[k]`` its last block is the stride-2 transposed
    conv. LeakyReLU slope 0.01 (PyTorch's default, as the official ``nn.LeakyReLU()``)."""

    def __init__(self, in_ch: int, channels: Sequence[Sequence[int]], upsample: Sequence[bool], *, input_size: int,
                 bn_momentum: float = 0.9, rngs: nnx.Rngs):
        if len(channels) != len(upsample):
            raise ValueError(f"student channels {tuple(channels)} and upsample {tuple(upsample)} differ in length")
        self.input_size = input_size
        self.sizes = stage_sizes(input_size, upsample)
        submodules, heads, prev = [], [], in_ch
        for dims, up in zip(channels, upsample):
            blocks = []
            for j, ch in enumerate(dims):
                conv = (nnx.ConvTranspose(prev, ch, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
                        if up and j == len(dims) - 1 else nnx.Conv(prev, ch, (3, 3), rngs=rngs))
                blocks.append(nnx.Sequential(conv, nnx.BatchNorm(ch, momentum=bn_momentum, rngs=rngs)))
                prev = ch
            submodules.append(nnx.List(blocks))
            heads.append(nnx.Sequential(nnx.Conv(prev, prev, (3, 3), rngs=rngs),
                                        nnx.BatchNorm(prev, momentum=bn_momentum, rngs=rngs),
                                        nnx.Conv(prev, in_ch, (3, 3), rngs=rngs)))
        self.blocks, self.heads = nnx.List(submodules), nnx.List(heads)

    @property
    def num_stages(self) -> int:
        return len(self.blocks)

    def __call__(self, z: jax.Array, stage: int, *, train: bool) -> jax.Array:
        """z [B, input_size, input_size, C] -> the stage's prediction [B, sizes[stage], sizes[stage], C]."""
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"stage {stage} outside 0..{self.num_stages - 1}")
        h = z
        for submodule in self.blocks[:stage + 1]:
            for block in submodule:
                conv, bn = block.layers
                h = nnx.leaky_relu(bn(conv(h), use_running_average=not train), 0.01)
        conv1, bn, conv2 = self.heads[stage].layers
        out = conv2(nnx.leaky_relu(bn(conv1(h), use_running_average=not train), 0.01))
        return jnp.tanh(out) if stage == self.num_stages - 1 else out


class NoiseConditionedDiscriminator(nnx.Module):
    def __init__(self, in_ch: int, image_size: int, noise_size: int, *, ndf: int = 32, max_ch: int = 128,
                 hidden: int = 128, rngs: nnx.Rngs):
        self.noise_convs = nnx.List([nnx.Conv(in_ch, 32, (3, 3), rngs=rngs),
                                     nnx.Conv(32, 64, (3, 3), strides=(2, 2), rngs=rngs)])
        target = math.ceil(noise_size / 2)
        convs, size, ch, prev = [], image_size, ndf, in_ch
        while True:  # at least one stride-2 conv, then until the image branch is as small as the noise branch
            convs.append(nnx.Conv(prev, ch, (4, 4), strides=(2, 2), rngs=rngs))
            size, prev, ch = math.ceil(size / 2), ch, min(2 * ch, max_ch)
            if size <= target:
                break
        if size != target:
            raise ValueError(f"discriminator: image size {image_size} does not reduce to the noise branch's "
                             f"{target}x{target} by halving")
        self.image_convs = nnx.List(convs)
        self.fc1 = nnx.Linear((prev + 64) * target * target, hidden, rngs=rngs)
        self.norm = nnx.LayerNorm(hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
        """x [B, S, S, C] (a teacher state or the student's prediction), z [B, s, s, C] (its noise) -> logits [B]."""
        h = x
        for conv in self.image_convs:
            h = nnx.leaky_relu(conv(h), 0.2)
        g = z
        for conv in self.noise_convs:
            g = nnx.leaky_relu(conv(g), 0.2)
        h = jnp.concatenate([h, g], axis=-1).reshape(x.shape[0], -1)
        return self.fc2(nnx.leaky_relu(self.norm(self.fc1(h)), 0.2))[:, 0]
