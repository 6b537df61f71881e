"""MIM-Refiner's optimiser as optax transformations: AdamW (betas 0.9 / 0.95), warm-up + cosine schedule,
one parameter group per (encoder layer, decay / no decay) and for the heads via ``optax.multi_transform``:

* stage 2 -- the encoder is frozen: its groups are ``optax.set_to_zero()`` (no update, no weight decay);
* stage 3 -- layer-wise learning-rate decay (Clark et al. 2020; BEiT's form as the official
  ``layerwise_lr_decay_modifier``): layer id 0 = patch embedding, CLS/register tokens and positions, i+1 =
  block i, depth+1 = the final norm, scale = decay^(depth + 1 - id); heads at scale 1. Encoder weight decay 0.05,
  head weight decay 1e-5 (paper stage-3 settings); biases, norms and tokens are never decayed.
"""
from __future__ import annotations

import jax
import optax

_LAYER0 = ("patch_embed", "cls_token", "reg_token", "pos_embed", "embed_norm")
_NO_DECAY = ("cls_token", "reg_token", "pos_embed")


def _key(entry) -> str:
    return str(getattr(entry, "key", getattr(entry, "idx", entry)))


def layer_id(path, depth: int) -> int:
    """Encoder layer of a parameter path below ``params["encoder"]``."""
    first = _key(path[0])
    if first in _LAYER0:
        return 0
    if first == "blocks":
        return int(_key(path[1])) + 1
    if first == "norm":
        return depth + 1
    raise ValueError(f"unknown encoder parameter {'/'.join(_key(p) for p in path)}")


def labels(params, depth: int):
    def label(path, leaf):
        decay = leaf.ndim >= 2 and _key(path[-1]) not in _NO_DECAY
        suffix = "decay" if decay else "nodecay"
        if _key(path[0]) == "heads":
            return f"head_{suffix}"
        return f"enc{layer_id(path[1:], depth)}_{suffix}"
    return jax.tree_util.tree_map_with_path(label, params)


def refiner_optimizer(o, *, depth: int, steps: int, freeze_encoder: bool) -> optax.GradientTransformation:
    """``o``: lr, warmup_fraction, encoder_weight_decay, head_weight_decay, layer_decay."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, o.lr, max(1, int(o.warmup_fraction * steps)), max(steps, 2))

    def adamw(scale: float, wd: float):
        return optax.adamw(lambda step: scale * schedule(step), b1=0.9, b2=0.95, weight_decay=wd)

    transforms = {"head_decay": adamw(1.0, o.head_weight_decay), "head_nodecay": adamw(1.0, 0.0)}
    for i in range(depth + 2):
        scale = o.layer_decay ** (depth + 1 - i)
        for suffix, wd in (("decay", o.encoder_weight_decay), ("nodecay", 0.0)):
            transforms[f"enc{i}_{suffix}"] = optax.set_to_zero() if freeze_encoder else adamw(scale, wd)
    return optax.multi_transform(transforms, lambda params: labels(params, depth))
