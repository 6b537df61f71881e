"""One step of every kind jits and updates each of its players; GNMax answers reach the replay buffer only on
asking steps; C's pre-labels are refreshed on schedule."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from jaxsuite.core import train_state
from jaxsuite.methods.pate_triplegan import budget, data, experiment, released, train
from jaxsuite.methods.pate_triplegan.model import Discriminator

CFG = {"model": {"latent": 8, "g_hidden": (32,), "d_hidden": (32,), "c_channels": (4, 8), "c_hidden": 16,
                 "num_teachers": 4, "teacher_hidden": (16,)},
       "gen_batch": 8, "real_batch": 4, "relabel_every": 2,
       "loss": {"alpha": 0.5, "alpha_p": 0.1, "pseudo_pairs": "fake"},
       "privacy": {"epsilon": 10.0, "delta": 1e-5, "noise_scale": 1.0},
       "pate": {"sigma": 2.0, "queries": 2, "query_every": 2, "replay": 16},
       "dp": {"clip_norm": 1.0, "noise_multiplier": 1.0, "expected_batch": 8.0, "c_expected_batch": 4.0,
              "c_noise_multiplier": 2.0, "c_every": 2, "overflow_delta_share": 0.01},
       "optim": {"lr": 1e-3, "beta1": 0.5}, "steps": 50}


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", test_size=360, labeled_fraction=0.1)


@pytest.fixture(scope="module")
def step():
    return jax.jit(train.train_step)


def _setup(kind, d, clipping="ghost"):
    cfg = ConfigDict({**CFG, "kind": kind, "dp": {**CFG["dp"], "clipping": clipping}})
    priv = d["private"]
    plan = budget.plan(cfg, len(priv["y"]), int(priv["labeled"].sum()))
    hyper = train.make_hyper(cfg, d["num_classes"], plan)
    state = train.init(cfg, hyper, d["image_shape"], len(priv["y"]), jax.random.key(0))
    batch = experiment.private_batch(priv, cfg.model.num_teachers, 0, kind in train.PATE_KINDS)
    return state, jax.device_put(batch)


@pytest.mark.parametrize("kind", train.KINDS)
def test_one_step_updates_every_player(kind, digits, step):
    state, batch = _setup(kind, digits)
    new, metrics = step(state, batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    for name in state.params:
        before, after = jax.tree.leaves(state.params[name]), jax.tree.leaves(new.params[name])
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), name
    assert int(new.step) == 1


def test_ghost_clipping_gives_the_step_of_the_vmap_reference(digits, step):
    """D's and C's DP-SGD gradients (same Poisson batch, same noise) agree between the two clipping paths."""
    (ghost, batch), (ref, _) = _setup("pate_triplegan", digits, "ghost"), _setup("pate_triplegan", digits, "vmap")
    (new_ghost, _), (new_ref, _) = step(ghost, batch), step(ref, batch)
    for name in ("d", "c"):
        chex.assert_trees_all_close(new_ghost.params[name], new_ref.params[name], atol=1e-5)
    with pytest.raises(Exception, match="dp.clipping"):
        _setup("pate_triplegan", digits, "per_layer")


def test_bad_student_keep_is_named(digits):
    cfg = ConfigDict({**CFG, "kind": "pate_triplegan", "pate": {**CFG["pate"], "student_keep": "most"}})
    plan = budget.plan(cfg, len(digits["private"]["y"]), int(digits["private"]["labeled"].sum()))
    with pytest.raises(Exception, match="pate.student_keep"):
        train.make_hyper(cfg, digits["num_classes"], plan)


def test_gnmax_answers_are_kept_only_on_asking_steps_and_prelabels_refresh(digits, step):
    state, batch = _setup("pate_triplegan", digits)
    counts, pseudo = [], []
    for _ in range(4):
        state, _ = step(state, batch)
        counts.append(int(state.aux["count"]))
        pseudo.append(np.asarray(state.aux["pseudo_conf"]).copy())
    assert counts == [2, 2, 4, 4]  # asked at steps 0 and 2 (query_every = 2), 2 queries each
    assert np.array_equal(pseudo[0], pseudo[1]) and not np.array_equal(pseudo[1], pseudo[2])  # relabel_every = 2
    answers = np.asarray(state.aux["answer"][:4])
    assert ((0 <= answers) & (answers < 10)).all()


def test_c_reads_private_examples_only_on_its_private_steps(digits):
    """``dp.c_every`` 2: C's Poisson batch of labelled pairs is drawn on steps 0, 2, ... and empty on the others
    (their update is C's public terms alone: ``dp_noise`` adds no noise there)."""
    state, batch = _setup("pate_triplegan", digits)
    hp = state.merge().hyper
    assert (hp.c_poisson.every, hp.c_poisson.noise, hp.d_poisson.every) == (2, 2.0, 1)
    sizes = [sum(int(jnp.sum(train.c_private_batch(jnp.asarray(t), jax.random.key(k), batch, hp)[0]["mask"]))
                 for k in range(5)) for t in range(4)]
    assert sizes[0] > 0 and sizes[2] > 0 and sizes[1] == sizes[3] == 0


def test_teacher_shards_are_disjoint_cover_the_set_and_are_stable_under_add_remove(digits):
    """A shard is a keyed hash of each example's id: removing one example changes its own teacher's shard and no
    other (the add/remove relation DP-SGD is accounted in), and a different seed draws a different key."""
    private = digits["private"]

    def shards(priv):
        batch = experiment.private_batch(priv, 4, 0, True)
        out = []
        for t in range(4):
            rows = np.concatenate([batch[f"{k}"][t, :batch[f"{k}_size"][t]] for k in ("shard_labeled",
                                                                                        "shard_unlabeled")])
            out.append(set(priv["id"][rows].tolist()))
        return out, batch

    full, batch = shards(private)
    assert sum(len(s) for s in full) == len(private["y"]) and len(set().union(*full)) == len(private["y"])
    for key in ("shard_labeled", "shard_unlabeled"):
        for t in range(4):
            rows = batch[key][t, :batch[f"{key}_size"][t]]
            assert private["labeled"][rows].all() == (key == "shard_labeled")
            assert (~private["labeled"][rows]).all() == (key == "shard_unlabeled")
    for victim in (0, 17, len(private["y"]) - 1):
        keep = np.arange(len(private["y"])) != victim
        fewer, _ = shards({k: v[keep] for k, v in private.items()})
        changed = [t for t in range(4) if fewer[t] != full[t]]
        assert len(changed) == 1 and full[changed[0]] - fewer[changed[0]] == {int(private["id"][victim])}
    assert not np.array_equal(experiment.teacher_of(private["id"], 4, 0), experiment.teacher_of(private["id"], 4, 1))


@pytest.mark.parametrize("kind", train.PRIVATE_KINDS)
def test_a_private_step_writes_only_the_released_metrics(kind, digits, step):
    state, batch = _setup(kind, digits)
    _, metrics = step(state, batch)
    assert set(metrics) <= set(released.STEP_METRICS), set(metrics) - set(released.STEP_METRICS)
    for forbidden in ("teacher_loss", "d_dp_batch", "c_dp_batch"):
        assert forbidden not in metrics and forbidden not in released.STEP_METRICS
    with pytest.raises(RuntimeError, match="released.py"):
        released.check({**metrics, "teacher_loss": 0.0}, released.STEP_METRICS, "step metrics")


def test_vmapped_teachers_train_like_teachers_trained_one_by_one(digits):
    """The teachers' gradients from the vmapped step equal each teacher's own gradient of L_D on its own shard
    batch; Adam is elementwise, so their updates, and hence their training, are those of separate teachers."""
    state, batch = _setup("pate_gan", digits)
    p = state.merge()
    x_gen = jax.random.uniform(jax.random.key(1), (8, 8, 8, 1))
    y_gen = jnp.arange(8) % 10
    key = jax.random.key(2)
    grads = train._teacher_grads(state, p, batch, state.aux, x_gen, y_gen, key)
    lab, _ = train._sample_shard(jax.random.split(key)[0], batch["shard_labeled"], batch["shard_labeled_size"],
                                 p.hyper.real_batch)  # as the step draws
    one = Discriminator(10, (8, 8, 1), CFG["model"]["teacher_hidden"], rngs=nnx.Rngs(0))
    graphdef, _, rest = train_state.split_module(one)
    for t in range(p.hyper.num_teachers):
        def alone(params):
            d = nnx.merge(graphdef, params, rest)
            return train._d_loss(d, batch["x"][lab[t]], batch["y"][lab[t]], x_gen, y_gen, p.hyper)  # noqa: B023 -- called within this iteration

        own = jax.grad(alone)(jax.tree.map(lambda a: a[t], state.params["teachers"]))  # noqa: B023 -- called within this iteration
        chex.assert_trees_all_close(own, jax.tree.map(lambda a: a[t], grads), rtol=1e-5, atol=1e-6)  # noqa: B023 -- called within this iteration


def test_teachers_sharded_over_the_mesh_give_the_same_step(digits, step):
    """The teacher axis placed on the 4 simulated devices (one teacher each) computes the same step."""
    from jaxsuite.core.sharding import make_mesh

    mesh = make_mesh()
    state, batch = _setup("pate_triplegan", digits)
    sharded = train.shard_teachers(state, mesh)
    leaf = jax.tree.leaves(sharded.params["teachers"])[0]
    assert len(leaf.sharding.device_set) == 4 and leaf.sharding.spec[0] == "data"
    assert len(jax.tree.leaves(sharded.params["g"])[0].sharding.device_set) == 4  # replicated
    want, _ = step(state, batch)
    got, _ = jax.jit(train.train_step)(sharded, batch)
    chex.assert_trees_all_close(got.params, want.params, rtol=1e-5, atol=1e-6)
