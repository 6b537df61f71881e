"""Tokenizer and chat template of a Llama checkpoint, with HuggingFace ``tokenizers`` and a sandboxed Jinja2.

From GGUF metadata: byte-level BPE (``tokenizer.ggml.model == "gpt2"``) with the pre-tokenizer llama.cpp names in
``tokenizer.ggml.pre`` (``smollm``: single digits, then the GPT-2 split; ``gpt2``/``default``: the GPT-2 split);
control tokens (type 3) are special tokens, matched whole and never split. Other tokenizer models
(SentencePiece ``llama``, Llama-3 ``llama-bpe``) raise a clear error: load a HuggingFace folder with
``tokenizer.json`` for those.
"""
from __future__ import annotations

import json
from pathlib import Path

from jaxsuite.core.errors import UserError

_PRE_TOKENIZERS = ("smollm", "gpt2", "default")


class ChatTokenizer:
    def __init__(self, tokenizer, chat_template: str | None, bos: str | None, eos: str | None, eos_id: int,
                 extra_stop_ids=()):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.bos, self.eos, self.eos_id = bos, eos, eos_id
        self.stop_ids = tuple(sorted({eos_id, *extra_stop_ids}))
        self._template = None

    @classmethod
    def from_gguf_metadata(cls, meta: dict, path: Path) -> "ChatTokenizer":
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        kind, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "default")
        if kind != "gpt2" or pre not in _PRE_TOKENIZERS:
            raise UserError(f"{path}: tokenizer {kind!r} with pre-tokenizer {pre!r} is not supported from GGUF "
                            f"(supported: gpt2 BPE with {', '.join(_PRE_TOKENIZERS)}); use a HuggingFace folder")
        tokens = list(meta["tokenizer.ggml.tokens"])
        types = list(meta.get("tokenizer.ggml.token_type", [1] * len(tokens)))
        merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
        tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tk.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                            if pre == "smollm" else byte_level)
        tk.decoder = decoders.ByteLevel()
        tk.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                               for i, ty in enumerate(types) if ty == 3])
        bos_id, eos_id = meta.get("tokenizer.ggml.bos_token_id"), int(meta["tokenizer.ggml.eos_token_id"])
        template = meta.get("tokenizer.chat_template")
        extra = [tokens.index("<|im_end|>")] if "<|im_end|>" in tokens else []
        return cls(tk, template, tokens[bos_id] if bos_id is not None else None, tokens[eos_id], eos_id, extra)

    @classmethod
    def from_hf_folder(cls, path: Path) -> "ChatTokenizer":
        from tokenizers import Tokenizer

        if not (path / "tokenizer.json").exists():
            raise UserError(f"{path}: no tokenizer.json")
        tk = Tokenizer.from_file(str(path / "tokenizer.json"))
        cfg_path = path / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        tok = lambda v: v.get("content") if isinstance(v, dict) else v  # noqa: E731
        bos, eos = tok(cfg.get("bos_token")), tok(cfg.get("eos_token"))
        if eos is None or tk.token_to_id(eos) is None:
            raise UserError(f"{cfg_path}: eos_token missing or not in the vocabulary")
        gen_path = path / "generation_config.json"
        gen_eos = json.loads(gen_path.read_text()).get("eos_token_id", []) if gen_path.exists() else []
        extra = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        return cls(tk, cfg.get("chat_template"), bos, eos, tk.token_to_id(eos), extra)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``messages`` ([{"role", "content"}]), in a sandboxed Jinja2."""
        if self.chat_template is None:
            raise UserError("this checkpoint has no chat template; pass raw prompts instead of chat messages")
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            self._template = env.from_string(self.chat_template)
        return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                     bos_token=self.bos or "", eos_token=self.eos or "")
