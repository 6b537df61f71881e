"""One Pa3dFL round: the hyper-network's step moves every client's generated theta_v towards what the client
returned (the pFedHN chain rule), and nothing moves when clients do not train."""
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsuite.methods.pa3dfl import client, server
from jaxsuite.methods.pa3dfl.model import cnn_specs

P_MIN = Fraction(1, 2)
SPECS = cnn_specs(1, (4, 8), 8, 10)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    groups = {}
    for gi, p in enumerate((Fraction(1), P_MIN)):
        groups[p] = {"ids": jnp.array([2 * gi, 2 * gi + 1]), "x": jnp.asarray(rng.uniform(size=(2, 12, 8, 8, 1)),
                                                                               jnp.float32),
                     "y": jnp.asarray(rng.integers(0, 10, (2, 12)), jnp.int32), "count": jnp.array([12, 9])}
    hdef, hparams, u = server.init_server(SPECS, P_MIN, 4, 3, 16, jax.random.key(0))
    return hdef, hparams, u, groups


def _round(setup, local_tx, server_lr):
    hdef, hparams, u, groups = setup
    stx = server.server_optimizer(server_lr, 0.0, 0.0, 1e9)
    new_h, _, new_u, metrics = server.round_update(hdef, hparams, stx.init(hparams), u, groups, jax.random.key(1),
                                                   specs=SPECS, p_min=P_MIN, local_tx=local_tx, server_tx=stx,
                                                   steps=3, batch_size=4)
    return new_h, new_u, metrics


@pytest.mark.slow
def test_the_hypernetwork_step_moves_generated_parameters_towards_the_returned_ones(setup):
    hdef, hparams, u, groups = setup
    local = client.local_optimizer(0.1, 0.0, 0.0, 1e9)
    new_h, new_u, metrics = _round(setup, local, 1e-3)
    assert np.isfinite(float(metrics["train_loss"]))
    for p, g in groups.items():
        sent = server.send(hdef, hparams, u, g["ids"], p)
        graphdef = server.client_graphdef(SPECS, P_MIN, p)
        keys = jax.random.split(jax.random.fold_in(jax.random.key(1), sorted(groups).index(p)), 2)
        trained = jax.vmap(lambda prm, d, k: client.local_train(graphdef, prm, d, k, local, steps=3, batch_size=4)[0])(
            sent, {k: g[k] for k in ("x", "y", "count")}, keys)
        moved = server.send(hdef, new_h, u, g["ids"], p)
        for part in ("v", "b"):
            step = jax.tree.map(jnp.subtract, moved[part], sent[part])
            wanted = jax.tree.map(jnp.subtract, trained[part], sent[part])
            assert sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree.leaves(step), jax.tree.leaves(wanted))) > 0
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(new_u))


def test_clients_that_do_not_train_leave_the_server_unchanged(setup):
    hdef, hparams, u, _ = setup
    new_h, new_u, metrics = _round(setup, optax.set_to_zero(), 1.0)
    assert float(metrics["hyper_grad_norm"]) == 0.0
    for a, b in zip(jax.tree.leaves(new_h), jax.tree.leaves(hparams)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(new_u), jax.tree.leaves(u)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
