"""The host loop: exact resume after SIGTERM (in-process and through the CLI), and the NaN guard."""
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxsuite.core.checkpoint import Checkpointer
from jaxsuite.core.errors import NonFiniteError
from jaxsuite.core.loop import fit, host_batches
from jaxsuite.methods.nddr import train
from tests.helpers import TINY, cli, sets, tiny_config


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config(["optim.decay_steps=12"])
    rng = np.random.default_rng(0)
    data = {"image": rng.random((64, 20, 32, 1), np.float32), "left": rng.integers(0, 10, 64).astype(np.int32),
            "right": rng.integers(0, 10, 64).astype(np.int32)}
    return cfg, data


def _fit(cfg, data, workdir, batch_fn=None, step_fn=train.train_step, steps=12):
    return fit(init_fn=lambda: train.init(cfg, jax.random.PRNGKey(3)), train_step=step_fn,
               batch_fn=batch_fn or host_batches(data, 16, seed=5), num_steps=steps, workdir=workdir,
               evaluate_fn=lambda s: train.evaluate(s, data, 64), checkpoint_every=4, log_every=2, progress=False)


def _assert_identical(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sigterm_then_resume_is_bit_identical(setup, tmp_path):
    cfg, data = setup
    full = _fit(cfg, data, tmp_path / "full")
    assert not full.interrupted and int(full.state.step) == 12

    base = host_batches(data, 16, seed=5)

    def batch_fn(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag; the loop saves and stops
        return base(step)

    first = _fit(cfg, data, tmp_path / "cut", batch_fn=batch_fn)
    assert first.interrupted and 5 <= int(first.state.step) < 12
    assert Checkpointer(tmp_path / "cut" / "checkpoints").latest_step() == int(first.state.step)
    second = _fit(cfg, data, tmp_path / "cut")
    assert second.start_step == int(first.state.step) and int(second.state.step) == 12
    _assert_identical((full.state.params, full.state.model_state, full.state.opt_state),
                      (second.state.params, second.state.model_state, second.state.opt_state))
    assert full.eval_metrics == second.eval_metrics


def test_nan_guard_stops_and_keeps_last_good_checkpoint(setup, tmp_path):
    cfg, data = setup

    def poisoned_step(state, batch):
        new, metrics = train.train_step(state, batch)
        poison = jnp.where(state.step == 5, jnp.nan, 1.0)  # the 6th step writes NaN parameters
        return new.replace(params=jax.tree.map(lambda p: p * poison, new.params)), metrics

    with pytest.raises(NonFiniteError, match=r"non-finite (loss|grad_norm)=nan at step 7.*Last good checkpoint: step 4"):
        _fit(cfg, data, tmp_path, step_fn=poisoned_step)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 4
    abstract = jax.eval_shape(lambda: train.init(cfg, jax.random.PRNGKey(3)))
    restored = ckpt.restore(abstract)
    assert int(restored.step) == 4
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(restored.params))


def _final_params(workdir):
    ckdir = workdir / "finetune" / "checkpoints"
    step = max(int(p.name) for p in ckdir.iterdir() if p.name.isdigit())
    return ocp.StandardCheckpointer().restore(ckdir / str(step) / "default")


def test_cli_sigterm_resume_equals_uninterrupted_run(tmp_path):
    args = ["run", "nddr", "--quiet", *sets(*TINY, "pretrain.steps=300", "finetune_steps=20", "checkpoint_every=10")]
    full = cli(*args, "--workdir", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr

    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "jaxsuite", *args, "--workdir", str(tmp_path / "cut")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = tmp_path / "cut" / "pretrain" / "checkpoints" / "20"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped by signal" in err and "Traceback" not in err
    resumed = cli(*args, "--workdir", str(tmp_path / "cut"))
    assert resumed.returncode == 0, resumed.stderr
    _assert_identical(_final_params(tmp_path / "full"), _final_params(tmp_path / "cut"))


def test_cli_divergence_exits_3_with_message(tmp_path):
    proc = cli("run", "nddr", "--quiet", *sets(*TINY, "pretrain.steps=40", "finetune_steps=4", "pretrain.lr=1e12"),
               "--workdir", str(tmp_path))
    assert proc.returncode == 3, proc.stderr
    assert "training diverged: non-finite" in proc.stderr and "Traceback" not in proc.stderr
