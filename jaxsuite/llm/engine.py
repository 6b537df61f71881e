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
        self._score = nnx.jit(llama.score_continuations)

    def render(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.encode(self.tokenizer.render_chat(messages))

    def chat(self, conversations: list[list[dict]], settings: GenerationSettings = GenerationSettings(),
             progress=None) -> list[str]:
        """One reply per conversation (a list of {"role", "content"} messages)."""
        return self.complete_tokens([self.render(c) for c in conversations], settings, progress)

    def complete_tokens(self, prompts: list[list[int]], settings: GenerationSettings, progress=None) -> list[str]:
        out: list[str] = [""] * len(prompts)
        key = jax.random.key(settings.seed)
        for n, (idx, tokens, valid, prefix) in enumerate(self._batches(prompts, settings.max_new_tokens)):
            gen, lengths = self._generate(
                self.model, tokens, valid, jax.random.fold_in(key, n), max_new_tokens=settings.max_new_tokens,
                stop_ids=self.tokenizer.stop_ids, temperature=float(settings.temperature), top_p=float(settings.top_p),
                pad_id=self.tokenizer.eos_id, prefix=prefix)
            gen, lengths = np.asarray(gen), np.asarray(lengths)
            for r, i in enumerate(idx):
                out[i] = self.tokenizer.decode(gen[r, :lengths[r]])
            if progress is not None:
                progress(len(idx))
        return out

    def score_choices(self, conversations: list[list[dict]], choices: list[str], progress=None) -> np.ndarray:
        """``[len(conversations), len(choices)]``: the log-likelihood of each choice as the start of the
        assistant's reply (multiple-choice scoring, as in lm-evaluation-harness)."""
        ids = [self.tokenizer.encode(c) for c in choices]
        k = max(map(len, ids))
        conts = np.full((len(ids), k), self.tokenizer.eos_id, np.int32)
        for c, row in enumerate(ids):
            conts[c, :len(row)] = row
        lengths = jnp.asarray([len(r) for r in ids], jnp.int32)
        scores = np.zeros((len(conversations), len(choices)))
        for idx, tokens, valid, prefix in self._batches([self.render(c) for c in conversations], k):
            out = np.asarray(self._score(self.model, tokens, valid, jnp.asarray(conts), lengths, prefix=prefix))
            scores[idx] = out[:len(idx)]
            if progress is not None:
                progress(len(idx))
        return scores

    def _batches(self, prompts: list[list[int]], new_tokens: int):
        """(row indices, tokens, valid, shared-prefix cache) per batch: rows sorted by length, left-padded to a
        multiple of ``pad_to``; the longest prefix every prompt shares is run once (``prefill_prefix``)."""
        if not prompts:
            return
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
        rows_per_batch = _even_rows(len(prompts), self.batch_size)
        for start in range(0, len(order), rows_per_batch):
            idx = order[start:start + rows_per_batch]
            rows = [prompts[i][shared:] for i in idx]
            t = self.pad_to * math.ceil(max(map(len, rows)) / self.pad_to)
            if shared + t + new_tokens > limit:
                raise ValueError(f"a prompt of {shared + max(map(len, rows))} tokens plus {new_tokens} new tokens "
                                 f"exceeds the model's context of {limit}")
            tokens = np.full((rows_per_batch, t), self.tokenizer.eos_id, np.int32)
            valid = np.zeros((rows_per_batch, t), bool)
            for r, row in enumerate(rows):
                tokens[r, t - len(row):], valid[r, t - len(row):] = row, True
            valid[len(rows):, -1] = True  # filler rows (a short last batch) hold one token, so no row is empty
            yield idx, jnp.asarray(tokens), jnp.asarray(valid), prefix


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


def _even_rows(n: int, batch_size: int, multiple: int = 8) -> int:
    """Rows per batch so that ``n`` prompts fill their batches evenly (200 at 64 a batch: 4 x 56, not 3 x 64 and a
    batch of 8 padded to 64), a multiple of ``multiple`` to keep the compiled shapes few."""
    batches = math.ceil(n / batch_size)
    return min(batch_size, multiple * math.ceil(math.ceil(n / batches) / multiple))
