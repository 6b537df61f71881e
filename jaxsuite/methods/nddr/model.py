"""NNX modules of NDDR-CNN and its baselines.

* :class:`NDDRLayer` -- Sec. 3.1, Eq. (1)-(2): F_i' = ReLU(BN(Conv1x1_{W_i}(concat_c[F_1..F_T]))),
  W_i in R^{TC x C} without bias; init [alpha I at block i, beta I elsewhere] (Sec. 3.3) or Xavier.
* :class:`CrossStitch` -- Misra et al. 2016: F_i' = sum_j a_ij F_j, a initialised [[0.9, 0.1], [0.1, 0.9]].
* :class:`MultiTaskNet` -- T task columns of the same architecture with a fusion layer after every
  stage (``fusion`` = "nddr" | "cross_stitch" | "none"; "none" is T independent single-task networks),
  optionally with the NDDR shortcut (Sec. 3.4): every stage's NDDR output resized to the last stage,
  concatenated, one 1x1 conv-BN-ReLU per task.
* :class:`HardSharingNet` -- shared trunk, one head per task (the usual multi-task baseline).

Heads follow DeepLab-LargeFOV's fc6 -> fc7 -> fc8 (dense tasks) or a small MLP (classification);
the last layer is always called ``fc8`` so the optimiser can give it the paper's x10 / x20 lr.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.nn.cnn import ConvBNReLU, output_hw, vgg_stages


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task: ``kind`` is "classification" (one label per image), "segmentation" (a label per pixel)
    or "normals" (a unit 3-vector per pixel); ``num_outputs`` the classes or 3; ``loss_weight`` its
    weight in the summed loss."""
    name: str
    kind: str
    num_outputs: int
    loss_weight: float = 1.0


class ClassifierHead(nnx.Module):
    """flatten -> fc7 (Dense, ReLU) -> dropout -> fc8 (logits)."""

    def __init__(self, in_features: int, hidden: int, num_outputs: int, dropout: float, *, rngs: nnx.Rngs):
        self.fc7 = nnx.Linear(in_features, hidden, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.fc8 = nnx.Linear(hidden, num_outputs, rngs=rngs)

    def __call__(self, x, *, train: bool, rngs: nnx.Rngs | None):
        x = nnx.relu(self.fc7(x.reshape(x.shape[0], -1)))
        return self.fc8(self.dropout(x, deterministic=not train, rngs=rngs))


class DenseHead(nnx.Module):
    """DeepLab-LargeFOV head: fc6 (3x3, dilated) -> dropout -> fc7 (1x1) -> dropout -> fc8 (1x1),
    bilinearly upsampled to the input resolution."""

    def __init__(self, in_ch: int, hidden: int, num_outputs: int, dropout: float, dilation: int,
                 bn_momentum: float, *, rngs: nnx.Rngs):
        self.fc6 = ConvBNReLU(in_ch, hidden, kernel=3, dilation=dilation, bn_momentum=bn_momentum, rngs=rngs)
        self.fc7 = ConvBNReLU(hidden, hidden, kernel=1, bn_momentum=bn_momentum, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.fc8 = nnx.Conv(hidden, num_outputs, (1, 1), rngs=rngs)

    def __call__(self, x, *, train: bool, rngs: nnx.Rngs | None, out_hw: tuple[int, int]):
        x = self.dropout(self.fc6(x, train=train), deterministic=not train, rngs=rngs)
        x = self.dropout(self.fc7(x, train=train), deterministic=not train, rngs=rngs)
        x = self.fc8(x)
        return jax.image.resize(x, (x.shape[0], *out_hw, x.shape[-1]), "bilinear")


def _make_head(task: TaskSpec, arch, in_ch: int, in_hw: tuple[int, int], rngs: nnx.Rngs) -> nnx.Module:
    if task.kind == "classification":
        return ClassifierHead(in_ch * in_hw[0] * in_hw[1], arch.head_hidden, task.num_outputs, arch.dropout,
                              rngs=rngs)
    return DenseHead(in_ch, arch.head_hidden, task.num_outputs, arch.dropout, arch.head_dilation,
                     arch.bn_momentum, rngs=rngs)


def _apply_head(head, x, *, train, rngs, image_hw):
    if isinstance(head, DenseHead):
        return head(x, train=train, rngs=rngs, out_hw=image_hw)
    return head(x, train=train, rngs=rngs)


def nddr_init(num_tasks: int, channels: int, task: int, alpha: float, beta: float) -> np.ndarray:
    """W_i = [beta I, ..., alpha I (block i), ..., beta I] as a (1, 1, T*C, C) conv kernel (Sec. 3.3)."""
    blocks = [(alpha if j == task else beta) * np.eye(channels, dtype=np.float32) for j in range(num_tasks)]
    return np.concatenate(blocks, axis=0)[None, None]


class NDDRLayer(nnx.Module):
    """Eq. (1)-(2): per task a 1x1 conv (no bias) over the channel-concatenated features, BN, ReLU."""

    def __init__(self, num_tasks: int, channels: int, *, init: str = "constant",
                 init_weights: Sequence[float] = (0.9, 0.1), bn_momentum: float = 0.95,
                 bn_epsilon: float = 1e-5, rngs: nnx.Rngs):
        if init not in ("constant", "xavier"):
            raise ValueError(f"NDDR init must be 'constant' or 'xavier', got {init!r}")
        convs, norms = [], []
        for i in range(num_tasks):
            conv = nnx.Conv(num_tasks * channels, channels, (1, 1), use_bias=False,
                            kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)
            if init == "constant":
                conv.kernel.value = jnp.asarray(nddr_init(num_tasks, channels, i, *init_weights))
            convs.append(conv)
            norms.append(nnx.BatchNorm(channels, momentum=bn_momentum, epsilon=bn_epsilon, rngs=rngs))
        self.convs, self.norms = nnx.List(convs), nnx.List(norms)

    def __call__(self, feats: Sequence[jax.Array], *, train: bool) -> list[jax.Array]:
        concat = jnp.concatenate(feats, axis=-1)
        return [nnx.relu(bn(conv(concat), use_running_average=not train)) for conv, bn in zip(self.convs, self.norms)]


class CrossStitch(nnx.Module):
    """Cross-stitch unit (Misra et al. 2016): F_i' = sum_j a_ij F_j with a TxT matrix per stage."""

    def __init__(self, num_tasks: int, *, init_weights: Sequence[float] = (0.9, 0.1), rngs: nnx.Rngs):
        a, b = init_weights
        self.alpha = nnx.Param(jnp.where(jnp.eye(num_tasks, dtype=bool), a, b).astype(jnp.float32))

    def __call__(self, feats: Sequence[jax.Array], *, train: bool) -> list[jax.Array]:
        stacked = jnp.stack(feats, axis=0)
        return list(jnp.einsum("ij,j...->i...", self.alpha.value, stacked))


class TaskColumn(nnx.Module):
    """One single-task network: VGG stages and a head."""

    def __init__(self, task: TaskSpec, arch, in_ch: int, image_hw: tuple[int, int], *, rngs: nnx.Rngs):
        self.stages = _stages(arch, in_ch, rngs)
        self.head = _make_head(task, arch, arch.channels[-1], _out_hw(arch, image_hw), rngs)


def _stages(arch, in_ch: int, rngs: nnx.Rngs) -> nnx.List:
    return vgg_stages(in_ch, arch.channels, arch.depths, bn_momentum=arch.bn_momentum, rngs=rngs,
                      pool_strides=arch.pool_strides, dilations=arch.dilations)


def _out_hw(arch, image_hw):
    return output_hw(image_hw, arch.pool_strides or (2,) * len(arch.channels))


class MultiTaskNet(nnx.Module):
    """T columns with a fusion layer after every stage; ``fusion="none"`` is the single-task networks."""

    def __init__(self, tasks: Sequence[TaskSpec], arch, in_ch: int, image_hw: tuple[int, int], *,
                 fusion: str = "nddr", shortcut: bool = False, nddr_init: str = "constant",
                 init_weights: Sequence[float] = (0.9, 0.1), nddr_bn_epsilon: float = 1e-5,
                 same_column_init: bool = True, rngs: nnx.Rngs):
        if fusion not in ("nddr", "cross_stitch", "none"):
            raise ValueError(f"fusion must be 'nddr', 'cross_stitch' or 'none', got {fusion!r}")
        if shortcut and fusion != "nddr":
            raise ValueError("the shortcut variant needs fusion='nddr'")
        self.tasks = tuple(tasks)
        self.image_hw = tuple(image_hw)
        self.fusion = fusion
        self.use_shortcut = shortcut
        T = len(tasks)
        # The paper's columns all start from the same ImageNet VGG-16, so channel c of one column
        # corresponds to channel c of the others -- what the diagonal NDDR init assumes. Without a
        # pre-trained model we keep that property by giving every column the same initial weights.
        column_key = rngs.params() if same_column_init else None
        self.columns = nnx.List([
            TaskColumn(t, arch, in_ch, image_hw, rngs=nnx.Rngs(params=column_key) if same_column_init else rngs)
            for t in tasks])
        if fusion == "nddr":
            self.fusions = nnx.List([NDDRLayer(T, c, init=nddr_init, init_weights=init_weights,
                                               bn_momentum=arch.bn_momentum, bn_epsilon=nddr_bn_epsilon, rngs=rngs)
                                     for c in arch.channels])
        elif fusion == "cross_stitch":
            self.fusions = nnx.List([CrossStitch(T, init_weights=init_weights, rngs=rngs) for _ in arch.channels])
        else:
            self.fusions = nnx.List([])
        if shortcut:
            self.shortcut = nnx.List([ConvBNReLU(sum(arch.channels), arch.channels[-1], kernel=1,
                                                 bn_momentum=arch.bn_momentum, rngs=rngs) for _ in tasks])

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None = None) -> tuple[jax.Array, ...]:
        feats = [x] * len(self.columns)
        fused_per_stage = []
        for s in range(len(self.columns[0].stages)):
            feats = [col.stages[s](f, train=train) for col, f in zip(self.columns, feats)]
            if self.fusion != "none":
                feats = self.fusions[s](feats, train=train)
            fused_per_stage.append(feats)
        if self.use_shortcut:
            last_hw = feats[0].shape[1:3]
            feats = [
                conv(jnp.concatenate([jax.image.resize(stage[i], (stage[i].shape[0], *last_hw, stage[i].shape[-1]),
                                                       "bilinear") for stage in fused_per_stage], axis=-1),
                     train=train)
                for i, conv in enumerate(self.shortcut)]
        return tuple(_apply_head(col.head, f, train=train, rngs=rngs, image_hw=self.image_hw)
                     for col, f in zip(self.columns, feats))


class HardSharingNet(nnx.Module):
    """Shared VGG trunk, one head per task (split after the last stage, as the paper's MT baseline)."""

    def __init__(self, tasks: Sequence[TaskSpec], arch, in_ch: int, image_hw: tuple[int, int], *, rngs: nnx.Rngs):
        self.tasks = tuple(tasks)
        self.image_hw = tuple(image_hw)
        self.stages = _stages(arch, in_ch, rngs)
        hw = _out_hw(arch, image_hw)
        self.heads = nnx.List([_make_head(t, arch, arch.channels[-1], hw, rngs) for t in tasks])

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None = None) -> tuple[jax.Array, ...]:
        for stage in self.stages:
            x = stage(x, train=train)
        return tuple(_apply_head(h, x, train=train, rngs=rngs, image_hw=self.image_hw) for h in self.heads)
