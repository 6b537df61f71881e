"""WORK IN PROGRESS (not wired into an experiment yet): one PATE-TripleGAN iteration as a pure ``train_step``.

Players live in one NNX module (``Players``): generator G, student discriminator D_s, classifier C and the
teacher discriminators (a vmapped stack). One optax ``multi_transform`` updates each player from its own loss:

- teachers: each on its own disjoint private shard, real pairs (x, y) vs generated pairs (never released);
- D_s: generated pairs labelled real / fake by GNMax over the teachers' votes (its only private access);
- G: fools D_s (post-processing of D_s);
- C: DP-SGD. The private terms (labelled CE, adversarial term on private x_u against D_s) are one per-example
  loss clipped by jax-privacy's ``clipped_grad``; ``dp_noise`` adds noise to the clipped sum and divides by the
  expected batch size L; the pseudo-discriminative term R_P on generated samples touches no private data and
  enters as L * grad(R_P), so that after the division it is R_P's plain gradient.

The step returns the vote histogram in ``metrics["votes"]`` for the host-side privacy ledger.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.pate_triplegan import losses
from jaxsuite.methods.pate_triplegan.model import Classifier, Discriminator, Generator
from jaxsuite.privacy import dpsgd, pate


@dataclasses.dataclass(frozen=True)
class Hyper:
    alpha: float  # Triple-GAN's weight of the classifier-labelled pairs
    alpha_p: float  # weight of R_P
    clip_norm: float
    gnmax_sigma: float
    expected_batch: float  # L = q N of C's Poisson batches


class Players(nnx.Module):
    def __init__(self, cfg, hyper: Hyper, num_classes: int, image_shape: tuple[int, int, int], *, rngs: nnx.Rngs):
        self.hyper = hyper
        self.g = Generator(cfg.latent, num_classes, image_shape, tuple(cfg.g_hidden), rngs=rngs)
        self.d = Discriminator(num_classes, image_shape, tuple(cfg.d_hidden), rngs=rngs)
        self.c = Classifier(num_classes, image_shape, tuple(cfg.c_channels), cfg.c_hidden, rngs=rngs)

        @nnx.vmap(in_axes=0, out_axes=0)
        def teachers(key):
            return Discriminator(num_classes, image_shape, tuple(cfg.d_hidden), rngs=nnx.Rngs(key))

        self.teachers = teachers(jax.random.split(rngs.params(), cfg.num_teachers))
        self.num_classes, self.latent = num_classes, cfg.latent


def init(cfg, num_classes: int, image_shape, expected_batch: float, rng: jax.Array) -> TrainState:
    k_model, k_noise, k_state = jax.random.split(rng, 3)
    hyper = Hyper(cfg.loss.alpha, cfg.loss.alpha_p, cfg.dp.clip_norm, cfg.pate.sigma, expected_batch)
    players = Players(cfg.model, hyper, num_classes, tuple(image_shape), rngs=nnx.Rngs(params=k_model))
    adam = optax.adam(cfg.optim.lr, b1=0.5)
    c_tx = optax.chain(dpsgd.dp_noise(cfg.dp.clip_norm, cfg.dp.noise_multiplier, expected_batch, k_noise),
                       optax.adam(cfg.optim.lr))
    tx = optax.multi_transform({"g": adam, "d": adam, "teachers": adam, "c": c_tx},
                               lambda params: {k: k for k in params})
    return TrainState.create(players, tx, k_state)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """``batch``: "teacher_x" [T, b, H, W, C] and "teacher_y" [T, b] (a batch from each teacher's shard); "x", "y",
    "labeled", "mask": a padded Poisson batch of the private set for C."""
    p = state.merge()
    hp = p.hyper
    k_z, k_y, k_vote = jax.random.split(state.step_key(), 3)
    n_gen = batch["teacher_x"].shape[1]
    z = jax.random.normal(k_z, (n_gen, p.latent))
    y_gen = jax.random.randint(k_y, (n_gen,), 0, p.num_classes)

    def player(params, name):
        return getattr(state.merge({**state.params, **params}), name)

    x_gen = jax.lax.stop_gradient(p.g(z, y_gen))

    # 1. teachers: each on its own shard (vmapped over the leading teacher axis)
    def teacher_loss(t_params):
        teachers = player({"teachers": t_params}, "teachers")

        @nnx.vmap(in_axes=(0, 0, 0))
        def each(t, x, y):
            return losses.bce(t(x, y), 1.0) + losses.bce(t(x_gen, y_gen), 0.0)

        return jnp.sum(each(teachers, batch["teacher_x"], batch["teacher_y"]))

    g_teachers = jax.grad(teacher_loss)(state.params["teachers"])

    # 2. GNMax labels for generated pairs; the student learns them
    @nnx.vmap(in_axes=(0, None, None))
    def vote(t, x, y):
        return (t(x, y) > 0).astype(jnp.int32)

    real_votes = jnp.sum(vote(p.teachers, x_gen, y_gen), axis=0)  # [n_gen]
    votes = jnp.stack([batch["teacher_x"].shape[0] - real_votes, real_votes], -1).astype(jnp.float32)
    r = pate.gnmax(k_vote, votes, hp.gnmax_sigma).astype(jnp.float32)

    def student_loss(d_params):
        logits = player({"d": d_params}, "d")(x_gen, y_gen)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, r))

    g_d = jax.grad(student_loss)(state.params["d"])

    # 3. G against the student
    def gen_loss(g_params):
        return losses.generator_loss(p.d(player({"g": g_params}, "g")(z, y_gen), y_gen))

    g_g = jax.grad(gen_loss)(state.params["g"])

    # 4. C: DP-SGD on the private batch, R_P outside the clipped sum
    def private_loss(c_params, ex):
        c = player({"c": c_params}, "c")
        logits = c(ex["x"])
        y_c = jnp.argmax(logits, -1)
        d_cla = p.d(ex["x"], y_c)
        conf = jnp.max(jax.nn.softmax(logits), -1)
        adv = hp.alpha * conf * optax.sigmoid_binary_cross_entropy(jax.lax.stop_gradient(d_cla), 1.0)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, ex["y"]) * ex["labeled"]
        return jnp.sum(ex["mask"] * (adv + ce))

    clipped = dpsgd.clipped_grad_sum(private_loss, hp.clip_norm)(
        state.params["c"], {k: batch[k] for k in ("x", "y", "labeled", "mask")})

    def pseudo_loss(c_params):
        return hp.alpha_p * jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            player({"c": c_params}, "c")(x_gen), y_gen))

    g_rp = jax.grad(pseudo_loss)(state.params["c"])
    g_c = jax.tree.map(lambda a, b: a + hp.expected_batch * b, clipped, g_rp)

    grads = {"g": g_g, "d": g_d, "teachers": g_teachers, "c": g_c}
    new = state.apply_gradients(grads, state.model_state)
    return new, {"votes": votes, "student_agreement": jnp.mean(r == (real_votes * 2 > votes.sum(-1)))}
