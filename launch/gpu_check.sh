#!/usr/bin/env bash
# On a CUDA machine: print the devices, then jit and time a few train steps on the GPU.
#   launch/gpu_check.sh              NDDR-CNN steps
#   launch/gpu_check.sh mim_refiner  ViT-B/16 MIM-Refiner stage-3 throughput (images/s, bf16, batch 256) and MFU
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
if [ "${1:-nddr}" = "mim_refiner" ]; then
  python3 -c 'import jax; assert jax.devices()[0].platform == "gpu", "no GPU visible to JAX"'
  exec python3 benchmarks/vit_throughput.py --size base --patch 16 --image 224 --batch 256 --dtype bfloat16
fi
python3 - <<'PY'
import time
import jax
import numpy as np
print("jax", jax.__version__, "devices:", jax.devices())
assert jax.devices()[0].platform == "gpu", "no GPU visible to JAX (install jax[cuda12])"
from jaxsuite.core import sharding
from jaxsuite.core.config import load_config
from jaxsuite.methods.nddr import train
cfg = load_config("nddr", "quick", ["optim.decay_steps=100"])
mesh = sharding.make_mesh()
state = sharding.replicate(jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0)))(), mesh)
rng = np.random.default_rng(0)
n = 256 * len(jax.devices())
batch = {"image": rng.random((n, 20, 32, 1), np.float32), "left": rng.integers(0, 10, n).astype(np.int32),
         "right": rng.integers(0, 10, n).astype(np.int32)}
batch = sharding.shard_batch(batch, mesh)
step = jax.jit(train.train_step, donate_argnums=0)
t = time.perf_counter(); state, m = step(state, batch); jax.block_until_ready(m)
print(f"compile + first step {time.perf_counter() - t:.2f} s, loss {float(m['loss']):.4f}")
t = time.perf_counter()
for _ in range(50):
    state, m = step(state, batch)
jax.block_until_ready(m)
print(f"{(time.perf_counter() - t) / 50 * 1e3:.2f} ms/step at batch {n}; loss {float(m['loss']):.4f}; "
      f"params on {state.params['columns'][0]['stages'][0]['blocks'][0]['conv']['kernel'].devices()}")
PY
