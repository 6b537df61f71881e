"""The refiner's NNCLR head (official ``NnclrHead``): a projector and a predictor of Linear (no bias: a BN
follows) -> BatchNorm -> GELU layers, the last layer of each without GELU; xavier-uniform weights, BN at
scale 1 / bias 0. Paper sizes: projector in -> 2048 -> 2048 -> 256, predictor 256 -> 4096 -> 256.

``Refiner`` is the encoder plus one head per entry of ``head_blocks``: a block index (the CLS token of that
block's residual stream, as the official ``ExtractorPooling`` hooks read it) or -1 (the encoder's final output,
after its last norm).
"""
from __future__ import annotations

import jax
from flax import nnx

from jaxsuite.nn.vit import ViT, ViTOutput


class MLPStack(nnx.Module):
    """Linear -> BN -> GELU for every hidden width, then Linear -> BN."""

    def __init__(self, dims: tuple[int, ...], *, rngs: nnx.Rngs):
        init = nnx.initializers.xavier_uniform()
        self.linears = nnx.List([nnx.Linear(a, b, use_bias=False, kernel_init=init, rngs=rngs)
                                 for a, b in zip(dims[:-1], dims[1:])])
        self.norms = nnx.List([nnx.BatchNorm(b, momentum=0.9, epsilon=1e-5, rngs=rngs) for b in dims[1:]])

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for i, (lin, bn) in enumerate(zip(self.linears, self.norms)):
            x = bn(lin(x), use_running_average=not train)
            if i < len(self.linears) - 1:
                x = jax.nn.gelu(x, approximate=False)
        return x


class NNCLRHead(nnx.Module):
    def __init__(self, in_dim: int, proj_hidden: int, out_dim: int, pred_hidden: int, proj_hidden_layers: int = 1,
                 *, rngs: nnx.Rngs):
        self.projector = MLPStack((in_dim,) + (proj_hidden,) * (1 + proj_hidden_layers) + (out_dim,), rngs=rngs)
        self.predictor = MLPStack((out_dim, pred_hidden, out_dim), rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        """(projection z, prediction p)."""
        z = self.projector(x, train=train)
        return z, self.predictor(z, train=train)


def pool(out: ViTOutput, block: int) -> jax.Array:
    """CLS token of block ``block``'s output, or of the final (normed) tokens for -1."""
    return out.cls if block == -1 else out.blocks[block][:, 0]


class Refiner(nnx.Module):
    def __init__(self, encoder: ViT, head_blocks: tuple[int, ...], head_cfg, *, rngs: nnx.Rngs):
        for b in head_blocks:
            if not -1 <= b < encoder.depth:
                raise ValueError(f"head block {b} is outside the encoder's blocks 0..{encoder.depth - 1} (or -1)")
        self.encoder = encoder
        self.head_blocks = tuple(head_blocks)
        self.heads = nnx.List([NNCLRHead(encoder.dim, head_cfg.proj_hidden, head_cfg.out_dim, head_cfg.pred_hidden,
                                         head_cfg.proj_hidden_layers, rngs=rngs) for _ in head_blocks])
