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
