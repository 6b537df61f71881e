"""One Pa3dFL round: the hyper-network's step moves every client's generated theta_v towards what the client
returned (the pFedHN chain rule), theta_u becomes the clients' average, and nothing moves when clients do not
train."""
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxsuite.methods.pa3dfl import client, server
from jaxsuite.methods.pa3dfl.data import width_of
from jaxsuite.methods.pa3dfl.model import DecomposedCNN, HyperNetwork, cnn_specs

P_MIN = Fraction(1, 2)
SPECS = cnn_specs(1, (4, 8), 8, 10)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    groups = {}
    for gi, key in enumerate(("1_1", "1_2")):
        groups[key] = {"ids": jnp.array([2 * gi, 2 * gi + 1]),
                       "x": jnp.asarray(rng.uniform(size=(2, 12, 8, 8, 1)), jnp.float32),
                       "y": jnp.asarray(rng.integers(0, 10, (2, 12)), jnp.int32), "count": jnp.array([12, 9])}
    shapes = {s.name: s.v_shape(P_MIN) for s in SPECS}
    hyper = HyperNetwork(SPECS, shapes, 4, 3, 16, attention=True, rngs=nnx.Rngs(0))
    hdef, hparams = nnx.split(hyper, nnx.Param)
    u = nnx.state(DecomposedCNN(SPECS, P_MIN, Fraction(1), rngs=nnx.Rngs(1)), nnx.Param).to_pure_dict()["u"]
    defs = {k: nnx.split(DecomposedCNN(SPECS, P_MIN, p, rngs=nnx.Rngs(0)), nnx.Param)[0]
            for k, p in (("1_1", Fraction(1)), ("1_2", P_MIN))}
    return hdef, hparams.to_pure_dict(), u, groups, defs


def _round(setup, local_tx, server_lr):
    hdef, hparams, u, groups, defs = setup
    stx = client.clipped_sgd(server_lr, 0.0, 0.0, 1e9)

    @jax.jit
    def one_round(hparams, u, groups):
        updates = server.local_updates("pa3dfl", SPECS, P_MIN, hdef, hparams, {"u": u}, groups, jax.random.key(1),
                                       client_defs=defs, local_tx=local_tx, steps=3, batch_size=4)
        new_h, _, shared, metrics = server.hyper_update("pa3dfl", SPECS, P_MIN, hdef, hparams, stx.init(hparams),
                                                        {"u": u}, groups, updates, stx)
        return updates, new_h, shared["u"], metrics

    return one_round(hparams, u, groups)


def test_the_hypernetwork_step_moves_generated_parameters_towards_the_returned_ones(setup):
    hdef, hparams, u, groups, _ = setup
    updates, new_h, new_u, metrics = _round(setup, client.clipped_sgd(0.1, 0.0, 0.0, 1e9), 1e-3)
    assert np.isfinite(float(metrics["train_loss"]))
    for gk, g in groups.items():
        sent, trained, _ = updates[gk]
        moved = server.client_params("pa3dfl", SPECS, P_MIN, hdef, new_h, {"u": u}, g["ids"], width_of(gk))
        for part in ("v", "b"):
            step = jax.tree.map(jnp.subtract, moved[part], sent[part])
            wanted = jax.tree.map(jnp.subtract, trained[part], sent[part])
            assert sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree.leaves(step), jax.tree.leaves(wanted))) > 0
    mean_u = jax.tree.map(lambda *t: jnp.mean(jnp.concatenate(t), 0), *[tr["u"] for _, tr, _ in updates.values()])
    for a, b in zip(jax.tree.leaves(new_u), jax.tree.leaves(mean_u)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # theta_u: the plain average over the 4 clients


def test_clients_that_do_not_train_leave_the_server_unchanged(setup):
    _, hparams, u, _, _ = setup
    _, new_h, new_u, metrics = _round(setup, optax.set_to_zero(), 1.0)
    assert float(metrics["hyper_grad_norm"]) < 1e-6  # zero up to XLA's fusion of the two generations
    for a, b in zip(jax.tree.leaves(new_h), jax.tree.leaves(hparams)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    for a, b in zip(jax.tree.leaves(new_u), jax.tree.leaves(u)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
