"""Adv-KD: the DDPM forward process against its closed form, the samplers with a perfect noise oracle, the gradient
penalty against finite differences, the Frechet distance against closed forms and scipy, the student's stages, a
distillation step, regression_ddim's deterministic DDIM targets, the train / validation / test separation, and a
smoke run of every variant."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError
from jaxsuite.core.runner import run_one
from jaxsuite.data import image_splits
from jaxsuite.methods.advkd import data as advkd_data
from jaxsuite.methods.advkd import diffusion, distill, experiment, fd, losses, teacher
from jaxsuite.methods.advkd.networks import NoiseConditionedDiscriminator, ProgressiveStudent

SCHEDULE = diffusion.Schedule(20, 0.01, 0.3)


def test_forward_process_composes_to_its_closed_form():
    """x_t built by t one-step transitions sqrt(1 - beta) x + sqrt(beta) eps has mean sqrt(abar_t) x_0 and
    variance 1 - abar_t (DDPM Eq. 4); q_sample draws exactly that."""
    betas, abar = SCHEDULE.betas, SCHEDULE.alpha_bar
    coef, var = 1.0, 0.0
    for t in range(1, SCHEDULE.steps + 1):
        coef, var = coef * np.sqrt(1 - betas[t]), var * (1 - betas[t]) + betas[t]
        np.testing.assert_allclose([coef, var], [np.sqrt(abar[t]), 1 - abar[t]], rtol=1e-10)
    x0 = jnp.full((20000, 1, 1, 1), 0.7)
    t = jnp.full((20000,), 7)
    xt = np.asarray(diffusion.q_sample(SCHEDULE, x0, t, jax.random.normal(jax.random.PRNGKey(0), x0.shape)))
    np.testing.assert_allclose(xt.mean(), 0.7 * np.sqrt(abar[7]), atol=0.02)
    np.testing.assert_allclose(xt.var(), 1 - abar[7], rtol=0.03)


def _oracle(x0):
    """The perfect noise predictor for data x0: eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
    abar = jnp.asarray(SCHEDULE.alpha_bar, jnp.float32)

    def eps_fn(x_t, t):
        a = abar[t][:, None, None, None]
        return (x_t - jnp.sqrt(a) * x0) / jnp.sqrt(1 - a)
    return eps_fn


def test_samplers_with_a_perfect_noise_oracle_recover_x0():
    x0 = jax.random.uniform(jax.random.PRNGKey(1), (4, 6, 6, 1), minval=-0.9, maxval=0.9)
    x_T = jax.random.normal(jax.random.PRNGKey(2), x0.shape)
    states = diffusion.ddpm_sample(SCHEDULE, _oracle(x0), x_T, jax.random.PRNGKey(3),
                                   record_after=diffusion.even_checkpoints(SCHEDULE.steps, 4))
    assert states.shape == (4,) + x0.shape
    np.testing.assert_allclose(np.asarray(states[-1]), np.asarray(x0), atol=1e-5)
    assert float(jnp.abs(states[0] - x0).mean()) > 0.1  # the first checkpoint (after T/4 steps) is still noisy
    uneven = diffusion.ddpm_sample(SCHEDULE, _oracle(x0), x_T, jax.random.PRNGKey(3), record_after=(1, 7, 20))
    np.testing.assert_allclose(np.asarray(uneven[-1]), np.asarray(x0), atol=1e-5)
    assert float(jnp.abs(uneven[0] - x_T).mean()) < float(jnp.abs(uneven[1] - x_T).mean())  # 1 step from x_T
    for evaluations in (1, 3, SCHEDULE.steps):
        out = diffusion.ddim_sample(SCHEDULE, _oracle(x0), x_T, evaluations=evaluations)
        np.testing.assert_allclose(np.asarray(out), np.asarray(x0), atol=1e-5)
    np.testing.assert_array_equal(diffusion.ddim_timesteps(20, 4), [20, 15, 10, 5])
    # T-step DDIM recorded at checkpoints: x0 at the end, its last state = ddim_sample with T evaluations
    ddim_states = diffusion.ddim_trajectory(SCHEDULE, _oracle(x0), x_T, record_after=(1, 7, 20))
    assert ddim_states.shape == (3,) + x0.shape
    np.testing.assert_allclose(np.asarray(ddim_states[-1]), np.asarray(x0), atol=1e-5)
    eps = jax.random.normal(jax.random.PRNGKey(9), x0.shape)
    noisy = lambda x, t: _oracle(x0)(x, t) + 0.3 * eps  # noqa: E731 -- an imperfect predictor: paths differ
    np.testing.assert_allclose(np.asarray(diffusion.ddim_trajectory(SCHEDULE, noisy, x_T, record_after=(20,))[-1]),
                               np.asarray(diffusion.ddim_sample(SCHEDULE, noisy, x_T, evaluations=20)), atol=1e-6)


def test_gradient_penalty_equals_finite_differences():
    d = NoiseConditionedDiscriminator(1, 4, 4, ndf=4, max_ch=8, hidden=8, rngs=nnx.Rngs(0))
    d_fn = lambda x, z: d(x, z)  # noqa: E731
    kr, kf, kz, ku = jax.random.split(jax.random.PRNGKey(4), 4)
    real, fake = jax.random.normal(kr, (3, 4, 4, 1)), jax.random.normal(kf, (3, 4, 4, 1))
    z = jax.random.normal(kz, (3, 4, 4, 1))
    gp = float(losses.gradient_penalty(d_fn, real, fake, z, ku))
    u = np.asarray(jax.random.uniform(ku, (3, 1, 1, 1)))  # the interpolation weights the penalty draws
    x_hat = (u * np.asarray(real) + (1 - u) * np.asarray(fake)).astype(np.float64)
    f = lambda x: np.asarray(d(jnp.asarray(x, jnp.float32), z), np.float64)  # noqa: E731
    eps, grads = 1e-2, np.zeros_like(x_hat)
    for idx in np.ndindex(x_hat.shape[1:]):
        step = np.zeros_like(x_hat)
        step[(slice(None),) + idx] = eps
        grads[(slice(None),) + idx] = (f(x_hat + step) - f(x_hat - step)) / (2 * eps)
    norms = np.sqrt((grads ** 2).reshape(3, -1).sum(1))
    np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=2e-3, atol=1e-5)
    # the penalty estimated on the first two examples is the penalty of those two
    _, on_two = losses.discriminator_loss(d_fn, real, fake, z, ku, gp_weight=10.0, gp_examples=2)
    np.testing.assert_allclose(float(on_two["gp"]), float(losses.gradient_penalty(d_fn, real[:2], fake[:2], z[:2], ku)),
                               rtol=1e-6)


def test_frechet_distance_against_closed_forms_and_scipy():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 0.5
    sa, sb = fd.gaussian_stats(a), fd.gaussian_stats(b)
    assert abs(fd.frechet_distance(sa, sa)) < 1e-8
    cross = linalg.sqrtm(sa[1] @ sb[1]).real
    ref = np.sum((sa[0] - sb[0]) ** 2) + np.trace(sa[1] + sb[1] - 2 * cross)
    np.testing.assert_allclose(fd.frechet_distance(sa, sb), ref, rtol=1e-6)
    one_d = fd.frechet_distance((np.array([1.0]), np.array([[4.0]])), (np.array([-1.0]), np.array([[1.0]])))
    np.testing.assert_allclose(one_d, (1 - -1) ** 2 + (2 - 1) ** 2)  # (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2


def test_student_predicts_every_stage_at_its_resolution():
    s = ProgressiveStudent(1, ((8,), (8, 8), (4,)), (False, True, True), input_size=4, rngs=nnx.Rngs(0))
    z = jnp.ones((2, 4, 4, 1))
    assert s.sizes == (4, 8, 16)
    for stage, size in enumerate(s.sizes):
        assert s(z, stage, train=False).shape == (2, size, size, 1)
    assert float(jnp.abs(s(z * 50, 2, train=False)).max()) <= 1.0  # the last stage (x_0) ends in tanh
    with pytest.raises(ValueError, match="stage 3"):
        s(z, 3, train=False)


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("advkd", "quick", [
        "data.name=digits", "data.image_size=16", "teacher.steps=8", "teacher.beta_start=0.02",
        "teacher.beta_end=0.5", "teacher.train_steps=3", "teacher.optim.warmup_steps=1", "teacher.batch_size=16", "teacher.unet.base=8",
        "teacher.unet.patch=2", "trajectories.num=48", "trajectories.chunk=24", "student.input_size=4",
        "student.channels=((8,),(8,8),(4,),(4,))", "student.upsample=(False,True,False,True)", "distill.stage_steps=(2,2,2,2)",
        "distill.batch_size=(16,16,16,16)", "distill.d_weight_clip=0.1", "distill.ndf=4", "distill.max_ch=8", "distill.hidden=8", "fd.train_steps=3",
        "fd.features=8", "eval.num_samples=32", "eval.val_samples=32", "eval.chunk=16", "trajectories.val_num=24"])


def test_distill_step_trains_both_players_and_clips_d(tiny_config):
    cfg = tiny_config
    state = distill.init_stage(cfg, 1, jax.random.PRNGKey(0))
    batch = {"z": jax.random.normal(jax.random.PRNGKey(1), (16, 4, 4, 1)),
             "target": jax.random.normal(jax.random.PRNGKey(2), (16, 8, 8, 1))}
    step = jax.jit(distill.step_fn(distill.hyper(cfg, 1, True)))
    new, metrics = step(state, batch)
    assert {"d_loss", "gp", "g_loss", "mse"} <= set(metrics) and all(np.isfinite(float(v)) for v in metrics.values())
    for old, cur in ((state.g_params, new.g_params), (state.d_params, new.d_params)):
        assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(cur)))
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(new.d_params)) <= 0.1 + 1e-7
    # stage 1 does not reach sub-modules 2.. : their parameters get no gradient
    g_new = jax.tree.leaves(new.g_params["blocks"][3])
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.g_params["blocks"][3]), g_new))
    nxt = distill.init_stage(cfg, 2, jax.random.PRNGKey(5), previous=new)  # the student carries over, D is new
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.g_params), jax.tree.leaves(nxt.g_params)))
    assert not any(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.d_params), jax.tree.leaves(nxt.d_params))
                   if a.size > 1)
    reg, reg_metrics = jax.jit(distill.step_fn(distill.hyper(cfg, 1, False)))(state, batch)
    assert set(reg_metrics) == {"mse"}
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.d_params), jax.tree.leaves(reg.d_params)))


def test_bad_shapes_are_config_errors_naming_the_key(tiny_config):
    cfg = load_config("advkd", "quick", ["data.name=digits", "data.image_size=16", "student.input_size=5"])
    with pytest.raises(ConfigError, match="student.input_size"):
        experiment.check_data(cfg)
    cfg = load_config("advkd", "quick", ["teacher.steps=48"])
    with pytest.raises(ConfigError, match="teacher.steps"):
        experiment.check_data(cfg)
    cfg = load_config("advkd", "quick", ["data.name=digits", "data.image_size=16", "data.val_fraction=0.0"])
    with pytest.raises(ConfigError, match="data.val_fraction"):
        experiment.check_data(cfg)


def test_quick_preset_reports_fd_on_2000_test_samples_and_the_readme_matches_its_teacher():
    from pathlib import Path

    cfg = load_config("advkd", "quick", [])
    assert cfg.eval.num_samples >= 2000 and "regression_ddim" in cfg.variants
    readme = (Path(experiment.__file__).parent / "README.md").read_text()
    assert f"trained for {cfg.teacher.train_steps} steps" in readme


def test_regression_students_take_their_own_lr_and_the_others_g_lr():
    cfg = load_config("advkd", "quick", ["distill.optim.g_lr=3e-4", "distill.optim.regression_g_lr.regression=7e-4",
                                         "distill.optim.regression_g_lr.regression_ddim=9e-4"])
    lrs = {v: experiment.variant_config(cfg, v).distill.optim.g_lr for v in experiment.VARIANTS}
    assert lrs == {"advkd_student": 3e-4, "regression_student": 7e-4, "regression_ddim": 9e-4,
                   "teacher_full": 3e-4, "teacher_few_steps": 3e-4}
    assert cfg.distill.optim.g_lr == 3e-4  # the preset's own config is not changed
    cfg = load_config("advkd", "quick", ["distill.optim.regression_g_lr.regression_ddim=0.0"])
    assert experiment.variant_config(cfg, "regression_ddim").distill.optim.g_lr == cfg.distill.optim.g_lr


@pytest.fixture(scope="module")
def tiny_teacher(tiny_config):
    """An untrained tiny teacher (its weights are random: what is tested is the sampler, not the samples)."""
    state = jax.jit(lambda key: teacher.init(tiny_config, key))(jax.random.PRNGKey(0))
    return state.graphdef, state.params


def _direct_ddim(cfg, graphdef, params, x_T):
    """DDIM eta = 0 integrated step by step in Python (Song et al. 2021, Eq. 12 with sigma = 0, x0_hat clipped to
    [-1, 1] and eps_hat recomputed from it), the state kept after each of the preset's checkpoints."""
    sch = teacher.schedule(cfg)
    abar = sch.alpha_bar
    net = jax.jit(lambda x, t: nnx.merge(graphdef, params)(x, t))
    x, out = x_T, []
    for n, t in enumerate(range(sch.steps, 0, -1), start=1):
        eps = net(x, jnp.full((x.shape[0],), t - 1, jnp.int32))
        x0 = jnp.clip((x - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t]), -1, 1)
        eps = (x - np.sqrt(abar[t]) * x0) / np.sqrt(1 - abar[t])
        x = np.sqrt(abar[t - 1]) * x0 + np.sqrt(1 - abar[t - 1]) * eps
        if n in experiment.record_after(cfg):
            out.append(x)
    return out


def test_regression_ddim_target_is_the_deterministic_ddim_map(tiny_config, tiny_teacher, tmp_path):
    """regression_ddim's targets: the same noise gives the same target twice (whatever the sampler's key), equal
    to a direct DDIM eta = 0 integration of the teacher; the cached set draws the same noises as the ancestral
    set, and its held-out noises are disjoint from the training ones."""
    cfg = tiny_config
    graphdef, params = tiny_teacher
    chunk, k = cfg.trajectories.chunk, experiment.num_stages(cfg)
    # the first chunk of noises of the distillation set (one shape for every call: one compile per sampler)
    x_T = jax.random.normal(jax.random.fold_in(jax.random.fold_in(
        jax.random.PRNGKey(cfg.teacher.seed + experiment.TRAJECTORY_STREAMS["train"]), 0), 0), (chunk, 16, 16, 1))
    k1, k2 = jax.random.PRNGKey(11), jax.random.PRNGKey(12)
    once = experiment.teacher_states(cfg, graphdef, params, x_T, k1, "ddim")
    twice = experiment.teacher_states(cfg, graphdef, params, x_T, k2, "ddim")
    np.testing.assert_array_equal(np.asarray(once), np.asarray(twice))
    direct = _direct_ddim(cfg, graphdef, params, x_T)
    assert len(direct) == k == len(once)
    for state, ref in zip(once, direct):
        np.testing.assert_allclose(np.asarray(state), np.asarray(ref), atol=2e-5)
    # the ancestral target of regression_student / advkd_student is not a function of the noise
    a1 = experiment.teacher_states(cfg, graphdef, params, x_T, k1, "ancestral")
    a2 = experiment.teacher_states(cfg, graphdef, params, x_T, k2, "ancestral")
    assert float(jnp.abs(a1[-1] - a2[-1]).mean()) > 1e-3
    ddim = experiment.make_trajectories(cfg, graphdef, params, tmp_path / "d1.npz", "ddim")
    again = experiment.make_trajectories(cfg, graphdef, params, tmp_path / "d2.npz", "ddim")
    anc = experiment.make_trajectories(cfg, graphdef, params, tmp_path / "a.npz", "ancestral")
    for key in ddim:
        np.testing.assert_array_equal(ddim[key], again[key])
    np.testing.assert_array_equal(ddim["z"], anc["z"])
    np.testing.assert_array_equal(ddim["val_z"], anc["val_z"])
    assert len(ddim["z"]) == cfg.trajectories.num and len(ddim["val_z"]) == cfg.trajectories.val_num
    assert not np.isclose(ddim["z"][:, None], ddim["val_z"][None]).all(axis=(2, 3, 4)).any()
    np.testing.assert_allclose(ddim[f"target{k - 1}"][:chunk], np.asarray(direct[-1]), atol=2e-5)  # 16x16: no resize


def test_validation_and_test_sets_are_disjoint(tiny_config):
    """train and val partition image_splits' train part (by row); the test part is image_splits' other part;
    no image of one split appears in another (digits has no duplicate images across them); the evaluation noise
    of val and test are different streams."""
    cfg = tiny_config
    splits = advkd_data.load(cfg)
    whole = image_splits.load(cfg.data)
    n = len(whole["train"]["label"])
    tr, va = splits["train"]["idx"], splits["val"]["idx"]
    assert len(np.intersect1d(tr, va)) == 0 and np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(n))
    np.testing.assert_allclose(splits["val"]["image"], whole["train"]["image"][va] * 2 - 1)
    np.testing.assert_allclose(splits["test"]["image"], whole["test"]["image"] * 2 - 1)
    assert len(va) == pytest.approx(cfg.data.val_fraction * n, abs=10)

    def rows(x):
        return {r.tobytes() for r in np.round(x.reshape(len(x), -1), 5)}

    val, test, train = rows(splits["val"]["image"]), rows(splits["test"]["image"]), rows(splits["train"]["image"])
    assert not val & test and not val & train and not test & train
    nv = np.asarray(jax.random.normal(experiment.eval_key(0, "val"), (8,)))
    nt = np.asarray(jax.random.normal(experiment.eval_key(0, "test"), (8,)))
    assert not np.allclose(nv, nt)


def test_quick_preset_splits_mnist_into_7k_1k_2k(shared_data):
    splits = advkd_data.load(load_config("advkd", "quick", []))
    assert {k: len(v["label"]) for k, v in splits.items()} == {"train": 7000, "val": 1000, "test": 2000}


@pytest.mark.slow
def test_every_variant_runs_through_the_reproduce_path(tiny_config, tmp_path, monkeypatch):
    """Every variant (regression_ddim included) through run_one: val_* and test metrics, the test part scored once
    per run, one cached trajectory set per target kind (ancestral, ddim)."""
    calls = []
    scored = experiment.test_metrics
    monkeypatch.setattr(experiment, "test_metrics", lambda *a, **k: calls.append(1) or scored(*a, **k))
    for variant in experiment.VARIANTS:
        metrics = run_one("advkd", tiny_config, variant, 0, tmp_path / variant, shared_dir=tmp_path / "shared",
                          progress=False)
        assert np.isfinite(metrics["fd"]) and metrics["fd"] >= 0, variant
        assert np.isfinite(metrics["val_fd"]) and metrics["val_fd"] >= 0, variant
        assert metrics["sample_seconds_per_1000"] > 0 and metrics["params"] > 0
        assert (tmp_path / variant / "samples.npy").exists()
        if experiment.variant_config(tiny_config, variant).kind in experiment.STUDENT_KINDS:
            assert np.isfinite(metrics["extra/val_final_stage_mse"]), variant
        assert len(calls) == list(experiment.VARIANTS).index(variant) + 1, variant
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "shared").glob("trajectories-*.npz")) == \
        ["ancestral", "ddim"]
    payload = {"method": "advkd", "preset": "tiny", "dataset": "digits", "seeds": [0],
               "variants": {v: {"fd": [1.0]} for v in experiment.VARIANTS}}
    (tmp_path / "runs").mkdir()
    for variant in experiment.VARIANTS:
        (tmp_path / variant).rename(tmp_path / "runs" / variant)
        (tmp_path / "runs" / variant / "seed0").mkdir()
        (tmp_path / "runs" / variant / "samples.npy").rename(tmp_path / "runs" / variant / "seed0" / "samples.npy")
    paths = experiment.plots(payload, tmp_path)
    assert set(paths) == {"samples"} | {f"samples_{v}" for v in experiment.VARIANTS}
    assert all(p.stat().st_size > 0 for p in paths.values())


@pytest.mark.slow
def test_distillation_stopped_in_a_stage_resumes_exactly(tiny_config, tmp_path):
    """The stage chain stopped after 1 of 3 steps of its last stage and resumed from the checkpoints ends where an
    uninterrupted run ends (earlier stages restored from their final checkpoints, D, optimisers and BN included)."""
    import chex

    cfg = tiny_config.copy_and_resolve_references()
    rng = np.random.default_rng(0)
    arrays = {"z": rng.normal(size=(32, 4, 4, 1)).astype(np.float32),
              **{f"target{k}": rng.normal(size=(32, s, s, 1)).astype(np.float32)
                 for k, s in enumerate((4, 8, 8, 16))}}
    cfg.distill.stage_steps = (2, 2, 2, 3)
    whole = experiment.distill_student(cfg, arrays, True, 0, tmp_path / "whole", False)
    cfg.distill.stage_steps = (2, 2, 2, 1)
    experiment.distill_student(cfg, arrays, True, 0, tmp_path / "split", False)
    cfg.distill.stage_steps = (2, 2, 2, 3)
    resumed = experiment.distill_student(cfg, arrays, True, 0, tmp_path / "split", False)
    for field in ("step", "g_params", "g_state", "g_opt", "d_params", "d_opt"):
        chex.assert_trees_all_equal(getattr(resumed, field), getattr(whole, field))
