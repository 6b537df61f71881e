"""An epsilon-prediction UNet for DDPM (Ho et al. 2020, Appendix B; the diffusers ``UNet2DModel`` layout).

Sinusoidal timestep embedding -> MLP; per resolution level ``num_res_blocks`` residual blocks (GroupNorm, SiLU,
3x3 conv, the time embedding added between the two convs), optional self-attention at ``attn_resolutions``, a
strided-conv downsample between levels; a middle block (res, attention, res); the mirror-image decoder with
skip concatenations and nearest-neighbour upsampling; GroupNorm, SiLU and a zero-initialised 3x3 output conv.
``patch`` > 1 folds p x p pixel blocks into channels first (space-to-depth) and unfolds the output: the network
then runs at 1/p of the resolution (the "patch size" of U-ViT / DiT, for small compute budgets).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
    """[B] integer or float timesteps -> [B, dim] sin/cos features (Transformer positional encoding)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = t.astype(jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _groups(ch: int, groups: int) -> int:
    g = min(groups, ch)
    while ch % g:
        g -= 1
    return g


class ResBlock(nnx.Module):
    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, groups: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.GroupNorm(in_ch, num_groups=_groups(in_ch, groups), rngs=rngs)
        self.conv1 = nnx.Conv(in_ch, out_ch, (3, 3), rngs=rngs)
        self.temb = nnx.Linear(temb_dim, out_ch, rngs=rngs)
        self.norm2 = nnx.GroupNorm(out_ch, num_groups=_groups(out_ch, groups), rngs=rngs)
        self.conv2 = nnx.Conv(out_ch, out_ch, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.skip = nnx.Conv(in_ch, out_ch, (1, 1), rngs=rngs) if in_ch != out_ch else None

    def __call__(self, x: jax.Array, temb: jax.Array) -> jax.Array:
        h = self.conv1(nnx.silu(self.norm1(x)))
        h = h + self.temb(nnx.silu(temb))[:, None, None, :]
        h = self.conv2(nnx.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class AttnBlock(nnx.Module):
    """Single-head self-attention over the H*W positions, residual."""

    def __init__(self, ch: int, groups: int, *, rngs: nnx.Rngs):
        self.norm = nnx.GroupNorm(ch, num_groups=_groups(ch, groups), rngs=rngs)
        self.qkv = nnx.Linear(ch, 3 * ch, rngs=rngs)
        self.out = nnx.Linear(ch, ch, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        q, k, v = jnp.split(self.qkv(self.norm(x)).reshape(b, h * w, 3 * c), 3, axis=-1)
        attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k) / math.sqrt(c), axis=-1)
        return x + self.out(jnp.einsum("bqk,bkc->bqc", attn, v)).reshape(b, h, w, c)


class UNet(nnx.Module):
    """``UNet(...)(x [B, H, W, C], t [B]) -> epsilon [B, H, W, C]``; H and W divisible by 2^(levels-1)."""

    def __init__(self, in_ch: int, *, base: int = 32, mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 1,
                 attn_resolutions: Sequence[int] = (), image_size: int = 28, groups: int = 8, patch: int = 1,
                 rngs: nnx.Rngs):
        if image_size % (patch * 2 ** (len(mults) - 1)):
            raise ValueError(f"image size {image_size} is not divisible by patch {patch} x 2^{len(mults) - 1} "
                             f"(the downsamplings of {len(mults)} levels)")
        self.base, self.patch = base, patch
        in_ch, image_size = in_ch * patch * patch, image_size // patch
        temb_dim = 4 * base
        self.temb1 = nnx.Linear(base, temb_dim, rngs=rngs)
        self.temb2 = nnx.Linear(temb_dim, temb_dim, rngs=rngs)
        self.conv_in = nnx.Conv(in_ch, base, (3, 3), rngs=rngs)
        self.num_res_blocks = num_res_blocks
        down, skips_ch, ch, res = [], [base], base, image_size
        for level, mult in enumerate(mults):
            out = base * mult
            for _ in range(num_res_blocks):
                down.append(ResBlock(ch, out, temb_dim, groups, rngs=rngs))
                down.append(AttnBlock(out, groups, rngs=rngs) if res in attn_resolutions else None)
                ch = out
                skips_ch.append(ch)
            if level < len(mults) - 1:
                down.append(nnx.Conv(ch, ch, (3, 3), strides=(2, 2), rngs=rngs))
                skips_ch.append(ch)
                res //= 2
        self.down = nnx.List(down)
        self.mid1 = ResBlock(ch, ch, temb_dim, groups, rngs=rngs)
        self.mid_attn = AttnBlock(ch, groups, rngs=rngs)
        self.mid2 = ResBlock(ch, ch, temb_dim, groups, rngs=rngs)
        up = []
        for level, mult in reversed(list(enumerate(mults))):
            out = base * mult
            for _ in range(num_res_blocks + 1):
                up.append(ResBlock(ch + skips_ch.pop(), out, temb_dim, groups, rngs=rngs))
                up.append(AttnBlock(out, groups, rngs=rngs) if res in attn_resolutions else None)
                ch = out
            if level > 0:
                up.append(nnx.Conv(ch, ch, (3, 3), rngs=rngs))
                res *= 2
        self.up = nnx.List(up)
        self.norm_out = nnx.GroupNorm(ch, num_groups=_groups(ch, groups), rngs=rngs)
        self.conv_out = nnx.Conv(ch, in_ch, (3, 3), kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.levels = len(mults)

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        temb = self.temb2(nnx.silu(self.temb1(timestep_embedding(t, self.base))))
        b, hh, ww, c = x.shape
        p = self.patch
        if p > 1:
            x = x.reshape(b, hh // p, p, ww // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hh // p, ww // p, -1)
        h = self.conv_in(x)
        skips = [h]
        blocks = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.num_res_blocks):
                h = next(blocks)(h, temb)
                attn = next(blocks)
                h = h if attn is None else attn(h)
                skips.append(h)
            if level < self.levels - 1:
                h = next(blocks)(h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        blocks = iter(self.up)
        for level in reversed(range(self.levels)):
            for _ in range(self.num_res_blocks + 1):
                h = next(blocks)(jnp.concatenate([h, skips.pop()], axis=-1), temb)
                attn = next(blocks)
                h = h if attn is None else attn(h)
            if level > 0:
                h = next(blocks)(jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2))  # nearest-neighbour 2x
        out = self.conv_out(nnx.silu(self.norm_out(h)))
        if p > 1:
            out = out.reshape(b, hh // p, ww // p, p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, c)
        return out
