"""Tiny Llama checkpoints for tests, written as llama.cpp and HuggingFace would, and a plain numpy reference
implementation of the same model (no cache, no padding: the textbook forward pass) to check ours against."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxsuite.nn.llama import LlamaConfig

TINY = LlamaConfig(vocab_size=259, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=48, rope_theta=10000.0,
                   norm_eps=1e-5, tie_embeddings=True, max_seq_len=4096)
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")


def tiny_weights(config: LlamaConfig = TINY, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights under HuggingFace names, ``[out, in]``."""
    rng = np.random.default_rng(seed)
    c, hd = config, config.head_dim
    w = {"model.embed_tokens.weight": rng.normal(0, 1.0, (c.vocab_size, c.dim)),
         "model.norm.weight": rng.uniform(0.5, 1.5, c.dim)}
    for i in range(c.n_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = rng.uniform(0.5, 1.5, c.dim)
        w[p + "post_attention_layernorm.weight"] = rng.uniform(0.5, 1.5, c.dim)
        for name, shape in (("self_attn.q_proj", (c.n_heads * hd, c.dim)), ("self_attn.k_proj", (c.n_kv_heads * hd, c.dim)),
                            ("self_attn.v_proj", (c.n_kv_heads * hd, c.dim)), ("self_attn.o_proj", (c.dim, c.n_heads * hd)),
                            ("mlp.gate_proj", (c.ffn_dim, c.dim)), ("mlp.up_proj", (c.ffn_dim, c.dim)),
                            ("mlp.down_proj", (c.dim, c.ffn_dim))):
            w[p + name + ".weight"] = rng.normal(0, shape[1] ** -0.5, shape)
    if not c.tie_embeddings:
        w["lm_head.weight"] = rng.normal(0, c.dim ** -0.5, (c.vocab_size, c.dim))
    return {k: v.astype(np.float32) for k, v in w.items()}


def _vocab() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return [*SPECIALS, *sorted(ByteLevel.alphabet())]


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (rotary halves interleaved per head)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path: Path, config: LlamaConfig = TINY, weights=None, *, name="tiny-llama", tokens=None,
               token_types=None, merges=(), pre="smollm", chat_template=CHAT_TEMPLATE, bos=1, eos=2) -> Path:
    """A float32 GGUF as llama.cpp's converter writes it (q/k rows permuted); the byte-level tiny tokenizer
    unless ``tokens`` (with ``token_types``, ``merges``) are given."""
    import gguf

    weights = tiny_weights(config) if weights is None else weights
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name(name)
    wr.add_block_count(config.n_layers)
    wr.add_context_length(config.max_seq_len)
    wr.add_embedding_length(config.dim)
    wr.add_feed_forward_length(config.ffn_dim)
    wr.add_head_count(config.n_heads)
    wr.add_head_count_kv(config.n_kv_heads)
    wr.add_rope_freq_base(config.rope_theta)
    wr.add_layer_norm_rms_eps(config.norm_eps)
    vocab = _vocab() if tokens is None else list(tokens)
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre(pre)
    wr.add_token_list(vocab)
    wr.add_token_types(list(token_types) if token_types is not None
                       else [3] * len(SPECIALS) + [1] * (len(vocab) - len(SPECIALS)))
    wr.add_token_merges(list(merges))
    wr.add_bos_token_id(bos)
    wr.add_eos_token_id(eos)
    wr.add_chat_template(chat_template)
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    wr.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    wr.add_tensor("output_norm.weight", weights["model.norm.weight"])
    if not config.tie_embeddings:
        wr.add_tensor("output.weight", weights["lm_head.weight"])
    for i in range(config.n_layers):
        for hf, gg in names.items():
            w = weights[f"model.layers.{i}.{hf}.weight"]
            if gg == "attn_q":
                w = _permute(w, config.n_heads)
            elif gg == "attn_k":
                w = _permute(w, config.n_kv_heads)
            wr.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(w))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return path


def write_hf_folder(folder: Path, config: LlamaConfig = TINY, weights=None) -> Path:
    from safetensors.numpy import save_file
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    weights = tiny_weights(config) if weights is None else weights
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "vocab_size": config.vocab_size, "hidden_size": config.dim,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "intermediate_size": config.ffn_dim,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings, "max_position_embeddings": config.max_seq_len}))
    vocab = _vocab()
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tk.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": CHAT_TEMPLATE}))
    return folder


def reference_logits(weights: dict[str, np.ndarray], config: LlamaConfig, tokens) -> np.ndarray:
    """Logits ``[T, vocab]`` of one unpadded sequence: the Llama forward pass in float64 numpy."""
    c, hd = config, config.head_dim
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = w["model.embed_tokens.weight"][np.asarray(tokens)]
    t = len(tokens)

    def norm(h, scale):
        return h / np.sqrt(np.mean(h * h, -1, keepdims=True) + c.norm_eps) * scale

    half = hd // 2
    ang = np.arange(t)[:, None] * (1.0 / c.rope_theta ** (np.arange(half) / half))[None]
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]

    def rope(v):  # [T, H, hd], HF rotate_half
        a, b = v[..., :half], v[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    for i in range(c.n_layers):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, c.n_heads, hd))
        k = rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, c.n_kv_heads, hd))
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, c.n_kv_heads, hd)
        rep = c.n_heads // c.n_kv_heads
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd)
        s = np.where(np.tril(np.ones((t, t), bool))[None], s, -np.inf)
        pr = np.exp(s - s.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", pr, v).reshape(t, c.n_heads * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if c.tie_embeddings else w["lm_head.weight"]
    return x @ head.T


def dequantized_copy(src: Path, dst: Path) -> Path:
    """``src`` (a quantised Llama GGUF) rewritten with float32 weights and the same tokenizer and template, so
    that llama.cpp runs it without quantising activations."""
    import gguf

    from jaxsuite.nn.llama_checkpoint import _read_gguf

    config, weights, _, name = _read_gguf(src)
    meta = {k: f.contents() for k, f in gguf.GGUFReader(str(src)).fields.items()}
    return write_gguf(dst, config, weights, name=name, tokens=meta["tokenizer.ggml.tokens"],
                      token_types=meta["tokenizer.ggml.token_type"], merges=meta["tokenizer.ggml.merges"],
                      pre=meta["tokenizer.ggml.pre"], chat_template=meta["tokenizer.chat_template"],
                      bos=meta["tokenizer.ggml.bos_token_id"], eos=meta["tokenizer.ggml.eos_token_id"])
