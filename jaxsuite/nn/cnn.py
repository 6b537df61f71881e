"""VGG-style convolutional building blocks (conv3x3 -> BN -> ReLU, repeated, then 2x2 max-pool)."""
from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx


class ConvBNReLU(nnx.Module):
    """Conv (no bias: BN follows) -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, *, kernel: int = 3, dilation: int = 1,
                 bn_momentum: float = 0.95, rngs: nnx.Rngs):
        self.conv = nnx.Conv(in_ch, out_ch, (kernel, kernel), kernel_dilation=dilation, use_bias=False,
                             kernel_init=nnx.initializers.he_normal(), rngs=rngs)
        self.bn = nnx.BatchNorm(out_ch, momentum=bn_momentum, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        return nnx.relu(self.bn(self.conv(x), use_running_average=not train))


class ConvStage(nnx.Module):
    """``depth`` ConvBNReLU blocks followed by a 2x2 max-pool (one VGG stage, "conv_k + pool_k")."""

    def __init__(self, in_ch: int, out_ch: int, *, depth: int = 2, pool: bool = True,
                 bn_momentum: float = 0.95, rngs: nnx.Rngs):
        self.blocks = nnx.List([ConvBNReLU(in_ch if i == 0 else out_ch, out_ch, bn_momentum=bn_momentum, rngs=rngs)
                                for i in range(depth)])
        self.pool = pool

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for block in self.blocks:
            x = block(x, train=train)
        return nnx.max_pool(x, (2, 2), strides=(2, 2)) if self.pool else x


def vgg_stages(in_ch: int, channels: Sequence[int], depths: Sequence[int], *, bn_momentum: float,
               rngs: nnx.Rngs) -> nnx.List:
    """The stages of a VGG-style backbone, e.g. channels (64, 128, 256, 512, 512), depths (2, 2, 3, 3, 3)."""
    stages, prev = [], in_ch
    for ch, depth in zip(channels, depths):
        stages.append(ConvStage(prev, ch, depth=depth, bn_momentum=bn_momentum, rngs=rngs))
        prev = ch
    return nnx.List(stages)
