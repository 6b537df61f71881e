"""Batched chat generation with a JAX Llama: message lists in, texts out.

Requests are tokenised with the checkpoint's chat template, sorted by length and cut into batches of a fixed
size; each batch is left-padded to a multiple of ``pad_to`` tokens so that a handful of compiled shapes serve a
whole benchmark. The longest token prefix that every request of a call shares (a system prompt, a judge
template) is run once and its KV cache reused by every batch (:func:`jaxsuite.nn.llama.prefill_prefix`).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxsuite.nn import llama
from jaxsuite.nn.llama_checkpoint import LoadedLlama


@dataclasses.dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def key(self) -> dict:
        return dataclasses.asdict(self)


class ChatEngine:
    """Generate with a loaded model; ``batch_size`` rows per compiled call."""

    def __init__(self, loaded: LoadedLlama, batch_size: int = 16, pad_to: int = 32, min_shared_prefix: int = 16):
        self.loaded = loaded
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.name = loaded.name
        self.batch_size, self.pad_to, self.min_shared_prefix = batch_size, pad_to, min_shared_prefix
        self._generate = llama.make_generate()
        self._prefill = nnx.jit(llama.prefill_prefix)

    def render(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.encode(self.tokenizer.render_chat(messages))

    def chat(self, conversations: list[list[dict]], settings: GenerationSettings = GenerationSettings(),
             progress=None) -> list[str]:
        """One reply per conversation (a list of {"role", "content"} messages)."""
        return self.complete_tokens([self.render(c) for c in conversations], settings, progress)

    def complete_tokens(self, prompts: list[list[int]], settings: GenerationSettings, progress=None) -> list[str]:
        if not prompts:
            return []
        limit = self.model.config.max_seq_len
        shared = _common_prefix(prompts) if len(prompts) > 1 else 0
        shared = min(shared, min(len(p) for p in prompts) - 1)  # every row keeps at least one token of its own
        shared = shared - shared % self.pad_to  # a few prefix shapes, not one per call
        prefix = None
        if shared >= self.min_shared_prefix:
            prefix = self._prefill(self.model, jnp.asarray(prompts[0][:shared], jnp.int32))
        else:
            shared = 0
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        key = jax.random.key(settings.seed)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            rows = [prompts[i][shared:] for i in idx]
            t = self.pad_to * math.ceil(max(map(len, rows)) / self.pad_to)
            if shared + t + settings.max_new_tokens > limit:
                raise ValueError(f"a prompt of {shared + max(map(len, rows))} tokens plus max_new_tokens "
                                 f"{settings.max_new_tokens} exceeds the model's context of {limit}")
            tokens = np.full((self.batch_size, t), self.tokenizer.eos_id, np.int32)
            valid = np.zeros((self.batch_size, t), bool)
            for r, row in enumerate(rows):
                tokens[r, t - len(row):], valid[r, t - len(row):] = row, True
            valid[len(rows):, -1] = True  # filler rows (a short last batch) hold one token, so no row is empty
            gen, lengths = self._generate(
                self.model, jnp.asarray(tokens), jnp.asarray(valid), jax.random.fold_in(key, start),
                max_new_tokens=settings.max_new_tokens, stop_ids=self.tokenizer.stop_ids,
                temperature=float(settings.temperature), top_p=float(settings.top_p), pad_id=self.tokenizer.eos_id,
                prefix=prefix)
            gen, lengths = np.asarray(gen), np.asarray(lengths)
            for r, i in enumerate(idx):
                out[i] = self.tokenizer.decode(gen[r, :lengths[r]])
            if progress is not None:
                progress(len(idx))
        return out


def _common_prefix(seqs: list[list[int]]) -> int:
    first = np.asarray(seqs[0])
    n = len(first)
    for s in seqs[1:]:
        m = min(n, len(s))
        diff = np.nonzero(first[:m] != np.asarray(s[:m]))[0]
        n = int(diff[0]) if diff.size else m
        if n == 0:
            break
    return n

