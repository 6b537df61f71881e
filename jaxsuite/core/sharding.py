"""Data parallelism: a 1-D ``data`` mesh, batches sharded on it, parameters replicated.

Multi-host runs call :func:`init_distributed` first (the launch/ scripts do); each process then
passes its local slice of the batch and :func:`shard_batch` assembles the global array.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsuite.core.errors import UserError

DATA_AXIS = "data"


def init_distributed() -> None:
    """Start ``jax.distributed`` when launched by SLURM, on a TPU pod or with explicit coordinator vars.

    A single-process run (no such environment) is left alone.
    """
    multi = ("JAX_COORDINATOR_ADDRESS" in os.environ
             or int(os.environ.get("SLURM_NTASKS", "1")) > 1
             or "TPU_WORKER_HOSTNAMES" in os.environ or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ)
    if multi and not jax.distributed.is_initialized():
        jax.distributed.initialize()


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all by default), axis ``data``."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if n > len(devices):
        raise UserError(f"asked for {n} devices, only {len(devices)} present")
    return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices[:n])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf on every device of the mesh."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Shard every leaf's leading (batch) axis over ``data``; the batch must divide evenly."""
    n = mesh.shape[DATA_AXIS]
    sharding = NamedSharding(mesh, P(DATA_AXIS))

    def put(x):
        x = np.asarray(x)
        if x.shape[0] % n:
            raise UserError(f"batch size {x.shape[0]} is not divisible by the {n} devices of the data axis")
        if jax.process_count() > 1:  # every host built the same global batch: each contributes its slice
            local = x.shape[0] // jax.process_count()
            start = jax.process_index() * local
            return jax.make_array_from_process_local_data(sharding, x[start:start + local], x.shape)
        return jax.device_put(x, sharding)

    return jax.tree.map(put, batch)


def describe_devices() -> str:
    """E.g. ``cpu x1`` or ``gpu x8`` (all processes)."""
    devs = jax.devices()
    return f"{devs[0].platform} x{len(devs)}"
