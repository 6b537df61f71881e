"""The host loop around a pure ``train_step``: jit, sharding, progress bar, JSONL metrics, periodic
evaluation, checkpoints (every N steps, at the end, on SIGTERM/SIGINT), resume, and a NaN/Inf guard.

The loop never decides anything about the method: it calls ``init_fn()`` for a fresh state (or
restores the latest checkpoint in ``workdir``), ``batch_fn(step)`` for the host batch of a step
(a deterministic function of the step, so a resumed run sees the same batches), and ``evaluate_fn``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxsuite.core import sharding
from jaxsuite.core.checkpoint import Checkpointer
from jaxsuite.core.errors import NonFiniteError, UserError
from jaxsuite.core.metrics import MetricsWriter


@dataclasses.dataclass
class FitResult:
    state: Any
    eval_metrics: dict
    train_seconds: float
    start_step: int
    interrupted: bool
    steps_per_second: float | None = None  # steady state: the steps after the first (compiling) one of this call


@contextlib.contextmanager
def _stop_on_signals():
    """Turn SIGTERM/SIGINT into a flag the loop checks after each step (main thread only)."""
    flag = {"signal": None}
    handlers = {}

    def handler(signum, _frame):
        flag["signal"] = signum

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no handlers
        pass
    try:
        yield flag
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)


@jax.jit
def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _check_finite(records: list[tuple[int, Mapping[str, Any]]], last_good: int | None) -> None:
    for step, metrics in records:
        for name, value in metrics.items():
            if not math.isfinite(float(value)):
                raise NonFiniteError(
                    f"non-finite {name}={float(value)} at step {step}; stopped. "
                    f"Last good checkpoint: step {last_good}" if last_good is not None else
                    f"non-finite {name}={float(value)} at step {step}; stopped before any checkpoint")


def fit(*, init_fn: Callable[[], Any], train_step: Callable, batch_fn: Callable[[int], Any], num_steps: int,
        workdir: str | Path, evaluate_fn: Callable[[Any], Mapping[str, float]] | None = None,
        eval_every: int = 0, checkpoint_every: int = 500, keep_checkpoints: int = 2, log_every: int = 50,
        mesh=None, desc: str = "train", progress: bool = True, shard_batches: bool = True,
        place_state: Callable[[Any, Any], Any] | None = None, jit_init: bool = True) -> FitResult:
    """Train ``num_steps`` steps in ``workdir`` (resuming from its latest checkpoint) and evaluate.

    ``train_step(state, batch) -> (state, metrics)`` is jitted with the state donated and the batch
    sharded over the mesh's ``data`` axis (``shard_batches=False``: replicated, for full-batch methods
    such as a whole graph). ``state.step`` counts finished steps. The state is replicated over the mesh unless
    ``place_state(state, mesh)`` places it otherwise (e.g. a party axis such as PATE teachers sharded on ``data``).
    ``init_fn`` is jitted here (once per call); ``jit_init=False`` calls it as it is, for an ``init_fn`` that
    calls an already jitted function (a method that inits many states of the same shapes compiles once).
    ``train_seconds`` sums every part of a resumed run (the seconds at each checkpoint are kept in
    ``workdir/train_seconds.json``).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = mesh or sharding.make_mesh()
    ckpt = Checkpointer(workdir / "checkpoints", keep=keep_checkpoints)
    writer = MetricsWriter(workdir / "metrics.jsonl")
    t0 = time.perf_counter()

    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    start = ckpt.latest_step()
    before = _seconds_before(workdir, start)  # the training seconds of the earlier parts of a resumed run
    if start is not None:  # only a restore needs the abstract state (tracing init is not free)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                                jax.eval_shape(init_fn))
        state = ckpt.restore(abstract)
        writer.truncate_after(start)
    else:
        state = jax.jit(init_fn, out_shardings=replicated)() if jit_init else jax.device_put(init_fn(), replicated)
        start = 0
    if place_state is not None:
        state = place_state(state, mesh)
    step_fn = jax.jit(train_step, donate_argnums=0)

    pending: list[tuple[int, Any]] = []
    interrupted = False
    done, steps_per_second, t_steady = start, None, 0.0
    bar = tqdm(total=num_steps, initial=start, desc=desc, disable=None if progress else True, file=sys.stderr,
               dynamic_ncols=True, leave=False)

    def flush():
        records = [(s, {k: float(v) for k, v in jax.device_get(m).items()}) for s, m in pending]
        pending.clear()
        _check_finite(records, ckpt.latest_step())
        for s, m in records:
            writer.write(s, "train", m)
        if records and progress:
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(records[-1][1].items())[:3]})

    def save(step):
        flush()
        if not bool(_all_finite(state)):
            raise NonFiniteError(f"non-finite values in the train state at step {step}; stopped. "
                                 f"Last good checkpoint: step {ckpt.latest_step()}")
        ckpt.save(step, state)
        _record_seconds(workdir, step, before + time.perf_counter() - t0)

    try:
        with _stop_on_signals() as stop:
            for step in range(start, num_steps):
                batch = batch_fn(step)
                batch = sharding.shard_batch(batch, mesh) if shard_batches else sharding.replicate(batch, mesh)
                state, metrics = step_fn(state, batch)
                pending.append((step + 1, metrics))
                done = step + 1
                if step == start:  # the first step compiles: time the rest
                    jax.block_until_ready(state)
                    t_steady = time.perf_counter()
                bar.update(1)
                if done % log_every == 0:
                    flush()
                if checkpoint_every and done % checkpoint_every == 0 and done < num_steps:
                    save(done)
                if evaluate_fn is not None and eval_every and done % eval_every == 0 and done < num_steps:
                    writer.write(done, "eval", evaluate_fn(state))
                if stop["signal"] is not None:
                    save(done)
                    interrupted = True
                    print(f"\nstopped by signal {stop['signal']} at step {done}; checkpoint saved in {ckpt.directory}",
                          file=sys.stderr)
                    break
            if done - start > 1:
                jax.block_until_ready(state)
                steps_per_second = (done - start - 1) / (time.perf_counter() - t_steady)
            if not interrupted:
                save(num_steps if num_steps > start else start)
    finally:
        bar.close()
        ckpt.close()

    eval_metrics = {}
    if not interrupted and evaluate_fn is not None:
        eval_metrics = {k: float(v) for k, v in evaluate_fn(state).items()}
        writer.write(int(jax.device_get(state.step)), "eval", eval_metrics)
    writer.close()
    return FitResult(state=state, eval_metrics=eval_metrics, train_seconds=before + time.perf_counter() - t0,
                     start_step=start, interrupted=interrupted, steps_per_second=steps_per_second)


_SECONDS = "train_seconds.json"


def _seconds_before(workdir: Path, step: int | None) -> float:
    """Seconds spent up to checkpoint ``step`` by the calls that made it (0 for a fresh run)."""
    if step is None:
        return 0.0
    try:
        return float(json.loads((workdir / _SECONDS).read_text()).get(str(step), 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _record_seconds(workdir: Path, step: int, seconds: float) -> None:
    """Cumulative training seconds at each kept checkpoint step, so a resumed run reports the sum of its parts."""
    path = workdir / _SECONDS
    try:
        table = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        table = {}
    table[str(step)] = seconds
    tmp = path.with_name(f"{_SECONDS}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table))
    os.replace(tmp, path)


def fit_arrays(config, *, init_fn: Callable[[], Any], train_step: Callable, arrays: Mapping[str, np.ndarray],
               num_steps: int, batch_size: int, seed: int, workdir: str | Path, desc: str, progress: bool = True,
               jit_init: bool = True) -> FitResult:
    """:func:`fit` over in-memory ``arrays`` (:func:`host_batches`), with the config's ``checkpoint_every``,
    ``keep_checkpoints`` and ``log_every``."""
    return fit(init_fn=init_fn, train_step=train_step, batch_fn=host_batches(arrays, batch_size, seed),
               num_steps=num_steps, workdir=workdir, checkpoint_every=config.checkpoint_every,
               keep_checkpoints=config.keep_checkpoints, log_every=config.log_every, desc=desc, progress=progress,
               jit_init=jit_init)


def host_batches(arrays: Mapping[str, np.ndarray], batch_size: int, seed: int) -> Callable[[int], dict]:
    """``batch_fn(step)`` over in-memory arrays: a fresh permutation each epoch, drawn from (seed, epoch).

    A function of the step alone, so a resumed run sees exactly the batches it would have seen.
    """
    n = len(next(iter(arrays.values())))
    if batch_size > n:
        raise UserError(f"config key 'batch_size' ({batch_size}) exceeds the {n} training examples")
    per_epoch = n // batch_size
    cache: dict[int, np.ndarray] = {}  # this epoch's permutation, drawn once

    def batch_fn(step: int) -> dict:
        epoch, i = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        idx = cache[epoch][i * batch_size:(i + 1) * batch_size]
        return {k: v[idx] for k, v in arrays.items()}

    return batch_fn
