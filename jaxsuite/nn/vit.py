"""Vision Transformer (Dosovitskiy et al. 2021) in NNX, returning every block's output.

Layout and numerics follow timm's ``VisionTransformer`` (so timm / MAE state dicts load one to one, see
``jaxsuite.nn.vit_import``): conv patch embedding (kernel = stride = patch), a CLS token, optional
register tokens (Darcet et al. 2024), absolute position embeddings that cover the prefix tokens too
(timm's default ``no_embed_class=False``), LayerNorm eps 1e-6, fused qkv with bias, exact (erf) GELU.

Two block forms:
  * ``pre``  (MAE, timm):        x = x + attn(norm1(x));  x = x + mlp(norm2(x));  a final norm after the last block
  * ``post`` (data2vec 2.0):     x = norm1(x + attn(x));  x = norm2(x + mlp(x));  no final norm
data2vec 2.0 also normalises the embedded tokens before the first block (``embed_norm=True``) and gives the
CLS token no position (a zero row of ``pos_embed`` here).

``dtype`` is the compute dtype (bfloat16 on accelerators); parameters stay float32. Attention runs through
``jax.nn.dot_product_attention`` (cuDNN flash attention on GPU where it applies, XLA elsewhere).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# name -> (width, depth, heads); patch size is a separate argument (16, or 14 for H/14)
SIZES = {
    "micro": (64, 6, 4),     # tests and the quick presets (not a published size)
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
LN_EPS = 1e-6


class FixedEmbedding(nnx.Variable):
    """A non-trainable embedding (MAE's fixed 2D sin-cos positions): not an ``nnx.Param``, so no optimiser touches it."""


def sincos_2d(grid: int, dim: int, prefix: int = 1) -> np.ndarray:
    """MAE's fixed 2D sin-cos position embedding [prefix + grid^2, dim], zeros for the prefix tokens.

    Half the channels encode the row, half the column; each half is [sin(p w_k), cos(p w_k)] with
    w_k = 1 / 10000^(k / (dim/4)), k < dim/4 (He et al. 2022, official ``get_2d_sincos_pos_embed``)."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs a width divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")

    def enc(pos):
        out = pos.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    # the official code feeds (w, h) in this order: the first half encodes the column index
    emb = np.concatenate([enc(cols), enc(rows)], axis=1)
    return np.concatenate([np.zeros((prefix, dim)), emb], axis=0).astype(np.float32)


class Attention(nnx.Module):
    def __init__(self, dim: int, heads: int, *, dtype, kernel_init, rngs: nnx.Rngs):
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nnx.Linear(dim, 3 * dim, dtype=dtype, kernel_init=kernel_init, rngs=rngs)
        self.proj = nnx.Linear(dim, dim, dtype=dtype, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads), 3, axis=2)
        out = jax.nn.dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0])
        return self.proj(out.reshape(b, t, d))


class Mlp(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, dtype, kernel_init, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(dim, hidden, dtype=dtype, kernel_init=kernel_init, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, dim, dtype=dtype, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class Block(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, *, norm: str = "pre", dtype=jnp.float32,
                 kernel_init=nnx.initializers.truncated_normal(0.02), rngs: nnx.Rngs):  # noqa: B008 -- an immutable default
        if norm not in ("pre", "post"):
            raise ValueError(f"block norm must be 'pre' or 'post', got {norm!r}")
        self.norm = norm
        self.norm1 = nnx.LayerNorm(dim, epsilon=LN_EPS, dtype=dtype, rngs=rngs)
        self.attn = Attention(dim, heads, dtype=dtype, kernel_init=kernel_init, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, epsilon=LN_EPS, dtype=dtype, rngs=rngs)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dtype=dtype, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.norm == "pre":
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class ViTOutput(NamedTuple):
    tokens: jax.Array            # [B, T, D] after the final norm (pre-norm) or the last block (post-norm)
    blocks: tuple[jax.Array, ...]  # the residual stream after each block, [B, T, D] each (block i at index i)

    @property
    def cls(self) -> jax.Array:
        return self.tokens[:, 0]


class ViT(nnx.Module):
    """``ViT(img_size, patch_size, in_chans, size="base")`` or explicit ``dim/depth/heads``.

    ``model(images)`` takes NHWC images and returns :class:`ViTOutput`; ``model.tokens_from(x, keep)``
    runs the blocks on a subset of patch tokens (MAE's visible patches)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int = 3, *, size: str | None = None,
                 dim: int | None = None, depth: int | None = None, heads: int | None = None,
                 mlp_ratio: float = 4.0, norm: str = "pre", num_registers: int = 0, pos_embed: str = "learned",
                 embed_norm: bool = False, dtype=jnp.float32, init: str = "timm", rngs: nnx.Rngs):
        if size is not None:
            if size not in SIZES:
                raise ValueError(f"unknown ViT size {size!r} (known: {', '.join(SIZES)})")
            dim, depth, heads = SIZES[size]
        if None in (dim, depth, heads):
            raise ValueError("give a ViT size or all of dim, depth and heads")
        if img_size % patch_size:
            raise ValueError(f"image size {img_size} is not a multiple of the patch size {patch_size}")
        if pos_embed not in ("learned", "sincos"):
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got {pos_embed!r}")
        if init not in ("timm", "mae"):
            raise ValueError(f"init must be 'timm' or 'mae', got {init!r}")
        self.patch_size, self.grid, self.dim, self.depth = patch_size, img_size // patch_size, dim, depth
        self.num_prefix = 1 + num_registers
        self.final_norm = norm == "pre"
        # MAE initialises linear layers and the (flattened) patch projection with xavier-uniform
        kernel_init = (nnx.initializers.xavier_uniform() if init == "mae"
                       else nnx.initializers.truncated_normal(0.02))
        self.patch_embed = nnx.Conv(in_chans, dim, (patch_size, patch_size), strides=patch_size, padding="VALID",
                                    dtype=dtype, kernel_init=kernel_init, rngs=rngs)
        key = rngs.params()
        k1, k2, k3 = jax.random.split(key, 3)
        self.cls_token = nnx.Param(0.02 * jax.random.normal(k1, (1, 1, dim)) if init == "mae"
                                   else 1e-6 * jax.random.normal(k1, (1, 1, dim)))
        self.reg_token = nnx.Param(1e-6 * jax.random.normal(k2, (1, num_registers, dim))) if num_registers else None
        n_pos = self.num_prefix + self.grid ** 2
        if pos_embed == "sincos":
            self.pos_embed = FixedEmbedding(jnp.asarray(sincos_2d(self.grid, dim, self.num_prefix))[None])
        else:
            self.pos_embed = nnx.Param(0.02 * jax.random.truncated_normal(k3, -2.0, 2.0, (1, n_pos, dim)))
        self.embed_norm = nnx.LayerNorm(dim, epsilon=LN_EPS, dtype=dtype, rngs=rngs) if embed_norm else None
        self.blocks = nnx.List([Block(dim, heads, mlp_ratio, norm=norm, dtype=dtype, kernel_init=kernel_init,
                                      rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(dim, epsilon=LN_EPS, dtype=dtype, rngs=rngs) if self.final_norm else None

    def patch_tokens(self, images: jax.Array) -> jax.Array:
        """Patch embeddings plus their positions, [B, grid^2, D] in row-major patch order."""
        x = self.patch_embed(images)
        b, gh, gw, d = x.shape
        pos = self.pos_embed[:, self.num_prefix:]
        if (gh, gw) != (self.grid, self.grid):  # another resolution (multi-crop's local views): bicubic resize
            pos = jax.image.resize(pos.reshape(1, self.grid, self.grid, d), (1, gh, gw, d), "bicubic")
        return x.reshape(b, gh * gw, d) + pos.reshape(1, gh * gw, d).astype(x.dtype)

    def prefix_tokens(self, batch: int, dtype) -> jax.Array:
        prefix = [self.cls_token[...]] + ([self.reg_token[...]] if self.reg_token is not None else [])
        tokens = jnp.concatenate(prefix, axis=1) + self.pos_embed[:, :self.num_prefix]
        return jnp.broadcast_to(tokens.astype(dtype), (batch, self.num_prefix, self.dim))

    def tokens_from(self, patches: jax.Array) -> ViTOutput:
        """Prepend the prefix tokens to (a subset of) position-embedded patch tokens and run the blocks."""
        x = jnp.concatenate([self.prefix_tokens(patches.shape[0], patches.dtype), patches], axis=1)
        if self.embed_norm is not None:
            x = self.embed_norm(x)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        if self.norm is not None:
            x = self.norm(x)
        return ViTOutput(tokens=x, blocks=tuple(outs))

    def __call__(self, images: jax.Array) -> ViTOutput:
        if images.ndim != 4:
            raise ValueError(f"ViT expects NHWC images, got shape {images.shape}")
        return self.tokens_from(self.patch_tokens(images))
