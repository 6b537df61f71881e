"""Masked autoencoder pre-training (He et al. 2022): the masked-image model that MIM-Refiner refines.

Per image, a random ``mask_ratio`` of the patches is hidden (per-sample noise, argsort: the official
``random_masking``); the pre-norm ViT encoder sees only the visible patches plus the CLS token; a light
decoder (Linear to the decoder width, mask tokens, fixed 2D sin-cos positions, pre-norm blocks, LayerNorm,
Linear to p*p*C) reconstructs every patch, and the loss is the mean squared error over the *masked* patches
(paper Sec. 3, "Reconstruction target"), with per-patch normalised pixels as target when ``norm_pix``
(mean and unbiased variance of the patch, eps 1e-6, as the official ``forward_loss``).

``init(config, rng)``, ``train_step(state, batch)`` are the pure pair the host loop drives; the encoder's
parameters are ``state.params["encoder"]`` (a :class:`jaxsuite.nn.vit.ViT`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.mim_refiner.augment import random_resized_crop
from jaxsuite.nn.vit import LN_EPS, Block, FixedEmbedding, ViT, sincos_2d


def make_encoder(config, rngs: nnx.Rngs) -> ViT:
    m = config.model
    return ViT(config.data.image_size, m.patch_size, m.in_chans, dim=m.dim, depth=m.depth, heads=m.heads,
               num_registers=m.num_registers, norm=m.get("norm", "pre"),
               embed_norm=m.get("embed_norm", False), pos_embed="sincos", init="mae",
               dtype=jnp.dtype(m.dtype), rngs=rngs)


def load_encoder_params(config, path: str) -> dict:
    """The parameters of a pre-trained MIM encoder (MAE / data2vec 2.0 .pth or .safetensors) in the shape of
    ``make_encoder(config)``; every mismatch between the file and ``config.model`` is named."""
    from jaxsuite.nn.vit_import import load_into, read_state_dict

    encoder = load_into(make_encoder(config, nnx.Rngs(0)), read_state_dict(path))
    return nnx.state(encoder, nnx.Param).to_pure_dict()


class MAE(nnx.Module):
    def __init__(self, config, rngs: nnx.Rngs):
        m, dec = config.model, config.mae
        self.encoder = make_encoder(config, rngs)
        self.patch, self.mask_ratio, self.norm_pix = m.patch_size, dec.mask_ratio, dec.norm_pix
        xavier = nnx.initializers.xavier_uniform()
        dtype = jnp.dtype(m.dtype)
        self.decoder_embed = nnx.Linear(m.dim, dec.dim, dtype=dtype, kernel_init=xavier, rngs=rngs)
        self.mask_token = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, 1, dec.dim)))
        self.decoder_pos = FixedEmbedding(jnp.asarray(sincos_2d(self.encoder.grid, dec.dim,
                                                                self.encoder.num_prefix))[None])
        self.decoder_blocks = nnx.List([Block(dec.dim, dec.heads, norm="pre", dtype=dtype, kernel_init=xavier,
                                              rngs=rngs) for _ in range(dec.depth)])
        self.decoder_norm = nnx.LayerNorm(dec.dim, epsilon=LN_EPS, dtype=dtype, rngs=rngs)
        self.decoder_pred = nnx.Linear(dec.dim, m.patch_size ** 2 * m.in_chans, dtype=dtype, kernel_init=xavier,
                                       rngs=rngs)

    def __call__(self, images: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(predicted patches [B, N, p*p*C], mask [B, N] with 1 = masked)."""
        enc = self.encoder
        tokens = enc.patch_tokens(images)
        b, n, _ = tokens.shape
        keep = int(n * (1 - self.mask_ratio))
        shuffle = jnp.argsort(jax.random.uniform(key, (b, n)), axis=1)
        restore = jnp.argsort(shuffle, axis=1)
        visible = jnp.take_along_axis(tokens, shuffle[:, :keep, None], axis=1)
        latent = enc.tokens_from(visible).tokens
        x = self.decoder_embed(latent)
        prefix, x = x[:, :enc.num_prefix], x[:, enc.num_prefix:]
        x = jnp.concatenate([x, jnp.broadcast_to(self.mask_token[...].astype(x.dtype), (b, n - keep, x.shape[-1]))], 1)
        x = jnp.take_along_axis(x, restore[:, :, None], axis=1)  # back to patch order
        x = jnp.concatenate([prefix, x], axis=1) + self.decoder_pos[...].astype(x.dtype)
        for block in self.decoder_blocks:
            x = block(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, enc.num_prefix:]
        mask = (jnp.arange(n)[None] >= keep).astype(jnp.float32)
        return pred.astype(jnp.float32), jnp.take_along_axis(mask, restore, axis=1)


def patchify(images: jax.Array, p: int) -> jax.Array:
    """NHWC -> [B, N, p*p*C], patches in row-major order, each flattened (row, col, channel) as MAE's."""
    b, h, w, c = images.shape
    x = images.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def mae_loss(pred: jax.Array, images: jax.Array, mask: jax.Array, patch: int, norm_pix: bool) -> jax.Array:
    """He et al. 2022, Sec. 3: mean over masked patches of the per-patch mean squared pixel error."""
    target = patchify(images, patch)
    if norm_pix:
        mean = target.mean(-1, keepdims=True)
        var = target.var(-1, keepdims=True, ddof=1)
        target = (target - mean) / jnp.sqrt(var + 1e-6)
    per_patch = ((pred - target) ** 2).mean(-1)
    return (per_patch * mask).sum() / mask.sum()


def weight_decay_mask(params) -> dict:
    """Decay matrices and kernels only: no decay for biases, norms, CLS/register tokens and positions."""
    def decays(path, leaf):
        name = str(path[-1].key if hasattr(path[-1], "key") else path[-1])
        return leaf.ndim >= 2 and name not in ("cls_token", "reg_token", "pos_embed", "mask_token")
    return jax.tree_util.tree_map_with_path(decays, params)


def optimizer(config, steps: int) -> optax.GradientTransformation:
    o = config.mae.optim
    lr = o.base_lr * config.batch_size / 256  # MAE's linear scaling rule
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, int(o.warmup_fraction * steps)), max(steps, 2))
    return optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=o.weight_decay, mask=weight_decay_mask)


def init(config, rng: jax.Array, steps: int | None = None) -> TrainState:
    model = MAE(config, nnx.Rngs(rng))
    return TrainState.create(model, optimizer(config, steps or config.mae.steps), jax.random.fold_in(rng, 1))


def crop_batch(key: jax.Array, images: jax.Array, scale) -> jax.Array:
    """MAE's only augmentation: RandomResizedCrop back to the input size (scale (0.2, 1) in the paper)."""
    size = images.shape[1]
    return jax.vmap(lambda k, im: random_resized_crop(k, im, size, tuple(scale)))(
        jax.random.split(key, images.shape[0]), images)


def train_step(state: TrainState, batch: dict, *, crop_scale=(0.2, 1.0)) -> tuple[TrainState, dict]:
    """One MAE step; ``functools.partial(train_step, crop_scale=config.mae.crop_scale)`` for the host loop."""
    k_crop, k_mask = jax.random.split(state.step_key())
    images = crop_batch(k_crop, batch["image"], crop_scale)

    def loss_fn(params):
        model = state.merge(params)
        pred, mask = model(images, k_mask)
        return mae_loss(pred, images, mask, model.patch, model.norm_pix)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads, state.model_state), {"mae_loss": loss}
