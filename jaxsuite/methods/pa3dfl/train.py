"""Pa3dFL and its baselines as pure functions: ``init(setup, rng) -> FLState``, ``train_step(state, batch)
-> (state, metrics)`` (one communication round), ``evaluate(state, data) -> metrics`` (personalised accuracy).

``batch`` and ``data`` are width groups: {width key ("1_1", "1_2", ...: ``data.group_key``): {"ids" [m], "x" [m,
n_max, H, W, C], "y" [m, n_max], "count" [m]}} of every client of the run, the clients' local train or test sets
padded to one shape. A round samples ``clients.fraction`` of each width group (``sample_round``), trains them
locally (``local_updates``: ``client_update`` mapped over a group's clients) and aggregates (``aggregate``); the
Flower apps (``flower_app``) run the same three pieces across processes. The state's static ``setup`` names the
algorithm (``KINDS``), the network and the clients' widths; a client's sub-model and the server's update are in
``server`` (Pa3dFL, pFedHN) and ``width_sliced`` (the others).
"""
from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.sharding import DATA_AXIS
from jaxsuite.methods.pa3dfl import client, server, width_sliced
from jaxsuite.methods.pa3dfl.data import group_key, width_of
from jaxsuite.methods.pa3dfl.decomposition import LayerSpec
from jaxsuite.methods.pa3dfl.model import DecomposedCNN, HyperNetwork, PlainCNN, cnn_specs, plain_shape

HYPER_KINDS = ("pa3dfl", "pfedhn")
KINDS = HYPER_KINDS + width_sliced.KINDS


@dataclasses.dataclass(frozen=True)
class Setup:
    """The static description of a run (part of the compiled graph)."""
    kind: str
    specs: tuple[LayerSpec, ...]
    p_min: Fraction
    group_sizes: tuple[tuple[str, int], ...]  # (width key, clients of that width), sorted
    levels: tuple[Fraction, ...]  # the run's distinct widths (FjORD's ordered-dropout choices)
    local_steps: int
    batch_size: int
    local_lr: float
    local_momentum: float
    weight_decay: float
    clip: float
    server_lr: float = 0.0
    server_momentum: float = 0.0
    server_weight_decay: float = 0.0
    embed_dim: int = 0
    hyper_hidden: int = 0
    client_chunk: int = 0  # clients vmapped together (0: all of a group; see client.over_clients)
    server_optimizer: str = "sgd"  # the hyper-network's: "sgd" or "adam"
    fraction: float = 1.0  # of each width group's clients sampled per round

    @property
    def num_clients(self) -> int:
        return sum(m for _, m in self.group_sizes)

    def round_widths(self) -> tuple[Fraction, ...]:
        """The widths of a round's clients (what ``costs.bytes_per_round`` counts)."""
        return tuple(width_of(gk) for gk, _ in self.group_sizes for _ in range(self.sampled(gk)))

    def sampled(self, gk: str) -> int:
        """How many clients of width group ``gk`` take part in a round: round(fraction * m), at least one."""
        m = dict(self.group_sizes)[gk]
        return min(m, max(1, round(self.fraction * m)))


@struct.dataclass
class FLState:
    step: jax.Array  # rounds done
    rng: jax.Array
    server: dict  # hyper kinds: {"hyper", "shared"}; width-sliced: {"global"}; local_only: {}
    server_opt: object
    clients: dict  # per width group, stacked over its clients: lg_fedavg's and local_only's own networks
    setup: Setup = struct.field(pytree_node=False)


def trained_widths(kind: str, widths: tuple[Fraction, ...]) -> tuple[Fraction, ...]:
    """The width each client trains at: its own, or the smallest of all for ``fedavg_smallest``."""
    return (min(widths),) * len(widths) if kind == "fedavg_smallest" else tuple(widths)


def make_setup(cfg, widths: tuple[Fraction, ...], num_classes: int, in_channels: int) -> Setup:
    """``widths``: every client's capacity (``data.client_widths``)."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"config key 'kind' must be one of {KINDS}, got {cfg.kind!r}")
    specs = cnn_specs(in_channels, tuple(cfg.model.channels), cfg.model.hidden, num_classes, cfg.model.kernel)
    widths = trained_widths(cfg.kind, widths)
    levels = tuple(sorted(set(widths)))
    p_min = min(widths)
    for s in specs:  # every layer must split into whole groups at every width
        for p in levels:
            s.width(p_min, p)
    sizes = tuple((group_key(p), sum(w == p for w in widths)) for p in levels)
    h, s_ = cfg.hyper, cfg.server
    if not 0 < cfg.clients.fraction <= 1:
        raise ConfigError(f"config key 'clients.fraction' must be in (0, 1], got {cfg.clients.fraction!r}")
    if s_.optimizer not in ("sgd", "adam"):
        raise ConfigError(f"config key 'server.optimizer' must be 'sgd' or 'adam', got {s_.optimizer!r}")
    return Setup(cfg.kind, specs, p_min, sizes, levels, cfg.local.steps, cfg.local.batch_size,
                 cfg.local.lr, cfg.local.momentum, cfg.local.weight_decay, cfg.local.clip, s_.lr, s_.momentum,
                 s_.weight_decay, h.embed_dim, h.hidden, cfg.clients.chunk, s_.optimizer,
                 float(cfg.clients.fraction))


@functools.lru_cache(maxsize=None)
def local_tx(setup: Setup) -> optax.GradientTransformation:
    return client.clipped_sgd(setup.local_lr, setup.local_momentum, setup.weight_decay, setup.clip)


@functools.lru_cache(maxsize=None)
def server_tx(setup: Setup) -> optax.GradientTransformation:
    """The hyper-network's optimizer (pFedHN: SGD with momentum, or Adam), after a gradient-norm clip of 50."""
    if setup.server_optimizer == "adam":
        return optax.chain(optax.clip_by_global_norm(50.0), optax.adamw(setup.server_lr,
                                                                        weight_decay=setup.server_weight_decay))
    return client.clipped_sgd(setup.server_lr, setup.server_momentum, setup.server_weight_decay, 50.0)


@functools.lru_cache(maxsize=None)
def client_def(setup: Setup, gk: str):
    """The graph of a client network of width group ``gk`` (Pa3dFL: decomposed layers; others: plain)."""
    cls = DecomposedCNN if setup.kind == "pa3dfl" else PlainCNN
    return nnx.split(nnx.eval_shape(lambda: cls(setup.specs, setup.p_min, width_of(gk), rngs=nnx.Rngs(0))),
                     nnx.Param)[0]


@functools.lru_cache(maxsize=None)
def hyper_def(setup: Setup):
    return nnx.split(nnx.eval_shape(lambda: _hyper(setup, jax.random.key(0))), nnx.Param)[0]


def _hyper(setup: Setup, key) -> HyperNetwork:
    if setup.kind == "pa3dfl":
        shapes = {s.name: s.v_shape(setup.p_min) for s in setup.specs}
    else:
        shapes = {s.name: plain_shape(s, setup.p_min, Fraction(1)) for s in setup.specs}
    return HyperNetwork(setup.specs, shapes, setup.num_clients, setup.embed_dim, setup.hyper_hidden,
                        attention=setup.kind == "pa3dfl", rngs=nnx.Rngs(key))


def _pure(module) -> dict:
    return nnx.state(module, nnx.Param).to_pure_dict()


def init(setup: Setup, rng: jax.Array) -> FLState:
    """The server's and the clients' initial parameters (all clients start from the same network)."""
    k_model, k_hyper, k_state = jax.random.split(rng, 3)
    net = (DecomposedCNN if setup.kind == "pa3dfl" else PlainCNN)(setup.specs, setup.p_min, Fraction(1),
                                                                  rngs=nnx.Rngs(k_model))
    full = _pure(net)
    server_state, opt, clients = {}, None, {}
    if setup.kind in HYPER_KINDS:
        hyper = _pure(_hyper(setup, k_hyper))
        server_state = {"hyper": hyper, "shared": {"u": full["u"]} if setup.kind == "pa3dfl" else {}}
        opt = server_tx(setup).init(hyper)
    elif setup.kind != "local_only":
        server_state = {"global": full}
    if setup.kind in ("lg_fedavg", "local_only"):
        for gk, m in setup.group_sizes:
            idx = width_sliced.channel_indices("heterofl", setup.specs, setup.p_min, width_of(gk), jnp.zeros(()))
            own = width_sliced.extract(full, idx)
            clients[gk] = client.for_each(own, m)
    return FLState(step=jnp.zeros((), jnp.int32), rng=k_state, server=server_state, server_opt=opt,
                   clients=clients, setup=setup)


def shard_clients(tree, mesh):
    """``tree`` (width groups, every leaf with the group's clients on its leading axis) placed with each group's
    client axis over the mesh's ``data`` axis where the group divides evenly over the devices, replicated
    otherwise: a vmapped group (``clients.chunk`` 0) then trains each device's clients on that device."""
    n = mesh.shape[DATA_AXIS]
    by_client, replicated = NamedSharding(mesh, P(DATA_AXIS)), NamedSharding(mesh, P())
    return jax.tree.map(lambda a: jax.device_put(a, by_client if a.shape[0] % n == 0 else replicated), tree)


def place_state(state: FLState, mesh) -> FLState:
    """The server's state replicated, the clients' own networks (LG-FedAvg, local training) sharded by client."""
    return jax.device_put(state, NamedSharding(mesh, P())).replace(clients=shard_clients(state.clients, mesh))


def round_keys(state: FLState) -> tuple[jax.Array, jax.Array]:
    """(client sampling key, local training key) of the round ``state.step``."""
    return tuple(jax.random.split(jax.random.fold_in(state.rng, state.step)))


def sample_round(setup: Setup, batch: dict, key: jax.Array) -> dict:
    """The round's clients: ``setup.sampled(gk)`` of each width group drawn without replacement (all of them at
    ``clients.fraction`` 1), their data gathered and "pos" their positions in the group."""
    out = {}
    for gi, (gk, g) in enumerate(sorted(batch.items())):
        m, s = g["ids"].shape[0], setup.sampled(gk)
        pos = (jnp.arange(m) if s == m else
               jnp.sort(jax.random.choice(jax.random.fold_in(key, gi), m, (s,), replace=False)))
        out[gk] = {**jax.tree.map(lambda a: a[pos], g), "pos": pos}  # noqa: B023 -- called within this iteration
    return out


def client_keys(key: jax.Array, group_index: int, count: int) -> jax.Array:
    """The local training keys of the ``count`` clients of the ``group_index``-th width group (sorted keys) in a
    round with local key ``key``."""
    return jax.random.split(jax.random.fold_in(key, group_index), count)


def client_update(setup: Setup, gk: str):
    """``(params, data, key) -> (trained, mean loss)``: one client's local training in width group ``gk`` (what a
    Flower ClientApp runs, and what ``local_updates`` maps over a group's clients)."""
    keep_fn = (width_sliced.ordered_dropout(setup.specs, setup.p_min, width_of(gk), setup.levels)
               if setup.kind == "fjord" else None)
    return lambda prm, d, k: client.local_train(client_def(setup, gk), prm, d, k, local_tx(setup),
                                                steps=setup.local_steps, batch_size=setup.batch_size, keep_fn=keep_fn)


def local_updates(state: FLState, batch: dict, key: jax.Array) -> dict:
    """{width key: (sent, trained, loss)}: every client of ``batch`` starts from the network the server sends it
    this round (or its own, ``client_networks``) and trains locally; stacked per width group."""
    setup = state.setup
    out = {}
    for gi, (gk, g) in enumerate(sorted(batch.items())):
        sent = client_networks(state, gk, g["ids"], g.get("pos"))
        trained, loss = client.over_clients(client_update(setup, gk), (
            sent, {k: g[k] for k in ("x", "y", "count")}, client_keys(key, gi, g["ids"].shape[0])),
            setup.client_chunk)
        out[gk] = (sent, trained, loss)
    return out


def train_step(state: FLState, batch: dict) -> tuple[FLState, dict]:
    """One communication round: the sampled clients of ``batch`` (every client of the run) train locally, then
    the server aggregates."""
    k_sample, k_local = round_keys(state)
    batch = sample_round(state.setup, batch, k_sample)
    return aggregate(state, batch, local_updates(state, batch, k_local))


def aggregate(state: FLState, batch: dict, updates: dict) -> tuple[FLState, dict]:
    """The server's side of a round: the new state from the round's clients ``batch`` (``sample_round``) and
    their ``updates`` (``local_updates``)."""
    setup = state.setup
    if setup.kind in HYPER_KINDS:
        hyper, opt, shared, metrics = server.hyper_update(
            setup.kind, setup.specs, setup.p_min, hyper_def(setup), state.server["hyper"], state.server_opt,
            state.server["shared"], batch, updates, server_tx(setup))
        return state.replace(step=state.step + 1, server={"hyper": hyper, "shared": shared}, server_opt=opt), metrics
    clients, server_state = dict(state.clients), state.server
    for gk, (_, trained, _) in updates.items():
        if gk in clients:  # lg_fedavg, local_only: the round's clients keep their networks
            clients[gk] = jax.tree.map(lambda own, t: own.at[batch[gk]["pos"]].set(t), clients[gk], trained)  # noqa: B023 -- called within this iteration
    if "global" in state.server:
        parts = [width_sliced.scatter_sums(state.server["global"], trained, width_sliced.channel_indices(
            setup.kind, setup.specs, setup.p_min, width_of(gk), state.step)) for gk, (_, trained, _) in updates.items()]
        layers = (setup.specs[-1].name,) if setup.kind == "lg_fedavg" else None
        server_state = {"global": width_sliced.average_into(state.server["global"], parts, layers)}
    metrics = {"train_loss": jnp.mean(jnp.concatenate([loss for _, _, loss in updates.values()]))}
    return state.replace(step=state.step + 1, server=server_state, clients=clients), metrics


def _sliced_params(state: FLState, gk: str, p: Fraction, pos: jax.Array) -> dict:
    """The stacked networks the clients at positions ``pos`` of group ``gk`` start a round from (or are
    evaluated with)."""
    setup = state.setup
    m = pos.shape[0]
    own = jax.tree.map(lambda a: a[pos], state.clients.get(gk, {}))
    if setup.kind == "local_only":
        return own
    idx = width_sliced.channel_indices(setup.kind, setup.specs, setup.p_min, p, state.step)
    sub = width_sliced.extract(state.server["global"], idx)
    stacked = client.for_each(sub, m)
    if setup.kind == "lg_fedavg":  # own layers, the global classifier
        head = setup.specs[-1].name
        return {"w": {**own["w"], head: stacked["w"][head]}, "b": {**own["b"], head: stacked["b"][head]}}
    return stacked


def client_networks(state: FLState, gk: str, ids: jax.Array, pos: jax.Array | None = None) -> dict:
    """The stacked networks the server sends the clients ``ids`` (at positions ``pos`` of group ``gk``, default
    all of them) (their own for local training): what a round starts from and what evaluation tests (after one
    more local update with ``eval.local_update``)."""
    setup = state.setup
    if setup.kind in HYPER_KINDS:
        return server.client_params(setup.kind, setup.specs, setup.p_min, hyper_def(setup), state.server["hyper"],
                                    state.server["shared"], ids, width_of(gk))
    return _sliced_params(state, gk, width_of(gk), jnp.arange(ids.shape[0]) if pos is None else pos)


def evaluate(state: FLState, data: dict) -> dict:
    """Per-client accuracy on its local test set ``data["test"]``: {"accuracy/<group>": [m]}. The network a client
    is tested with is the one it holds after the training: what the server sends it next (the generated or
    sliced network, or its own) after one more local training on ``data["train"]`` when given (the same local
    update as in a round; the clients' own networks then take that update too)."""
    tested = {}
    if "train" in data:
        updates = local_updates(state, data["train"], round_keys(state)[1])  # the local training of a next round
        tested = {gk: trained for gk, (_, trained, _) in updates.items()}
    out = {}
    for gk, g in sorted(data["test"].items()):
        params = tested[gk] if tested else client_networks(state, gk, g["ids"])
        graphdef = client_def(state.setup, gk)
        out[f"accuracy/{gk}"] = client.over_clients(lambda prm, d: client.accuracy(graphdef, prm, d),  # noqa: B023 -- called within this iteration
                                                     (params, {k: g[k] for k in ("x", "y", "count")}),
                                                     state.setup.client_chunk)
    return out
