"""Env steps per second: ``cheetah_vel_sparse`` on MJX, vmapped over N environments and jitted over a whole
rollout (``lax.scan``), against gymnasium's HalfCheetah-v5 vector env (CPU MuJoCo, ``SyncVectorEnv``) with the same
N, on the same machine. Both step the same physics (gymnasium's half_cheetah.xml, 5 MuJoCo steps per action) with
uniform random actions; the MJX side also computes the sparse reward and observation of our task.

    python benchmarks/envs_throughput.py --json benchmarks/results/envs_throughput.json
    python benchmarks/envs_throughput.py --sizes 1,64,1024,4096 --steps 200   # e.g. on a GPU

Timing: the MJX rollout of ``--steps`` steps is compiled and run once untimed, then timed ``--rounds`` times
(median); the gymnasium vector env is stepped ``--steps`` times after a reset, ``--rounds`` times (median).
Compile time is reported separately. Not part of the tests. On the 2-core CPU of our CI machine one vmap over
1024 environments compiles and then deadlocks: gdb shows both threads of XLA's intra-op pool inside jaxlib's
batched LAPACK Cholesky (``lapack_spotrf_ffi`` -> ``ParallelBatchMap``), each waiting for sub-tasks queued on
the same, fully blocked pool (MJX's Newton solver factors one matrix per environment). ``--block 64`` steps them
as sequential vmapped blocks of 64 environments inside the same jitted rollout, which runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def mjx_rollout_fn(num_envs: int, steps: int, block: int = 0):
    """A jitted rollout of ``steps`` steps of ``num_envs`` environments; ``block`` > 0 steps them as sequential
    vmapped blocks of ``block`` environments (``lax.map``) instead of one vmap over all of them."""
    from jaxsuite.envs import cheetah_vel

    if 0 < block < num_envs and num_envs % block:
        raise SystemExit(f"--block {block} must divide the number of environments {num_envs}")
    blocks = num_envs // block if 0 < block < num_envs else 1
    step = jax.vmap(cheetah_vel.step)

    def rollout(key):
        k_reset, k_act = jax.random.split(key)
        tasks = jnp.linspace(0.0, 3.0, num_envs)
        state, _ = jax.vmap(cheetah_vel.reset)(jax.random.split(k_reset, num_envs), tasks)
        state = jax.tree.map(lambda x: x.reshape(blocks, num_envs // blocks, *x.shape[1:]), state)

        def one(state, k):
            action = jax.random.uniform(k, (blocks, num_envs // blocks, 6), minval=-1.0, maxval=1.0)
            state, obs, reward, _, _ = jax.lax.map(lambda sa: step(*sa), (state, action))
            return state, reward.sum() + obs.sum() * 0.0

        _, out = jax.lax.scan(one, state, jax.random.split(k_act, steps))
        return out.sum()

    return jax.jit(rollout)


def time_mjx(num_envs: int, steps: int, rounds: int, block: int = 0) -> dict:
    fn = mjx_rollout_fn(num_envs, steps, block)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.PRNGKey(r + 1)))
        times.append(time.perf_counter() - t0)
    return {"steps_per_s": num_envs * steps / statistics.median(times), "first_call_s": compile_s}


def time_gymnasium(num_envs: int, steps: int, rounds: int) -> dict:
    import gymnasium

    envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("HalfCheetah-v5") for _ in range(num_envs)])
    rng = np.random.default_rng(0)
    times = []
    for r in range(rounds):
        envs.reset(seed=r)
        actions = rng.uniform(-1, 1, size=(steps, num_envs, 6)).astype(np.float32)
        t0 = time.perf_counter()
        for a in actions:
            envs.step(a)
        times.append(time.perf_counter() - t0)
    envs.close()
    return {"steps_per_s": num_envs * steps / statistics.median(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,64,1024", help="numbers of parallel environments")
    p.add_argument("--steps", type=int, default=100, help="steps per rollout")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--block", type=int, default=0,
                   help="step the MJX environments as sequential vmapped blocks of this many (0: one vmap over all). "
                        "On a 2-core CPU a vmap over 1024 deadlocks in jaxlib's batched LAPACK Cholesky")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    rows = []
    out = {"device": str(jax.devices()[0]), "platform": platform.platform(), "processor": platform.processor(),
           "cpu_count": os.cpu_count(), "steps": args.steps, "rounds": args.rounds, "block": args.block,
           "rows": rows}
    for n in (int(s) for s in args.sizes.split(",")):
        mjx = time_mjx(n, args.steps, args.rounds, args.block)
        gym = time_gymnasium(n, args.steps, args.rounds)
        row = {"num_envs": n, "mjx_steps_per_s": mjx["steps_per_s"], "mjx_first_call_s": mjx["first_call_s"],
               "gymnasium_steps_per_s": gym["steps_per_s"],
               "mjx_over_gymnasium": mjx["steps_per_s"] / gym["steps_per_s"]}
        rows.append(row)
        print(f"N={n:5d}  MJX {row['mjx_steps_per_s']:10.0f} steps/s (first call {row['mjx_first_call_s']:.0f} s)  "
              f"gymnasium {row['gymnasium_steps_per_s']:10.0f} steps/s  ratio {row['mjx_over_gymnasium']:.3f}",
              flush=True)
        if args.json:  # after every size, so a size that fails or hangs keeps the others
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
