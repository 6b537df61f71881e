"""Load pre-trained PyTorch ViT weights (MAE / timm layout, data2vec 2.0 fairseq layout) into :class:`ViT`.

``read_state_dict(path)`` reads ``.safetensors`` (numpy, no torch needed) or ``.pth``/``.pt``/``.bin``
(``torch.load`` with ``weights_only=True``: the optional ``vit-import`` extra); a checkpoint nested under
``model`` / ``state_dict`` / ``module`` is unwrapped. ``vit_from_state_dict(sd, heads=...)`` infers the
width, depth, patch size, image size and register count from the tensors and returns a loaded ViT;
``load_into(model, sd)`` fills an existing one and names every missing, unexpected or mis-shaped key.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.core.errors import UserError
from jaxsuite.nn.vit import ViT

_NESTING = ("model", "state_dict", "module", "teacher", "student")
_STRIP = ("module.", "model.", "encoder.", "backbone.")


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file
        sd = load_file(str(path))
    elif path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        try:
            import torch
        except ImportError as e:
            raise UserError(f"reading {path} needs PyTorch: pip install 'jaxsuite[vit-import]'") from e
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
        while isinstance(raw, Mapping) and len(raw) and not any(hasattr(v, "shape") for v in raw.values()):
            inner = next((raw[k] for k in _NESTING if k in raw), None)
            if inner is None:
                raise UserError(f"{path}: no tensors at the top level and none of the keys {_NESTING}; "
                                f"found {sorted(raw)[:8]}")
            raw = inner
        sd = {k: v.float().numpy() for k, v in raw.items() if hasattr(v, "numpy")}
    else:
        raise UserError(f"{path}: expected a .safetensors, .pth, .pt, .bin or .ckpt file")
    return normalise_keys(sd)


def normalise_keys(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Strip wrapper prefixes and translate the data2vec 2.0 fairseq layout to timm's key names."""
    out = {}
    for key, value in sd.items():
        for prefix in _STRIP:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = np.asarray(value)
    if any(k.startswith("modality_encoders.IMAGE.") for k in out):
        out = _from_data2vec2(out)
    return out


def _from_data2vec2(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fairseq data2vec 2.0 image encoder -> timm names (post-norm blocks keep the same inner names).

    Follows fairseq's ``extract_features``: the (optional) prenet ``context_encoder.blocks`` run before
    ``blocks``, so they are renumbered first; ``fixed_positional_encoder.positions`` covers the patches only."""
    pre = "modality_encoders.IMAGE."
    prenet = re.compile(re.escape(pre) + r"context_encoder\.blocks\.(\d+)\.(.*)")
    num_prenet = 1 + max((int(m.group(1)) for k in sd if (m := prenet.match(k))), default=-1)
    mapping = {
        pre + "local_encoder.proj.weight": "patch_embed.proj.weight",
        pre + "local_encoder.proj.bias": "patch_embed.proj.bias",
        pre + "extra_tokens": "cls_token",
        pre + "fixed_positional_encoder.positions": "pos_embed_patches",
        pre + "context_encoder.norm.weight": "embed_norm.weight",
        pre + "context_encoder.norm.bias": "embed_norm.bias",
    }
    out = {}
    for key, value in sd.items():
        if key in mapping:
            out[mapping[key]] = value
        elif m := prenet.match(key):
            out[f"blocks.{m.group(1)}.{m.group(2)}"] = value
        elif m := re.match(r"blocks\.(\d+)\.(.*)", key):
            out[f"blocks.{int(m.group(1)) + num_prenet}.{m.group(2)}"] = value
    if "pos_embed_patches" in out:  # data2vec 2.0: fixed positions for the patches only, none for the CLS token
        pos = out.pop("pos_embed_patches")
        out["pos_embed"] = np.concatenate([np.zeros_like(pos[:, :1]), pos], axis=1)
    return out


def infer_config(sd: Mapping[str, np.ndarray]) -> dict:
    """ViT constructor arguments that the tensors determine (all but the head count)."""
    for key in ("patch_embed.proj.weight", "pos_embed", "cls_token"):
        if key not in sd:
            raise UserError(f"state dict has no {key!r}: not a ViT in timm/MAE/data2vec 2.0 layout "
                            f"(keys: {sorted(sd)[:6]} ...)")
    dim, in_chans, patch, _ = sd["patch_embed.proj.weight"].shape
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    regs = sd["reg_token"].shape[1] if "reg_token" in sd else 0
    grid = int(round((sd["pos_embed"].shape[1] - 1 - regs) ** 0.5))
    hidden = sd["blocks.0.mlp.fc1.weight"].shape[0]
    return {"img_size": grid * patch, "patch_size": patch, "in_chans": in_chans, "dim": dim, "depth": depth,
            "mlp_ratio": hidden / dim, "num_registers": regs, "norm": "pre" if "norm.weight" in sd else "post",
            "embed_norm": "embed_norm.weight" in sd}


def _torch_to_nnx(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """timm names and PyTorch layouts -> '/'-joined nnx paths and flax layouts."""
    out = {}
    for key, value in sd.items():
        if key.startswith(("head.", "fc_norm.", "decoder", "mask_token")):
            continue  # classifier heads and MAE decoders are not part of the encoder
        path = key.replace(".", "/")
        if key == "patch_embed.proj.weight":
            out["patch_embed/kernel"] = value.transpose(2, 3, 1, 0)
        elif key == "patch_embed.proj.bias":
            out["patch_embed/bias"] = value
        elif key.endswith(("norm1.weight", "norm2.weight")) or key in ("norm.weight", "embed_norm.weight"):
            out[path[:-len("weight")] + "scale"] = value
        elif key.endswith(".weight") and value.ndim == 2:
            out[path[:-len("weight")] + "kernel"] = value.T
        else:
            out[path] = value
    return out


def load_into(model: ViT, sd: Mapping[str, np.ndarray]) -> ViT:
    """Copy ``sd`` (timm key names) into ``model`` in place; every mismatch is named in one error."""
    want = {"/".join(str(p) for p in path): leaf
            for path, leaf in nnx.to_flat_state(nnx.state(model, nnx.Variable))}
    got = _torch_to_nnx(sd)
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    shapes = [f"{k}: checkpoint {got[k].shape} vs model {want[k].shape}" for k in set(want) & set(got)
              if tuple(got[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        raise UserError("checkpoint does not fit the ViT: " + "; ".join(
            part for part in (f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                              f"mis-shaped {shapes}" if shapes else "") if part))
    state = nnx.state(model, nnx.Variable)
    for path, leaf in nnx.to_flat_state(state):
        leaf.set_value(jnp.asarray(got["/".join(str(p) for p in path)], leaf.get_value().dtype))
    nnx.update(model, state)
    return model


def vit_from_state_dict(sd: Mapping[str, np.ndarray], *, heads: int, dtype=jnp.float32, seed: int = 0) -> ViT:
    cfg = infer_config(sd)
    model = ViT(cfg.pop("img_size"), cfg.pop("patch_size"), cfg.pop("in_chans"), heads=heads, dtype=dtype,
                rngs=nnx.Rngs(seed), **cfg)
    return load_into(model, sd)
