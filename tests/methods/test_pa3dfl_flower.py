"""Pa3dFL on Flower: two rounds through Flower's simulation engine (Ray, one ClientApp per SuperNode) leave the
server in the state the vmapped simulation reaches for the same seed; the ArrayRecord round trip of a network."""
import os

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

pytest.importorskip("flwr", reason="the flower extra (pip install 'jaxsuite[flower]')")

from jaxsuite.core.config import load_config  # noqa: E402
from jaxsuite.methods.pa3dfl import data as fl_data  # noqa: E402
from jaxsuite.methods.pa3dfl import experiment, flower_app, train  # noqa: E402

TINY = {"data": {"dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "shards_per_client": 2,
                 "test_fraction": 0.2, "min_size": 10, "downsample": 1},
        "clients": {"num_clients": 4, "widths": ("1", "1/2"), "chunk": 1, "fraction": 0.5},
        "model": {"channels": (4, 8), "hidden": 8, "kernel": 3},
        "local": {"steps": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-5, "clip": 50.0},
        # SGD on the server: Adam's division by sqrt(v) would blow float32 round-off in near-zero gradients up
        "server": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
        "hyper": {"embed_dim": 3, "hidden": 16}, "rounds": 2}


def _config() -> ConfigDict:
    config = load_config("pa3dfl", "quick")
    for group, values in TINY.items():
        if isinstance(values, dict):
            for k, v in values.items():
                config[group][k] = v
        else:
            config[group] = values
    return config


def test_a_network_survives_the_array_record_round_trip():
    tree = {"u": {"conv1": np.arange(6.0).reshape(2, 3)}, "b": {"fc2": np.ones(3, np.float32)}}
    back = flower_app.from_record(flower_app.to_record(tree))
    jax.tree.map(np.testing.assert_array_equal, back, tree)


@pytest.mark.slow  # Ray's start and one JAX compilation per SuperNode process: about a minute on 2 CPU cores
def test_two_flower_rounds_equal_the_vmapped_simulation(tmp_path):
    from flwr.simulation import run_simulation

    config, seed, variant = _config(), 0, "pa3dfl"
    out = tmp_path / "flower_state.npz"
    resolve = lambda context: (config, variant, seed, str(out))  # noqa: E731
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    run_simulation(server_app=flower_app.make_server_app(resolve, timeout=600),
                   client_app=flower_app.make_client_app(resolve), num_supernodes=config.clients.num_clients,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False}})
    assert out.is_file(), "the ServerApp did not finish"
    flower = dict(np.load(out))

    cfg = experiment.variant_config(config, variant)
    built = experiment.load_data(cfg, seed)
    setup = train.make_setup(cfg, built["widths"], built["num_classes"], built["in_channels"])
    groups = jax.device_put(fl_data.width_groups(built, built["widths"], "train"))
    state = train.init(setup, jax.random.PRNGKey(seed))
    step = jax.jit(train.train_step)
    for _ in range(config.rounds):
        state, _ = step(state, groups)
    simulated = {jax.tree_util.keystr(p): np.asarray(a)
                 for p, a in jax.tree_util.tree_leaves_with_path((state.server, state.clients))}
    assert sorted(flower) == sorted(simulated)
    for name, value in simulated.items():  # the same computation, compiled in other pieces: float32 round-off
        np.testing.assert_allclose(flower[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    start = train.init(setup, jax.random.PRNGKey(seed))
    initial = jax.tree.leaves((start.server, start.clients))
    assert any(not np.allclose(a, b) for a, b in zip(initial, jax.tree.leaves((state.server, state.clients))))
