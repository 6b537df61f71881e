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
    """``depth`` ConvBNReLU blocks and a max-pool: one VGG stage ("conv_k + pool_k").

    ``pool_stride`` 2 is a 2x2 pool halving the resolution; 1 is DeepLab's 3x3 stride-1 SAME pool
    (pool4 / pool5 of DeepLab-LargeFOV, whose conv5 is dilated instead)."""

    def __init__(self, in_ch: int, out_ch: int, *, depth: int = 2, pool_stride: int = 2, dilation: int = 1,
                 bn_momentum: float = 0.95, rngs: nnx.Rngs):
        if pool_stride not in (1, 2):
            raise ValueError(f"pool_stride must be 1 or 2, got {pool_stride}")
        self.blocks = nnx.List([ConvBNReLU(in_ch if i == 0 else out_ch, out_ch, dilation=dilation,
                                           bn_momentum=bn_momentum, rngs=rngs) for i in range(depth)])
        self.pool_stride = pool_stride

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for block in self.blocks:
            x = block(x, train=train)
        if self.pool_stride == 2:
            return nnx.max_pool(x, (2, 2), strides=(2, 2))
        return nnx.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")


def vgg_stages(in_ch: int, channels: Sequence[int], depths: Sequence[int], *, bn_momentum: float,
               rngs: nnx.Rngs, pool_strides: Sequence[int] | None = None,
               dilations: Sequence[int] | None = None) -> nnx.List:
    """The stages of a VGG-style backbone, e.g. VGG-16 DeepLab-LargeFOV: channels (64, 128, 256, 512, 512),
    depths (2, 2, 3, 3, 3), pool strides (2, 2, 2, 1, 1), dilations (1, 1, 1, 1, 2)."""
    n = len(channels)
    if len(depths) != n:
        raise ValueError(f"channels {tuple(channels)} and depths {tuple(depths)} differ in length")
    pool_strides = tuple(pool_strides) if pool_strides else (2,) * n
    dilations = tuple(dilations) if dilations else (1,) * n
    if len(pool_strides) != n or len(dilations) != n:
        raise ValueError(f"pool_strides and dilations need one entry per stage ({n})")
    stages, prev = [], in_ch
    for ch, depth, stride, dil in zip(channels, depths, pool_strides, dilations):
        stages.append(ConvStage(prev, ch, depth=depth, pool_stride=stride, dilation=dil,
                                bn_momentum=bn_momentum, rngs=rngs))
        prev = ch
    return nnx.List(stages)


def output_hw(image_hw: tuple[int, int], pool_strides: Sequence[int]) -> tuple[int, int]:
    """Spatial size after the stages (a 2x2 pool floors odd sizes)."""
    h, w = image_hw
    for s in pool_strides:
        h, w = (h // 2, w // 2) if s == 2 else (h, w)
    return h, w
