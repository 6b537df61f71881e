"""Conformer-CTC training throughput (utterances/s) of whistle's train step, e.g. Whistle-S in bf16 on a GPU.

    python benchmarks/conformer_throughput.py --preset paper --batch 64 --frames 1000 --dtype bfloat16 \
        --json benchmarks/results/conformer_throughput.json          # Conformer-S (14 x 512), on an accelerator
    python benchmarks/conformer_throughput.py --preset quick --batch 16 --frames 128 --dtype float32   # CPU

The step is ``jaxsuite.methods.whistle.train.ctc_step`` (SpecAugment, dropout, CTC, Adam) with the preset's model,
on random features of ``--frames`` frames and random phone labels (``--frames`` / 8 of them); the batch is sharded
over all devices on the ``data`` axis. One untimed step compiles; then ``--steps`` steps are timed ``--rounds`` times
(median). Not part of the tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core import sharding
from jaxsuite.core.config import set_key
from jaxsuite.methods.whistle import train


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--units", type=int, default=76)
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    cfg = config_lib.load_config("whistle", args.preset)
    set_key(cfg, "model.compute_dtype", args.dtype)
    rng = np.random.default_rng(0)
    labels = args.frames // 8
    batch = {"feats": rng.standard_normal((args.batch, args.frames, cfg.model.in_dim)).astype(np.float32),
             "feat_len": np.full(args.batch, args.frames, np.int32),
             "labels": rng.integers(1, args.units, (args.batch, labels)).astype(np.int32),
             "label_len": np.full(args.batch, labels, np.int32)}
    mesh = sharding.make_mesh()
    state = sharding.replicate(train.init(cfg, jax.random.PRNGKey(0), optim=cfg.pretrain.optim, units=args.units),
                               mesh)
    batch = sharding.shard_batch(batch, mesh)
    step = jax.jit(train.step_fn("ctc", cfg), donate_argnums=0)
    t0 = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append((time.perf_counter() - t0) / args.steps)
    params = sum(x.size for x in jax.tree.leaves(state.params))
    out = {"preset": args.preset, "dtype": args.dtype, "batch": args.batch, "frames": args.frames,
           "params": int(params), "devices": sharding.describe_devices(), "device_kind": jax.devices()[0].device_kind,
           "seconds_per_step": statistics.median(times), "utterances_per_second": args.batch / statistics.median(times),
           "compile_seconds": compile_s, "loss": float(metrics["loss"]), "jax": jax.__version__,
           "host": platform.node()}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
