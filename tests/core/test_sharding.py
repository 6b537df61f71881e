"""A train step on 4 simulated CPU devices (batch sharded on `data`) equals the single-device step."""
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsuite.core import sharding
from jaxsuite.methods.nddr import train
from tests.helpers import tiny_config


@pytest.mark.parametrize("overrides", [[], ["model.kind=hard_sharing"]], ids=["nddr", "hard_sharing"])
def test_sharded_step_equals_single_device(overrides):
    assert len(jax.devices()) >= 4, "conftest sets 4 simulated CPU devices"
    cfg = tiny_config(["optim.decay_steps=10", "model.dropout=0.0", *overrides])
    state = jax.jit(lambda: train.init(cfg, jax.random.PRNGKey(0)))()
    rng = np.random.default_rng(1)
    batches = [{"image": rng.random((16, 20, 32, 1), np.float32), "left": rng.integers(0, 10, 16).astype(np.int32),
                "right": rng.integers(0, 10, 16).astype(np.int32)} for _ in range(3)]
    step = jax.jit(train.train_step)

    one = jax.device_put(state, jax.devices()[0])
    for b in batches:
        one, m1 = step(one, jax.device_put(b, jax.devices()[0]))

    mesh = sharding.make_mesh(4)
    four = sharding.replicate(state, mesh)
    for b in batches:
        sb = sharding.shard_batch(b, mesh)
        assert sb["image"].sharding == NamedSharding(mesh, P("data"))
        four, m4 = step(four, sb)
    assert len(jax.tree.leaves(four.params)[0].sharding.device_set) == 4
    for a, b in zip(jax.tree.leaves((one.params, one.model_state)), jax.tree.leaves((four.params, four.model_state)),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)
    for k in m1:
        np.testing.assert_allclose(float(m1[k]), float(m4[k]), atol=1e-5, rtol=1e-5)


def test_shard_batch_rejects_indivisible_batch():
    from jaxsuite.core.errors import UserError

    with pytest.raises(UserError, match="not divisible"):
        sharding.shard_batch({"x": np.zeros((6, 2))}, sharding.make_mesh(4))
