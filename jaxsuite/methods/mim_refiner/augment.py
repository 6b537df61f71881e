"""Multi-crop augmentation (Caron et al. 2020) as MIM-Refiner trains with: 2 global crops and several small
local crops per image, each with BYOL-style photometric jitter, on device, from an explicit key.

dm-pix supplies the photometric ops (brightness, contrast, Gaussian blur, solarisation); it has no
RandomResizedCrop, so the crop (area fraction and log-uniform aspect ratio as torchvision samples them, then a
bilinear resize) is written here with ``jax.image.scale_and_translate``. Colour jitter and grayscale of the
RGB recipe only apply to 3-channel images.
"""
from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp


def random_resized_crop(key: jax.Array, image: jax.Array, size: int, scale: tuple[float, float],
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> jax.Array:
    """One HWC image -> a crop of ``scale`` of its area and aspect ratio in ``ratio``, resized to size x size."""
    h, w = image.shape[0], image.shape[1]
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = h * w * jax.random.uniform(k_area, (), minval=scale[0], maxval=scale[1])
    log_r = jax.random.uniform(k_ratio, (), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1]))
    cw = jnp.clip(jnp.sqrt(area * jnp.exp(log_r)), 1.0, w)
    ch = jnp.clip(jnp.sqrt(area / jnp.exp(log_r)), 1.0, h)
    y0 = jax.random.uniform(k_y, ()) * (h - ch)
    x0 = jax.random.uniform(k_x, ()) * (w - cw)
    sy, sx = size / ch, size / cw
    return jax.image.scale_and_translate(image, (size, size, image.shape[2]), (0, 1), jnp.stack([sy, sx]),
                                         jnp.stack([-y0 * sy, -x0 * sx]), method="linear", antialias=True)


def photometric(key: jax.Array, image: jax.Array, *, strength: float, blur_p: float, solarize_p: float) -> jax.Array:
    """BYOL's jitter for one HWC image in [0, 1]: brightness/contrast (and saturation/hue for RGB) with
    probability 0.8, grayscale 0.2 (RGB), Gaussian blur ``blur_p``, solarisation ``solarize_p``."""
    ks = jax.random.split(key, 9)
    jittered = pix.random_brightness(ks[0], image, 0.4 * strength)
    jittered = pix.random_contrast(ks[1], jittered, 1 - 0.4 * strength, 1 + 0.4 * strength)
    if image.shape[-1] == 3:
        jittered = pix.random_saturation(ks[2], jittered, 1 - 0.2 * strength, 1 + 0.2 * strength)
        jittered = pix.random_hue(ks[3], jittered, 0.1 * strength)
    image = jnp.where(jax.random.uniform(ks[4]) < 0.8, jittered, image)
    if image.shape[-1] == 3:
        image = jnp.where(jax.random.uniform(ks[5]) < 0.2, pix.rgb_to_grayscale(image, keep_dims=True), image)
    sigma = jax.random.uniform(ks[6], (), minval=0.1, maxval=2.0) * image.shape[0] / 224  # BYOL: 0.1-2 px at 224
    kernel = max(3, (image.shape[0] // 10) | 1)
    image = jnp.where(jax.random.uniform(ks[7]) < blur_p, pix.gaussian_blur(image, sigma, kernel), image)
    image = jnp.where(jax.random.uniform(ks[8]) < solarize_p, pix.solarize(image, 0.5), image)
    return jnp.clip(image, 0.0, 1.0)


def multi_crop(key: jax.Array, images: jax.Array, aug) -> tuple[jax.Array, jax.Array | None]:
    """NHWC batch -> (global views [G, B, S, S, C], local views [L, B, s, s, C] or None).

    ``aug``: num_global, global_size, global_scale, num_local, local_size, local_scale, strength. The two
    global views get BYOL's asymmetric blur/solarisation (1.0/0.0 and 0.1/0.2), local views blur 0.5."""
    b = images.shape[0]

    def views(k, n, size, scale, blur, solar):
        keys = jax.random.split(k, (n, b, 2))
        crop = jax.vmap(jax.vmap(lambda kk, im: random_resized_crop(kk, im, size, scale), (0, 0)), (0, None))
        out = crop(keys[..., 0, :], images)
        jitter = jax.vmap(jax.vmap(lambda kk, im, bp, sp: photometric(kk, im, strength=aug.strength, blur_p=bp,
                                                                     solarize_p=sp), (0, 0, None, None)),
                          (0, 0, 0, 0))
        return jitter(keys[..., 1, :], out, jnp.asarray(blur[:n]), jnp.asarray(solar[:n]))

    k_g, k_l = jax.random.split(key)
    n_g = aug.num_global
    globals_ = views(k_g, n_g, aug.global_size, tuple(aug.global_scale), (1.0, 0.1) + (0.5,) * max(0, n_g - 2),
                     (0.0, 0.2) + (0.0,) * max(0, n_g - 2))
    if not aug.num_local:
        return globals_, None
    n_l = aug.num_local
    locals_ = views(k_l, n_l, aug.local_size, tuple(aug.local_scale), (0.5,) * n_l, (0.0,) * n_l)
    return globals_, locals_
