"""The privacy core: DP-SGD clipping / noise / masking, Poisson batches, RDP and GDP accounting, GNMax."""
import math

import chex
import dp_accounting
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsuite.privacy import accounting, dpsgd, pate, sampling


def _loss(params, batch):
    """Squared error summed over a batch (of one, inside clipped_grad); padding rows are masked out."""
    pred = batch["x"] @ params["w"] + params["b"]
    return jnp.sum(batch["mask"][:, None] * (pred - batch["y"]) ** 2)


def _problem(seed, batch=16):
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.zeros(3)}
    data = {"x": jnp.asarray(rng.normal(size=(batch, 5)) * 3, jnp.float32),
            "y": jnp.asarray(rng.normal(size=(batch, 3)), jnp.float32), "mask": jnp.ones(batch)}
    return params, data


def _one(data, i):
    return jax.tree.map(lambda a: a[i:i + 1], data)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.01, 10.0))
def test_every_clipped_per_example_gradient_has_norm_at_most_c(seed, clip):
    params, data = _problem(seed, batch=4)
    grad_fn = dpsgd.clipped_grad_sum(_loss, clip, return_norms=True)
    for i in range(4):
        g, norms = grad_fn(params, _one(data, i))
        norm = float(optax.global_norm(g))
        assert norm <= clip * (1 + 1e-5)
        raw = float(optax.global_norm(jax.grad(_loss)(params, _one(data, i))))
        assert float(norms[0]) == pytest.approx(raw, rel=1e-5)
        if raw <= clip:  # inside the ball: untouched
            assert norm == pytest.approx(raw, rel=1e-5)


def test_no_clipping_and_no_noise_is_plain_sgd_on_the_mean_gradient():
    params, data = _problem(1)
    tx = optax.chain(dpsgd.dp_noise(math.inf, 0.0, 16, jax.random.key(0)), optax.sgd(0.1))
    clipped_sum = dpsgd.clipped_grad_sum(_loss, math.inf)(params, data)
    updates, _ = tx.update(clipped_sum, tx.init(params), params)
    mean_grad = jax.grad(lambda p: _loss(p, data) / 16)(params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -0.1 * g, mean_grad), rtol=1e-5, atol=1e-6)


def test_padding_examples_do_not_count():
    params, data = _problem(2)
    grad_fn = dpsgd.clipped_grad_sum(_loss, 1.0)
    padded = {**data, "mask": (jnp.arange(16) < 8).astype(jnp.float32)}
    first8 = jax.tree.map(lambda a: a[:8], data)
    chex.assert_trees_all_close(grad_fn(params, padded), grad_fn(params, first8), rtol=1e-5, atol=1e-6)


def test_noise_std_is_noise_multiplier_times_c_over_batch():
    params = {"w": jnp.zeros((200, 50))}
    tx = dpsgd.dp_noise(2.0, 1.5, 8.0, jax.random.key(3))
    noise, state = tx.update({"w": jnp.zeros((200, 50))}, tx.init(params))  # zero sum: the noise alone
    assert abs(float(jnp.std(noise["w"])) - 1.5 * 2.0 / 8.0) < 0.01
    again, _ = tx.update({"w": jnp.zeros((200, 50))}, state)  # a fresh key every step
    assert not np.allclose(np.asarray(noise["w"]), np.asarray(again["w"]))


def test_noise_on_every_kth_update_only():
    """``every=3``: updates 0 and 3 carry the noise, 1, 2 and 4 pass the (public) gradient through, / L."""
    params = {"w": jnp.zeros((50, 40))}
    tx = dpsgd.dp_noise(1.0, 2.0, 4.0, jax.random.key(5), every=3)
    state, noisy = tx.init(params), []
    for _ in range(5):
        out, state = tx.update({"w": jnp.ones((50, 40))}, state)
        noisy.append(not np.allclose(np.asarray(out["w"]), 0.25))
    assert noisy == [True, False, False, True, False]
    with pytest.raises(ValueError, match="every"):
        dpsgd.dp_noise(1.0, 1.0, 4.0, jax.random.key(0), every=0)


def test_dp_step_jits_with_a_padded_poisson_batch():
    params, data = _problem(3, batch=64)
    tx = optax.chain(dpsgd.dp_noise(1.0, 1.0, 8.0, jax.random.key(0)), optax.sgd(0.1))
    grad_fn = dpsgd.clipped_grad_sum(_loss, 1.0)

    @jax.jit
    def step(params, opt_state, key):
        idx, mask = sampling.poisson_batch(key, 64, 8 / 64, 24)
        batch = {**jax.tree.map(lambda a: a[idx], data), "mask": mask.astype(jnp.float32)}
        updates, opt_state = tx.update(grad_fn(params, batch), opt_state, params)
        return optax.apply_updates(params, updates), opt_state, mask.sum()

    opt_state = tx.init(params)
    sizes = []
    for i in range(5):
        params, opt_state, n = step(params, opt_state, jax.random.key(i))
        sizes.append(int(n))
    assert step._cache_size() == 1 and len(set(sizes)) > 1  # one compile, varying real batch sizes


def test_poisson_batch_rate_and_distinct_indices():
    counts = []
    for i in range(200):
        idx, mask = sampling.poisson_batch(jax.random.key(i), 1000, 0.05, 120)
        real = np.asarray(idx)[np.asarray(mask)]
        assert len(set(real.tolist())) == len(real)
        counts.append(len(real))
    assert abs(np.mean(counts) - 50) < 2.0 and np.std(counts) > 3


def test_rdp_epsilon_matches_dp_accounting_and_the_tf_privacy_tutorial():
    q, sigma, steps, delta = 256 / 60000, 1.1, 60 * 60000 // 256, 1e-5
    event = accounting.dpsgd_event(q, sigma, steps)
    acc = dp_accounting.rdp.RdpAccountant(list(accounting.ORDERS))
    acc.compose(event)
    ours = accounting.epsilon(accounting.rdp_curve(event), delta)
    assert ours == pytest.approx(acc.get_epsilon(delta), rel=1e-9)
    # TensorFlow Privacy, tutorials/README.md ("Select Parameters"): noise 1.1, batch 256, 60 epochs of
    # 60,000 MNIST images, delta 1e-5 -> "eps = 3.01" (its compute_dp_sgd_privacy.py, classic conversion)
    classic = accounting.epsilon(accounting.rdp_curve(event), delta, classic=True)
    assert classic == pytest.approx(3.01, abs=0.01)
    assert ours < classic  # dp-accounting's conversion is tighter


def test_overflow_of_the_padded_batch_is_rare_and_counted():
    n, q, steps = 60000, 256 / 60000, 14062
    big = sampling.default_max_batch(n, q, steps, 1e-6)
    assert accounting.overflow_delta(n, q, big, steps) <= 1e-6 < accounting.overflow_delta(n, q, big - 1, steps)
    assert accounting.overflow_delta(n, q, 256, steps) > 0.5  # a batch of exactly q N overflows half the time


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 250), min_size=2, max_size=10), st.floats(1.0, 100.0))
def test_data_dependent_gnmax_rdp_never_exceeds_the_data_independent_bound(votes, sigma):
    logq = accounting.gnmax_logq(np.asarray(votes), sigma)
    dep = accounting.gnmax_rdp_dependent(logq, sigma)
    assert (dep <= accounting.gnmax_rdp_independent(sigma) + 1e-12).all() and (dep >= 0).all()


def test_a_clear_consensus_costs_far_less_than_the_data_independent_bound():
    votes = np.array([240, 5, 5] + [0] * 7)
    dep = accounting.gnmax_rdp_dependent(accounting.gnmax_logq(votes, 40.0), 40.0)
    assert accounting.epsilon(dep * 1000, 1e-5) < 0.5 * accounting.epsilon(accounting.gnmax_rdp_independent(40.0, 1000), 1e-5)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 500), st.floats(5.0, 200.0))
def test_epsilon_is_monotone_in_the_number_of_queries(queries, sigma):
    a = accounting.epsilon(accounting.gnmax_rdp_independent(sigma, queries), 1e-5)
    b = accounting.epsilon(accounting.gnmax_rdp_independent(sigma, queries + 1), 1e-5)
    assert b >= a


def test_gdp_view():
    mu = accounting.dpsgd_mu(256 / 60000, 1.1, 60 * 60000 // 256)
    assert 0 < mu < 2
    eps = accounting.gdp_epsilon(mu, 1e-5)
    assert accounting.gdp_delta(mu, eps) == pytest.approx(1e-5, rel=1e-4)
    assert accounting.gdp_epsilon(mu * 2, 1e-5) > eps


def test_gnmax_follows_a_clear_majority_and_vmapped_teachers_equal_a_loop():
    votes = jnp.asarray([[0, 50, 0], [30, 0, 20]], jnp.float32)
    labels = pate.gnmax(jax.random.key(0), votes, 1.0)
    np.testing.assert_array_equal(np.asarray(labels), [1, 0])
    labels, answered = pate.confident_gnmax(jax.random.key(1), votes, 1.0, 1.0, threshold=40.0)
    np.testing.assert_array_equal(np.asarray(answered), [True, False])

    def apply(p, x):
        return x @ p["w"]

    teachers = {"w": jax.random.normal(jax.random.key(2), (5, 4, 3))}
    x = jax.random.normal(jax.random.key(3), (7, 4))
    votes = pate.teacher_votes(apply, teachers, x, 3)
    loop = sum(jax.nn.one_hot(jnp.argmax(apply({"w": teachers["w"][t]}, x), -1), 3) for t in range(5))
    np.testing.assert_array_equal(np.asarray(votes), np.asarray(loop))


def test_gdp_figures_from_the_reference_notes():
    # N = 60000, batch 256, sigma 1.3, 15 epochs -> mu ~ 0.227 (CLT formula)
    assert accounting.dpsgd_mu(256 / 60000, 1.3, 15 * 60000 // 256) == pytest.approx(0.227, abs=0.002)
    assert accounting.compose_mu(accounting.gnmax_mu(10.0, 4), 0.3) == pytest.approx(math.sqrt(0.08 + 0.09))


def test_rdp_for_10000_steps_matches_the_measured_figure():
    event = accounting.dpsgd_event(256 / 60000, 1.1, 10000)
    assert accounting.epsilon(accounting.rdp_curve(event), 1e-5) == pytest.approx(2.16, abs=0.01)


def test_max_steps_stops_before_the_budget_is_exceeded():
    step = accounting.rdp_curve(accounting.dpsgd_event(256 / 60000, 1.1, 1))
    t = accounting.max_steps(step, 3.0, 1e-5)
    assert accounting.epsilon(t * step, 1e-5) <= 3.0 < accounting.epsilon((t + 1) * step, 1e-5)
    spent = 100 * accounting.gnmax_rdp_independent(50.0)
    assert accounting.max_steps(step, 3.0, 1e-5, spent_rdp=spent) < t  # other mechanisms on the data use budget
    assert accounting.max_steps(step, 1e-3, 1e-5) == 0
