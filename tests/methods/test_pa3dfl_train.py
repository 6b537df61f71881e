"""Pa3dFL's train step and its baselines: the hyper-network's chain-rule step moves every client's generated
tensors towards what it returned and theta_u becomes the clients' average; nothing moves when clients do not
train; the width-sliced sub-models and their per-entry averaging, FedRolex's rolling window, the cost counts, one
jitted round per algorithm, evaluation, and (slow) every variant through the reproduce path with a resume."""
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from jaxsuite.core import runner
from jaxsuite.core.config import load_config
from jaxsuite.methods.pa3dfl import costs, experiment, train, width_sliced
from jaxsuite.methods.pa3dfl import data as fl_data
from jaxsuite.methods.pa3dfl.model import DecomposedCNN, PlainCNN, cnn_specs

P_MIN = Fraction(1, 4)
SPECS = cnn_specs(1, (4, 8), 8, 10)
TINY = {"data": {"dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "shards_per_client": 2,
                 "test_fraction": 0.2, "min_size": 10, "downsample": 1},
        "clients": {"num_clients": 4, "widths": ("1", "1/2"), "chunk": 1, "fraction": 1.0},
        "model": {"channels": (4, 8), "hidden": 8, "kernel": 3},
        "local": {"steps": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-5, "clip": 50.0},
        "server": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}, "hyper": {"embed_dim": 3, "hidden": 16},
        "eval": {"local_update": True}, "rounds": 4, "checkpoint_every": 2, "keep_checkpoints": 2, "log_every": 2}


def test_fedrolex_window_rolls_by_one_channel_per_round_and_wraps():
    idx = {r: width_sliced.channel_indices("fedrolex", SPECS, P_MIN, Fraction(1, 2), jnp.asarray(r)) for r in (0, 1, 7)}
    np.testing.assert_array_equal(idx[0]["conv2"][1], [0, 1, 2, 3])
    np.testing.assert_array_equal(idx[1]["conv2"][1], [1, 2, 3, 4])
    np.testing.assert_array_equal(idx[7]["conv2"][1], [7, 0, 1, 2])
    np.testing.assert_array_equal(idx[7]["fc1"][0], idx[7]["conv2"][1])  # inputs follow the kept outputs
    np.testing.assert_array_equal(idx[7]["fc2"][1], np.arange(10))  # every class logit is kept
    heterofl = width_sliced.channel_indices("heterofl", SPECS, P_MIN, Fraction(1, 2), jnp.asarray(7))
    np.testing.assert_array_equal(heterofl["conv2"][1], [0, 1, 2, 3])


def test_every_entry_is_the_average_of_the_clients_that_held_it():
    net = PlainCNN(SPECS, P_MIN, Fraction(1), rngs=nnx.Rngs(0))
    full = nnx.state(net, nnx.Param).to_pure_dict()

    @jax.jit
    def aggregate(full):
        parts = []
        for p, value in ((Fraction(1), 1.0), (Fraction(1, 4), 3.0)):
            idx = width_sliced.channel_indices("heterofl", SPECS, P_MIN, p, jnp.asarray(0))
            sub = width_sliced.extract(full, idx)
            trained = jax.tree.map(lambda a: jnp.full((2, *a.shape), value), sub)  # two clients of this width  # noqa: B023 -- called within this iteration
            parts.append(width_sliced.scatter_sums(full, trained, idx))
        return width_sliced.average_into(full, parts), width_sliced.average_into(full, parts, layers=("fc2",))

    new, lg = aggregate(full)
    w = np.asarray(new["w"]["conv2"])
    assert np.allclose(w[..., :1, :2], 2.0)  # held by all four clients: (1 + 1 + 3 + 3) / 4
    assert np.allclose(w[..., 1:, :], 1.0) and np.allclose(w[..., :, 2:], 1.0)  # only the wide clients
    np.testing.assert_array_equal(lg["w"]["conv1"], full["w"]["conv1"])  # LG-FedAvg averages the classifier only


@pytest.mark.parametrize("kind", ["pa3dfl", "heterofl"])
@pytest.mark.parametrize("p", [Fraction(1), Fraction(1, 2), Fraction(1, 4)], ids=str)
def test_cost_counts_match_the_client_networks(kind, p):
    cls = DecomposedCNN if kind == "pa3dfl" else PlainCNN
    net = nnx.eval_shape(lambda: cls(SPECS, P_MIN, p, rngs=nnx.Rngs(0)))
    entries = sum(np.prod(a.shape) for a in jax.tree.leaves(nnx.state(net, nnx.Param)))
    assert costs.params(kind, SPECS, P_MIN, p) == entries
    assert costs.flops(SPECS, P_MIN, p, 8) < costs.flops(SPECS, P_MIN, Fraction(1), 8) or p == 1


@pytest.fixture(scope="module")
def digits():
    cfg = ConfigDict(TINY)
    built = fl_data.build(cfg, 0)
    return cfg, built


@pytest.fixture(scope="module")
def step():
    return jax.jit(train.train_step)


def _state(digits, kind, **over):
    cfg, built = digits
    cfg = ConfigDict({**cfg.to_dict(), "kind": kind})
    for dotted, value in over.items():
        group, key = dotted.split(".")
        cfg[group][key] = value
    setup = train.make_setup(cfg, built["widths"], built["num_classes"], built["in_channels"])
    groups = jax.device_put(fl_data.width_groups(built, train.trained_widths(kind, built["widths"]), "train"))
    return train.init(setup, jax.random.key(0)), groups


def _dot(a, b) -> float:
    return sum(float(jnp.vdot(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow  # about 30 s of compilation
def test_the_hypernetwork_step_moves_generated_tensors_towards_the_returned_ones(digits):
    state, groups = _state(digits, "pa3dfl", **{"server.optimizer": "sgd", "server.lr": 1e-3,
                                                "server.momentum": 0.0, "server.weight_decay": 0.0})

    @jax.jit
    def round_and_after(state, groups):  # one compilation
        new, _ = train.train_step(state, groups)
        return train.local_updates(state, groups, train.round_keys(state)[1]), new, {gk: train.client_networks(new, gk, g["ids"])
                                                         for gk, g in groups.items()}

    updates, new, after = round_and_after(state, groups)
    for gk in groups:
        sent, trained, _ = updates[gk]
        moved = after[gk]
        for part in ("v", "b"):  # first order: <phi step's change of theta_i, theta_i returned - sent> > 0
            assert _dot(jax.tree.map(jnp.subtract, moved[part], sent[part]),
                        jax.tree.map(jnp.subtract, trained[part], sent[part])) > 0, (gk, part)
    mean_u = jax.tree.map(lambda *t: jnp.mean(jnp.concatenate(t), 0), *[tr["u"] for _, tr, _ in updates.values()])
    for a, b in zip(jax.tree.leaves(new.server["shared"]["u"]), jax.tree.leaves(mean_u)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # theta_u: the plain average over the clients


@pytest.mark.slow
def test_clients_that_do_not_train_leave_the_server_unchanged(digits):
    state, groups = _state(digits, "pa3dfl", **{"local.lr": 0.0, "server.weight_decay": 0.0})
    new, metrics = jax.jit(train.train_step)(state, groups)
    assert float(metrics["hyper_grad_norm"]) < 1e-6  # zero up to XLA's fusion of the two generations
    for a, b in zip(jax.tree.leaves(new.server), jax.tree.leaves(state.server)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", [pytest.param("pa3dfl", marks=pytest.mark.slow), "heterofl"])
def test_one_round_updates_the_server_and_evaluation_reads_every_client(kind, digits, step):
    state, groups = _state(digits, kind)
    built, widths = digits[1], train.trained_widths(kind, digits[1]["widths"])
    new, metrics = step(state, groups)
    assert np.isfinite(float(metrics["train_loss"])) and int(new.step) == 1
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves((state.server, state.clients)),
                                                   jax.tree.leaves((new.server, new.clients)))]
    assert any(moved)
    if kind == "lg_fedavg":  # only the classifier of the global network is shared
        np.testing.assert_array_equal(new.server["global"]["w"]["conv1"], state.server["global"]["w"]["conv1"])
    acc = experiment._evaluate_fn()(new, {"test": jax.device_put(fl_data.width_groups(built, widths, "test"))})
    assert set(acc) == {f"accuracy/{k}" for k, _ in state.setup.group_sizes}
    assert all(((0 <= np.asarray(a)) & (np.asarray(a) <= 1)).all() for a in acc.values())
    assert sum(np.asarray(a).size for a in acc.values()) == 4


@pytest.mark.slow
def test_every_variant_runs_and_a_resumed_run_continues_exactly(tmp_path):
    config = load_config("pa3dfl", "quick")
    config.update_from_flattened_dict({k: v for k, v in ConfigDict(TINY).items() if not isinstance(v, ConfigDict)})
    for group in ("data", "clients", "model", "local", "server", "hyper", "eval"):
        for k, v in TINY[group].items():
            config[group][k] = v
    for variant in experiment.VARIANTS:
        metrics = runner.run_one("pa3dfl", config, variant, 0, tmp_path / variant)
        assert 0 <= metrics["mean_local_accuracy"] <= 1, variant
        assert set(metrics["extra/accuracy_by_capacity"]) == {"1", "1/2"} or variant == "fedavg_smallest"
    # resume: 2 rounds, then the remaining 2 from the checkpoint, against 4 in one go
    cfg2 = ConfigDict(config.to_dict())
    cfg2.rounds = 2
    runner.run_one("pa3dfl", cfg2, "pa3dfl", 1, tmp_path / "resume", on_config_change="clear")
    resumed = runner.run_one("pa3dfl", config, "pa3dfl", 1, tmp_path / "resume", on_config_change="clear")
    straight = runner.run_one("pa3dfl", config, "pa3dfl", 1, tmp_path / "straight")
    assert resumed["mean_local_accuracy"] == straight["mean_local_accuracy"]


def test_a_round_trains_only_its_sampled_clients(digits, step):
    state, groups = _state(digits, "local_only", **{"clients.fraction": 0.5})
    new, _ = step(state, groups)
    for gk, m in state.setup.group_sizes:  # one of the two clients of each width group trained
        assert state.setup.sampled(gk) == 1
        changed = [not np.allclose(a[i], b[i]) for i in range(m)
                   for a, b in zip(jax.tree.leaves(state.clients[gk]), jax.tree.leaves(new.clients[gk]))]
        assert sum(changed) == len(changed) // m, gk
    everyone = _state(digits, "local_only")[0].setup
    half = Fraction(1, 2)
    assert (state.setup.round_widths(), everyone.round_widths()) == ((half, 1), (half, half, 1, 1))


@pytest.mark.slow  # two compilations of a vmapped round, about 20 s
def test_clients_sharded_over_the_mesh_give_the_same_round(digits):
    """Width groups of 4 clients, vmapped (chunk 0), their client axis on the 4 simulated devices (one client
    each): the same round as on one device."""
    from jaxsuite.core.sharding import make_mesh

    cfg, _ = digits
    cfg = ConfigDict({**cfg.to_dict(), "kind": "lg_fedavg"})
    cfg.clients.num_clients, cfg.clients.chunk = 8, 0
    built = fl_data.build(cfg, 0)
    setup = train.make_setup(cfg, built["widths"], built["num_classes"], built["in_channels"])
    groups = fl_data.width_groups(built, built["widths"], "train")
    state = train.init(setup, jax.random.key(0))
    mesh = make_mesh()
    sharded_groups, sharded_state = train.shard_clients(groups, mesh), train.place_state(state, mesh)
    leaf = sharded_groups["1_1"]["x"]
    assert leaf.sharding.spec[0] == "data" and len(leaf.sharding.device_set) == 4
    assert jax.tree.leaves(sharded_state.clients)[0].sharding.spec[0] == "data"
    step = jax.jit(train.train_step)
    want, _ = step(state, jax.device_put(groups))
    got, _ = step(sharded_state, sharded_groups)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), (got.server, got.clients),
                 (want.server, want.clients))


@pytest.mark.parametrize("dataset,classes,channels", [("cifar10", 10, 3), ("cifar100", 100, 3),
                                                      ("fashion_mnist", 10, 1)])
def test_the_paper_preset_splits_every_layer_at_every_width(dataset, classes, channels):
    cfg = experiment.variant_config(load_config("pa3dfl", "paper", [f"data.dataset={dataset}"]), "pa3dfl")
    widths = fl_data.client_widths(fl_data.parse_widths(cfg.clients.widths), cfg.clients.num_clients, 0)
    setup = train.make_setup(cfg, widths, classes, channels)  # raises if a layer does not split into groups
    assert setup.num_clients == 100 and [setup.sampled(gk) for gk, _ in setup.group_sizes] == [5] * 4
