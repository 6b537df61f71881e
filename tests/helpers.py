"""Shared test helpers: run the CLI as a subprocess; tiny NDDR configs."""
from __future__ import annotations

import os
import subprocess
import sys

TINY = ["data.n_train=256", "data.n_test=64", "model.channels=(4,8,8)", "model.head_hidden=16",
        "batch_size=16", "eval_batch_size=64", "log_every=2", "checkpoint_every=4"]


def cli(*args: str, env: dict | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "jaxsuite", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, **kw)


def sets(*items: str) -> list[str]:
    out = []
    for item in items:
        out += ["--set", item]
    return out


def tiny_config(overrides=(), preset: str = "quick"):
    from jaxsuite.core.config import load_config

    return load_config("nddr", preset, [*TINY, *overrides])


def assert_sharded_step_equals_single_device_step(step, state, batch, *, rtol=1e-4, atol=1e-6):
    """``jax.jit(step)`` on ``batch`` sharded over the test's 4 devices gives the single-device metrics and
    parameters. Attention key biases are skipped: softmax is invariant to them, so their true gradient is exactly
    zero and Adam turns float noise of either layout into +-lr steps. Returns the single-device metrics."""
    import chex
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsuite.core.sharding import make_mesh, replicate, shard_batch

    jitted = jax.jit(step, donate_argnums=0)  # as fit jits it (its sharded compilation is shared)
    mesh = make_mesh()
    sharded = shard_batch(batch, mesh)
    assert all(len(x.sharding.device_set) == 4 for x in jax.tree.leaves(sharded))
    want, want_m = jitted(jax.tree.map(jnp.copy, state), batch)
    got, got_m = jitted(replicate(jax.tree.map(jnp.copy, state), mesh), sharded)
    chex.assert_trees_all_close(got_m, want_m, rtol=rtol, atol=atol)
    flat_got = jax.tree_util.tree_flatten_with_path(got.params)[0]
    flat_want = jax.tree_util.tree_flatten_with_path(want.params)[0]
    for (path, a), (_, b) in zip(flat_got, flat_want):
        if "key" not in jax.tree_util.keystr(path):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=jax.tree_util.keystr(path))
    return want_m
