"""MIM-Refiner stage-3 training throughput (images/s) and model FLOP utilisation of a ViT.

    python benchmarks/vit_throughput.py --size base --patch 16 --image 224 --batch 256 --dtype bfloat16

One step = two 224-px global crops through the encoder, the NNA heads, the backward pass and the optimiser
update (the paper preset without local crops). FLOPs per step come from XLA's cost analysis of the compiled
step; utilisation = FLOPs / step time / ``--peak-tflops`` (H100 SXM dense bf16: 989).
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from jaxsuite.core import sharding
from jaxsuite.core.config import load_config
from jaxsuite.methods.mim_refiner import train
from jaxsuite.nn.vit import SIZES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="base", choices=sorted(SIZES))
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--peak-tflops", type=float, default=989.0)
    a = p.parse_args()
    dim, depth, heads = SIZES[a.size]
    cfg = load_config("mim_refiner", "paper", [
        f"model.dim={dim}", f"model.depth={depth}", f"model.heads={heads}", f"model.patch_size={a.patch}",
        f"model.dtype={a.dtype}", f"data.image_size={a.image}", f"aug.global_size={a.image}", "aug.num_local=0",
        f"batch_size={a.batch}", f"refine.head_blocks=(-1,{depth - 2},{depth - 3})", "refine.queue_size=8192",
        "refine.stage3_steps=1000"])
    mesh = sharding.make_mesh()
    state = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0), stage=3))()
    state = sharding.replicate(state, mesh)
    rng = np.random.default_rng(0)
    batch = sharding.shard_batch({"image": rng.random((a.batch, a.image, a.image, 3), np.float32),
                                  "idx": np.arange(a.batch, dtype=np.int32)}, mesh)
    step = jax.jit(train.train_step, donate_argnums=0)
    compiled = step.lower(state, batch).compile()
    flops = float((compiled.cost_analysis() or {}).get("flops", float("nan")))
    state, m = step(state, batch)
    jax.block_until_ready(m)
    for _ in range(3):
        state, m = step(state, batch)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(a.steps):
        state, m = step(state, batch)
    jax.block_until_ready(m)
    sec = (time.perf_counter() - t) / a.steps
    out = {"device": str(jax.devices()[0].device_kind), "vit": f"{a.size}/{a.patch}", "dtype": a.dtype,
           "batch": a.batch, "step_ms": sec * 1e3, "images_per_s": a.batch / sec, "flops_per_step": flops,
           "mfu": flops / sec / (a.peak_tflops * 1e12), "loss": float(m["loss"])}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
