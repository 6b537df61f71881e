"""Pa3dFL and its baselines on Flower (``flwr`` >= 1.42, the ``flower`` extra): a ServerApp and a ClientApp that
run the simulation's own pure functions, so a run on Flower's engine (its simulation, or SuperLink and SuperNodes
on real machines) follows ``train.train_step`` round by round for the same seed.

A round on Flower (one ``train.train_step`` of the simulation, split at the network boundary):
  server  ``train.round_keys``, ``train.sample_round`` (which clients), ``train.client_networks`` (what each is
          sent), ``train.client_keys`` (each client's local training key);
  client  ``train.client_update`` on its own local train set (the partition ``data.build`` gives its partition
          id), the same jitted local training the simulation maps over a width group;
  server  ``train.aggregate`` of the replies, stacked per width group in the simulation's order.

Messages: "query" (the server asks every node its partition id, data classes and channels once), then per
round one "train" message per sampled client: ArrayRecord "params" (its network, tensors named by their path,
e.g. "v.conv1") and ConfigRecord "config" {"group": width key, "key": the client's PRNG key data}; the reply is
ArrayRecord "params" (trained) and MetricRecord "metrics" {"loss"}. The server writes its final state's arrays to
an .npz file when given a path.

Deployment: ``server_app`` and ``client_app`` below read the run config keys ``preset`` (default "quick"),
``variant`` (default "pa3dfl"), ``seed`` (0), ``rounds`` (the preset's) and ``out`` (the .npz path, optional);
a client's partition id is its node config's ``partition-id`` (what ``flower-supernode --node-config
"partition-id=3 num-partitions=20"`` sets and Flower's simulation sets by itself). See methods/pa3dfl/README.md.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsuite.core.errors import ConfigError
from jaxsuite.methods.pa3dfl import data as fl_data
from jaxsuite.methods.pa3dfl import experiment, train

try:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
except ImportError as e:  # pragma: no cover - the message names the extra
    raise ImportError("Pa3dFL on Flower needs the flower extra: pip install 'jaxsuite[flower]'") from e


def to_record(tree: dict) -> ArrayRecord:
    """A nested dict of arrays as an ArrayRecord, each tensor named by its dotted path."""
    flat = {}

    def walk(node, prefix):
        for k, v in node.items():
            if "." in str(k):
                raise ValueError(f"parameter name {k!r} contains a '.'")
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = Array.from_numpy_ndarray(np.asarray(v))
    walk(tree, "")
    return ArrayRecord(array_dict=flat)


def from_record(record: ArrayRecord) -> dict:
    """The nested dict of numpy arrays of ``to_record``."""
    out: dict = {}
    for name, arr in record.items():
        *path, last = name.split(".")
        node = out
        for k in path:
            node = node.setdefault(k, {})
        node[last] = arr.numpy()
    return out


def _key_data(key: jax.Array) -> np.ndarray:
    return np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key)


def _run_config(context: Context):
    """(config, variant, seed, out path) from a Flower run config."""
    from jaxsuite.core.config import load_config

    rc = dict(context.run_config)
    variant = str(rc.get("variant", "pa3dfl"))
    if variant not in experiment.VARIANTS:
        raise ConfigError(f"Flower run config 'variant' must be one of {tuple(experiment.VARIANTS)}, got {variant!r}")
    config = load_config("pa3dfl", str(rc.get("preset", "quick")))
    if "rounds" in rc:
        config.rounds = int(rc["rounds"])
    return config, variant, int(rc.get("seed", 0)), rc.get("out") or None


# ---- client -----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _client_data(cfg_json: str, seed: int, partition: int) -> tuple[str, dict, tuple]:
    """(width key, this client's padded local train set as in the simulation, (num_classes, in_channels))."""
    cfg = ml_collections.ConfigDict(json.loads(cfg_json))
    built = experiment.load_data(cfg, seed)
    widths = train.trained_widths(cfg.kind, built["widths"])
    gk = fl_data.group_key(widths[partition])
    g = fl_data.width_groups(built, widths, "train")[gk]
    row = int(np.flatnonzero(g["ids"] == partition)[0])
    return gk, {k: g[k][row] for k in ("x", "y", "count")}, (built["num_classes"], built["in_channels"])


@functools.lru_cache(maxsize=8)
def _client_fn(setup: train.Setup, gk: str):
    return jax.jit(train.client_update(setup, gk))


def _setup(cfg, seed: int, num_classes: int, in_channels: int) -> train.Setup:
    widths = fl_data.client_widths(fl_data.parse_widths(cfg.clients.widths), cfg.clients.num_clients, seed)
    return train.make_setup(cfg, widths, num_classes, in_channels)


def _partition(context: Context, num_clients: int) -> int:
    pid = context.node_config.get("partition-id")
    if pid is None or not 0 <= int(pid) < num_clients:
        raise ConfigError(f"Flower node config 'partition-id' must be in [0, {num_clients}), got {pid!r}")
    return int(pid)


def make_client_app(resolve) -> ClientApp:
    """A ClientApp; ``resolve(context) -> (config, variant, seed, out)``."""
    app = ClientApp()

    def local(context: Context):
        config, variant, seed, _ = resolve(context)
        cfg = experiment.variant_config(config, variant)
        pid = _partition(context, cfg.clients.num_clients)
        return cfg, seed, pid, _client_data(json.dumps(cfg.to_dict(), sort_keys=True), seed, pid)

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        _, _, pid, (_, _, (num_classes, in_channels)) = local(context)
        info = ConfigRecord({"partition_id": pid, "num_classes": num_classes, "in_channels": in_channels})
        return Message(RecordDict({"info": info}), reply_to=msg)

    @app.train()
    def train_(msg: Message, context: Context) -> Message:
        cfg, seed, _, (gk, data, meta) = local(context)
        config = msg.content.config_records["config"]
        if config["group"] != gk:
            raise ConfigError(f"server sent width group {config['group']!r} to a client of group {gk!r}")
        params = jax.tree.map(jnp.asarray, from_record(msg.content.array_records["params"]))
        key = jnp.asarray(np.asarray(config["key"], np.uint32))
        trained, loss = _client_fn(_setup(cfg, seed, *meta), gk)(params, data, key)
        content = RecordDict({"params": to_record(jax.device_get(trained)),
                              "metrics": MetricRecord({"loss": float(loss)})})
        return Message(content, reply_to=msg)

    return app


# ---- server -----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _server_fns(setup: train.Setup):
    @jax.jit
    def plan(state, groups):
        k_sample, k_local = train.round_keys(state)
        sampled = train.sample_round(setup, groups, k_sample)
        sent = {gk: train.client_networks(state, gk, g["ids"], g["pos"]) for gk, g in sampled.items()}
        keys = {gk: train.client_keys(k_local, gi, g["ids"].shape[0]) for gi, (gk, g) in enumerate(sorted(sampled.items()))}
        return sampled, sent, keys

    return plan, jax.jit(train.aggregate)


def _wait_for_nodes(grid: Grid, count: int, timeout: float | None) -> list[int]:
    """The ids of the connected nodes once ``count`` have connected (they connect after the ServerApp starts)."""
    start = time.monotonic()
    while len(nodes := list(grid.get_node_ids())) < count:
        if timeout is not None and time.monotonic() - start > timeout:
            raise RuntimeError(f"only {len(nodes)} of the {count} Flower nodes (one per client) connected in "
                               f"{timeout:.0f} s")
        time.sleep(0.5)
    return nodes


def _ask(grid: Grid, message_type: str, contents: dict, timeout: float | None) -> dict:
    """Send ``contents`` {node id: RecordDict}; the replies' contents by node id (an error reply raises)."""
    messages = [Message(c, dst_node_id=node, message_type=message_type) for node, c in contents.items()]
    replies = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            raise RuntimeError(f"Flower node {reply.metadata.src_node_id} failed a {message_type!r}: "
                               f"{reply.error.reason}")
        replies[reply.metadata.src_node_id] = reply.content
    if len(replies) != len(contents):
        raise RuntimeError(f"{len(contents) - len(replies)} of {len(contents)} Flower nodes did not answer a "
                           f"{message_type!r} message in time")
    return replies


def serve(grid: Grid, config, variant: str, seed: int, out: str | None = None, timeout: float | None = None):
    """The server's side of a run on Flower: ``config.rounds`` rounds; the final ``train.FLState``."""
    cfg = experiment.variant_config(config, variant)
    nodes = _wait_for_nodes(grid, cfg.clients.num_clients, timeout)
    info = _ask(grid, "query", {n: RecordDict() for n in nodes}, timeout)
    node_of = {int(c.config_records["info"]["partition_id"]): n for n, c in info.items()}
    if sorted(node_of) != list(range(cfg.clients.num_clients)):
        raise ConfigError(f"Flower nodes hold partitions {sorted(node_of)}; the run needs 0..{cfg.clients.num_clients - 1}")
    first = next(iter(info.values())).config_records["info"]
    setup = _setup(cfg, seed, int(first["num_classes"]), int(first["in_channels"]))
    widths = train.trained_widths(cfg.kind, fl_data.client_widths(fl_data.parse_widths(cfg.clients.widths),
                                                                  cfg.clients.num_clients, seed))
    groups = {fl_data.group_key(w): {"ids": jnp.asarray([i for i, wi in enumerate(widths) if wi == w], jnp.int32)}
              for w in sorted(set(widths))}
    plan, aggregate = _server_fns(setup)
    state = train.init(setup, jax.random.PRNGKey(seed))
    for _ in range(cfg.rounds):
        sampled, sent, keys = jax.device_get(plan(state, groups))
        contents, where = {}, {}
        for gk, g in sampled.items():
            for j, cid in enumerate(g["ids"].tolist()):
                params = jax.tree.map(lambda a: a[j], sent[gk])  # noqa: B023 -- called within this iteration
                config_record = ConfigRecord({"group": gk, "key": _key_data(keys[gk][j]).tolist()})
                contents[node_of[cid]] = RecordDict({"params": to_record(params), "config": config_record})
                where[node_of[cid]] = (gk, j)
        replies = _ask(grid, "train", contents, timeout)
        trained = {gk: [None] * len(g["ids"]) for gk, g in sampled.items()}
        losses = {gk: np.zeros(len(g["ids"]), np.float32) for gk, g in sampled.items()}
        for node, content in replies.items():
            gk, j = where[node]
            trained[gk][j] = from_record(content.array_records["params"])
            losses[gk][j] = content.metric_records["metrics"]["loss"]
        updates = {gk: (sent[gk], jax.tree.map(lambda *t: np.stack(t), *trained[gk]), losses[gk]) for gk in sampled}
        state, _ = aggregate(state, sampled, updates)
    if out:
        np.savez(Path(out), **{jax.tree_util.keystr(p): np.asarray(a)
                               for p, a in jax.tree_util.tree_leaves_with_path((state.server, state.clients))})
    return state


def make_server_app(resolve, timeout: float | None = None) -> ServerApp:
    """A ServerApp; ``resolve(context) -> (config, variant, seed, out)``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        config, variant, seed, out = resolve(context)
        serve(grid, config, variant, seed, out, timeout)

    return app


server_app = make_server_app(_run_config)
client_app = make_client_app(_run_config)
