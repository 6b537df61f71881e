"""ViT: timm parity on random weights (MAE/timm layout), data2vec 2.0 layout against a numpy reference,
checkpoint errors, MAE's sin-cos table."""
import os

import numpy as np
import pytest
from flax import nnx

from jaxsuite.core.errors import UserError
from jaxsuite.nn import vit_import
from jaxsuite.nn.vit import ViT, sincos_2d


def _ln(x, w, b, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    from scipy.special import erf
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _attn(x, sd, p, heads):
    b, t, d = x.shape
    qkv = x @ sd[p + "qkv.weight"].T + sd[p + "qkv.bias"]
    q, k, v = qkv.reshape(b, t, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)
    a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads)
    a = np.exp(a - a.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    return (a @ v).transpose(0, 2, 1, 3).reshape(b, t, d) @ sd[p + "proj.weight"].T + sd[p + "proj.bias"]


def _data2vec2_reference(sd, images, heads, depth, patch):
    """fairseq data2vec 2.0 ``extract_features`` (no mask) written out in numpy, from the fairseq key names."""
    pre = "modality_encoders.IMAGE."
    w = sd[pre + "local_encoder.proj.weight"]  # [D, C, p, p]
    b, h, wd, c = images.shape
    g = h // patch
    cols = images.reshape(b, g, patch, g, patch, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, g * g, -1)
    x = cols @ w.reshape(w.shape[0], -1).T + sd[pre + "local_encoder.proj.bias"]
    x = x + sd[pre + "fixed_positional_encoder.positions"]
    x = np.concatenate([np.broadcast_to(sd[pre + "extra_tokens"], (b, 1, x.shape[-1])), x], axis=1)
    x = _ln(x, sd[pre + "context_encoder.norm.weight"], sd[pre + "context_encoder.norm.bias"])
    names = [f"{pre}context_encoder.blocks.0."] + [f"blocks.{i}." for i in range(depth - 1)]
    for p in names:
        x = _ln(x + _attn(x, sd, p + "attn.", heads), sd[p + "norm1.weight"], sd[p + "norm1.bias"])
        hdn = _gelu(x @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
        x = _ln(x + hdn @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"], sd[p + "norm2.weight"],
                sd[p + "norm2.bias"])
    return x


def test_data2vec2_layout_matches_numpy_reference(tmp_path):
    """A fairseq-layout state dict (one prenet block + 2 blocks, random values) loads into a post-norm ViT with
    an embedding norm and a position-less CLS token, and computes what fairseq computes."""
    rng = np.random.default_rng(0)
    d, heads, patch, img, c = 32, 4, 4, 16, 3
    pre = "modality_encoders.IMAGE."
    sd = {pre + "local_encoder.proj.weight": rng.normal(0, 0.2, (d, c, patch, patch)),
          pre + "local_encoder.proj.bias": rng.normal(0, 0.2, d), pre + "extra_tokens": rng.normal(0, 1, (1, 1, d)),
          pre + "fixed_positional_encoder.positions": sincos_2d(img // patch, d, 0)[None],
          pre + "context_encoder.norm.weight": 1 + rng.normal(0, 0.1, d),
          pre + "context_encoder.norm.bias": rng.normal(0, 0.1, d),
          pre + "decoder.blocks.0.weight": rng.normal(0, 1, (4, 4)), "_unrelated.bias": np.zeros(2)}
    for p in [f"{pre}context_encoder.blocks.0."] + ["blocks.0.", "blocks.1."]:
        for name, shape in (("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)), ("mlp.fc1", (4 * d, d)),
                            ("mlp.fc2", (d, 4 * d))):
            sd[p + name + ".weight"] = rng.normal(0, 0.15, shape)
            sd[p + name + ".bias"] = rng.normal(0, 0.1, shape[0])
        for name in ("norm1", "norm2"):
            sd[f"{p}{name}.weight"] = 1 + rng.normal(0, 0.1, d)
            sd[f"{p}{name}.bias"] = rng.normal(0, 0.1, d)
    sd = {k: v.astype(np.float32) for k, v in sd.items()}
    from safetensors.numpy import save_file
    path = tmp_path / "d2v2.safetensors"
    save_file(sd, str(path))
    model = vit_import.vit_from_state_dict(vit_import.read_state_dict(path), heads=heads)
    assert model.depth == 3 and model.embed_norm is not None and model.norm is None
    images = rng.normal(0, 1, (2, img, img, c)).astype(np.float32)
    ours = np.asarray(model(images).tokens)
    ref = _data2vec2_reference(sd, images, heads, 3, patch)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_timm_vit_equivalence(tmp_path):
    """Our forward pass equals timm's VisionTransformer on the same random weights (pre-norm, a register token),
    final tokens and every block's output, max abs difference <= 1e-4 in float32; through a .pth file."""
    if os.environ.get("JAXSUITE_REQUIRE_TIMM"):  # `make test-vit-import`: a missing timm is a failure, not a skip
        import timm.models.vision_transformer as timm_vit
        import torch
    else:
        torch = pytest.importorskip("torch")
        timm_vit = pytest.importorskip("timm.models.vision_transformer")
    torch.manual_seed(0)
    ref = timm_vit.VisionTransformer(img_size=32, patch_size=8, in_chans=3, embed_dim=64, depth=3, num_heads=4,
                                     num_classes=0, reg_tokens=1).eval()
    with torch.no_grad():
        for p in ref.parameters():  # beyond timm's init (zero biases, unit norms, ~0 CLS): every weight matters
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "mae_like.pth"
    torch.save({"model": ref.state_dict()}, path)
    model = vit_import.vit_from_state_dict(vit_import.read_state_dict(path), heads=4)
    x = np.random.default_rng(1).normal(0, 1, (3, 32, 32, 3)).astype(np.float32)
    out = model(x)
    with torch.no_grad():
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        tokens = ref.forward_features(xt).numpy()
        h = ref._pos_embed(ref.patch_embed(xt))
        blocks = []
        for blk in ref.blocks:
            h = blk(h)
            blocks.append(h.numpy())
    assert np.abs(np.asarray(out.tokens) - tokens).max() <= 1e-4
    for ours, theirs in zip(out.blocks, blocks, strict=True):
        assert np.abs(np.asarray(ours) - theirs).max() <= 1e-4


def test_checkpoint_errors_name_the_problem(tmp_path):
    model = ViT(16, 4, 3, dim=32, depth=2, heads=4, rngs=nnx.Rngs(0))
    with pytest.raises(UserError, match="patch_embed.proj.weight"):
        vit_import.infer_config({"cls_token": np.zeros((1, 1, 32))})
    bad = {"patch_embed.proj.weight": np.zeros((32, 3, 4, 4)), "cls_token": np.zeros((1, 1, 32)),
           "pos_embed": np.zeros((1, 17, 32)), "norm.weight": np.ones(32), "norm.bias": np.zeros(32)}
    with pytest.raises(UserError, match=r"missing \[.*blocks/0/attn/qkv/kernel"):
        vit_import.load_into(model, bad)
    with pytest.raises(UserError, match="not found"):
        vit_import.read_state_dict(tmp_path / "nope.safetensors")
    with pytest.raises(UserError, match="expected a .safetensors"):
        (tmp_path / "w.npz").write_bytes(b"")
        vit_import.read_state_dict(tmp_path / "w.npz")


def test_sincos_matches_mae_definition():
    """MAE's table: zero CLS row; first half of the channels encodes the column, second half the row."""
    t = sincos_2d(3, 8)
    assert t.shape == (10, 8) and not t[0].any()
    # patch (row 1, col 2) is index 1 + 1*3 + 2; with dim 8 each half is [sin(p), sin(p/100), cos(p), cos(p/100)]
    row, col = 1, 2
    np.testing.assert_allclose(t[1 + row * 3 + col], [np.sin(col), np.sin(col / 100), np.cos(col), np.cos(col / 100),
                                                      np.sin(row), np.sin(row / 100), np.cos(row), np.cos(row / 100)],
                               atol=1e-6)
