"""One training iteration of every GAN variant as a pure ``train_step(state, batch) -> (state, metrics)``.

``kind`` (static) picks the game and its privacy:

- ``pate_triplegan``: Triple-GAN's three players (G, D, C) with hybrid desensitisation (README.md has the privacy
  argument). The discriminator's gradient -- and through D the generator's -- is desensitised by DP-SGD: D is
  trained on Poisson batches of the whole private set, each example a pair: labelled (x, y), or unlabelled x_u
  with C's pre-label (Eq. 3's classifier pairs), every per-example gradient clipped (jax-privacy), Gaussian noise
  added; D's generated-pair term touches no private data and is added outside the clipped sum. The classifier's
  gradient has three parts: R_L on the labelled pairs by DP-SGD (its own Poisson batches); a PATE student term,
  where teacher discriminators D_1..D_T (a vmapped stack), each playing D's part on its own fixed, disjoint shard,
  vote a label for generated images (argmax_y D_t(x, y)) and C learns the GNMax answers (kept in a replay buffer:
  post-processing); and R_P (Eq. 5) on generated samples, public. Every ``relabel_every`` steps C pre-labels the
  unlabelled private images (post-processing of C).
- ``no_pate`` (control): pate_triplegan without teachers, GNMax or C's student term; the budget's GNMax share
  goes to its two DP-SGD players (``budget.plan``).
- ``pate_gan``: PATE-GAN (Jordon et al. 2019) in conditional form: teachers on their labelled pairs; a student
  discriminator learns GNMax answers (real / fake) of the teachers about generated pairs, from the same kind of
  replay buffer; G plays against the student.
- ``dp_cgan``: a conditional GAN whose D is trained with DP-SGD on Poisson batches of the labelled private pairs
  (DP-CGAN, Torkzadehmahani et al. 2019); D's generated-pair term is outside the clipped sum.
- ``triplegan``: non-private Triple-GAN (upper bound): D, G, C with their plain losses (Eq. 3-5).

``batch`` is the whole private set and its fixed index tables (the same arrays every step, placed once):
"x" [N, H, W, C], "y" [N], "labeled" [N] bool, "labeled_idx" [n_l], "unlabeled_idx" [n_u], and for the PATE kinds "shard_labeled"
[T, m_l] and "shard_unlabeled" [T, m_u] (disjoint shards, each teacher's examples first, then padding) with their
sizes "shard_labeled_size" and "shard_unlabeled_size" [T] (``experiment.private_batch``). Every draw inside a step (z, y, mini-batches,
the Poisson batch, the mechanisms' noise) comes from the state's key folded with the step, so a resumed run
continues exactly.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.pate_triplegan import losses, released
from jaxsuite.methods.pate_triplegan.budget import Plan, Poisson
from jaxsuite.methods.pate_triplegan.model import Classifier, Discriminator, Generator
from jaxsuite.privacy import dpsgd, pate, sampling

KINDS = ("pate_triplegan", "no_pate", "pate_gan", "dp_cgan", "triplegan")
PATE_KINDS = ("pate_triplegan", "pate_gan")
PRIVATE_KINDS = ("pate_triplegan", "no_pate", "pate_gan", "dp_cgan")
PRIVATE_TRIPLE = ("pate_triplegan", "no_pate")  # Triple-GAN's players under hybrid desensitisation
WITH_CLASSIFIER = ("pate_triplegan", "no_pate", "triplegan")


@dataclasses.dataclass(frozen=True)
class Hyper:
    """The static numbers of a step (part of the graph definition, so a change recompiles)."""
    kind: str
    num_classes: int
    latent: int
    gen_batch: int  # generated pairs per step
    real_batch: int  # private pairs per step of a non-private player, and per teacher for each kind of pair
    alpha: float  # Triple-GAN's weight of classifier-labelled pairs
    alpha_p: float  # weight of R_P
    alpha_s: float  # weight of C's PATE student term (GNMax labels of generated images)
    pseudo_pairs: str  # "fake" (Triple-GAN) or "real": how D / the teachers treat (x_u, C(x_u))
    num_teachers: int
    queries: int  # GNMax queries per asking step (the first `queries` generated images)
    query_every: int  # steps between two asking steps
    replay: int  # size of the ring buffer of GNMax answers the student learns from
    gnmax_sigma: float
    relabel_every: int  # pate_triplegan: steps between C's pre-labellings of the private images
    clip_norm: float  # DP-SGD's per-example clip
    d_poisson: Poisson | None  # D's DP-SGD batches (pate_triplegan: all private examples; dp_cgan: labelled)
    c_poisson: Poisson | None  # C's DP-SGD batches of labelled pairs (pate_triplegan), on every `every`-th step
    clipping: str = "ghost"  # DP-SGD's per-example clipping: "ghost" (norms without per-example grads) or "vmap"
    student_keep: str = "all"  # C's student term: every GNMax answer, or only those "agreeing" with G's label


class Players(nnx.Module):
    def __init__(self, cfg, hyper: Hyper, image_shape: tuple[int, int, int], *, rngs: nnx.Rngs):
        self.hyper = hyper
        k = hyper.num_classes
        self.g = Generator(hyper.latent, k, image_shape, tuple(cfg.g_hidden), rngs=rngs)
        self.d = Discriminator(k, image_shape, tuple(cfg.d_hidden), rngs=rngs)
        if hyper.kind in WITH_CLASSIFIER:
            self.c = Classifier(k, image_shape, tuple(cfg.c_channels), cfg.c_hidden, rngs=rngs)
        if hyper.kind in PATE_KINDS:
            @nnx.vmap(in_axes=0, out_axes=0)
            def teachers(key):
                return Discriminator(k, image_shape, tuple(cfg.teacher_hidden), rngs=nnx.Rngs(key))

            self.teachers = teachers(jax.random.split(rngs.params(), cfg.num_teachers))


def make_hyper(cfg, num_classes: int, plan: Plan) -> Hyper:
    """``plan`` (``budget.plan``): the noise levels and each DP-SGD player's Poisson batches."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"config key 'kind' must be one of {KINDS}, got {cfg.kind!r}")
    if cfg.loss.pseudo_pairs not in ("fake", "real"):
        raise ConfigError(f"config key 'loss.pseudo_pairs' must be 'fake' or 'real', got {cfg.loss.pseudo_pairs!r}")
    if not 0 < cfg.pate.queries <= cfg.gen_batch:
        raise ConfigError(f"config key 'pate.queries' must be in [1, gen_batch={cfg.gen_batch}], got {cfg.pate.queries}")
    if cfg.pate.query_every < 1:
        raise ConfigError(f"config key 'pate.query_every' must be >= 1, got {cfg.pate.query_every}")
    if cfg.relabel_every < 1:
        raise ConfigError(f"config key 'relabel_every' must be >= 1, got {cfg.relabel_every}")
    keep = cfg.pate.get("student_keep", "all")
    if keep not in ("all", "agreeing"):
        raise ConfigError(f"config key 'pate.student_keep' must be 'all' or 'agreeing', got {keep!r}")
    clipping = cfg.dp.get("clipping", "ghost")
    if clipping not in dpsgd.CLIPPING:
        raise ConfigError(f"config key 'dp.clipping' must be one of {dpsgd.CLIPPING}, got {clipping!r}")
    return Hyper(cfg.kind, num_classes, cfg.model.latent, cfg.gen_batch, cfg.real_batch, cfg.loss.alpha,
                 cfg.loss.alpha_p, cfg.loss.get("alpha_s", cfg.loss.alpha_p), cfg.loss.pseudo_pairs,
                 cfg.model.num_teachers, cfg.pate.queries, cfg.pate.query_every, cfg.pate.replay,
                 plan.gnmax_sigma, cfg.relabel_every, cfg.dp.clip_norm, plan.dpsgd.get("d"), plan.dpsgd.get("c"),
                 clipping, keep)


def init(cfg, hyper: Hyper, image_shape, num_private: int, rng: jax.Array) -> TrainState:
    """Players and one optax transformation per player (Adam; C's is `classifier_optimizer`; a DP-SGD-trained
    player's chain adds the noise first)."""
    k_model, k_noise, k_state = jax.random.split(rng, 3)
    image_shape = tuple(image_shape)
    players = Players(cfg.model, hyper, image_shape, rngs=nnx.Rngs(params=k_model))
    adam = optax.adam(cfg.optim.lr, b1=cfg.optim.beta1)
    txs = {name: adam for name in ("g", "d", "teachers") if hasattr(players, name)}
    if hasattr(players, "c"):
        txs["c"] = classifier_optimizer(cfg.optim)
    for name, batches in (("d", hyper.d_poisson), ("c", hyper.c_poisson)):
        if batches is not None:  # noise on the clipped sum (on the player's private steps), / L, then its optimiser
            txs[name] = optax.chain(dpsgd.dp_noise(hyper.clip_norm, batches.noise, batches.expected,
                                                   jax.random.fold_in(k_noise, ord(name)), batches.every), txs[name])
    state = TrainState.create(players, optax.multi_transform(txs, lambda params: {k: k for k in params}), k_state)
    aux = {}
    if hyper.kind in PATE_KINDS:  # the student's replay buffer of GNMax answers
        aux.update({"x": jnp.zeros((hyper.replay, *image_shape)), "y": jnp.zeros((hyper.replay,), jnp.int32),
                    "answer": jnp.zeros((hyper.replay,), jnp.int32), "count": jnp.zeros((), jnp.int32)})
    if hyper.kind in PRIVATE_TRIPLE:  # C's latest pre-labels of the private images
        aux.update({"pseudo_y": jnp.zeros((num_private,), jnp.int32), "pseudo_conf": jnp.zeros((num_private,))})
    return state.replace(aux=aux or None)


def classifier_optimizer(optim) -> optax.GradientTransformation:
    """C's own optimiser: ``optim.c_optimizer`` "adam" (default; rate ``optim.c_lr``, default ``optim.lr``) or
    "sgd" with momentum ``optim.c_momentum``. A DP-SGD-trained C takes few, noisy private steps; Adam's
    per-coordinate scaling blows its noise up to the size of the signal, heavy-ball SGD averages it."""
    name = optim.get("c_optimizer", "adam")
    lr = optim.get("c_lr", optim.lr)
    if name == "adam":
        return optax.adam(lr, b1=optim.beta1)
    if name == "sgd":
        return optax.sgd(lr, momentum=optim.get("c_momentum", 0.9))
    raise ConfigError(f"config key 'optim.c_optimizer' must be 'adam' or 'sgd', got {name!r}")


def shard_teachers(state: TrainState, mesh) -> TrainState:
    """The teachers' parameters and optimizer state sharded along their leading (teacher) axis over the mesh's
    ``data`` axis (when the count divides), everything else replicated: the vmapped teacher step then runs each
    device's teachers locally."""
    replicated = NamedSharding(mesh, P())
    by_teacher = NamedSharding(mesh, P("data"))
    n = state.merge().hyper.num_teachers if "teachers" in state.params else 0
    split = n and n % mesh.shape["data"] == 0

    def place(path, x):
        on_axis = split and any(getattr(k, "key", None) == "teachers" for k in path) and x.ndim and x.shape[0] == n
        return jax.device_put(x, by_teacher if on_axis else replicated)

    return jax.tree_util.tree_map_with_path(place, state)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    p = state.merge()
    hp: Hyper = p.hyper
    k_z, k_y, k_t, k_q, k_d, k_c = jax.random.split(state.step_key(), 6)
    z = jax.random.normal(k_z, (hp.gen_batch, hp.latent))
    y_gen = jax.random.randint(k_y, (hp.gen_batch,), 0, hp.num_classes)
    x_gen = jax.lax.stop_gradient(p.g(z, y_gen))
    grads, metrics, aux = {}, {}, state.aux
    if hp.kind in PRIVATE_TRIPLE:  # C pre-labels the private images every `relabel_every` steps
        aux = jax.lax.cond(state.step % hp.relabel_every == 0,
                           lambda: {**aux, **_prelabel(p.c, batch["x"])}, lambda: aux)

    # --- PATE: teachers learn on their shards, then answer this step's queries about generated images
    if hp.kind in PATE_KINDS:
        grads["teachers"] = _teacher_grads(state, p, batch, aux, x_gen, y_gen, k_t)
        asked = state.step % hp.query_every == 0  # GNMax is asked `queries` questions every `query_every` steps
        aux, answers = _answer_queries(p, aux, x_gen[:hp.queries], y_gen[:hp.queries], k_q, asked)
        metrics["gnmax_answers"] = aux["count"].astype(jnp.float32)
        pick = jax.random.randint(jax.random.fold_in(k_q, 1), (hp.gen_batch,), 0, jnp.minimum(aux["count"], hp.replay))
        replay = {k: aux[k][pick] for k in ("x", "y", "answer")}

    # --- the discriminator
    if hp.kind == "pate_gan":  # the student learns the teachers' real / fake answers
        metrics["replay_real"] = jnp.mean(replay["answer"].astype(jnp.float32))
        metrics["d_loss"], grads["d"] = jax.value_and_grad(lambda prm: jnp.mean(optax.sigmoid_binary_cross_entropy(
            _with(state, "d", prm)(replay["x"], replay["y"]), replay["answer"].astype(jnp.float32))))(
            state.params["d"])
    elif hp.kind in (*PRIVATE_TRIPLE, "dp_cgan"):  # DP-SGD; the generated-pair term is public
        pool = jnp.arange(batch["y"].shape[0]) if hp.kind in PRIVATE_TRIPLE else batch["labeled_idx"]
        ex = _poisson(k_d, pool, hp.d_poisson, batch, aux)
        private = _dp_grad(lambda prm, one: _d_private_loss(_with(state, "d", prm), one, hp), state.params["d"], ex, hp)
        w_gen = losses.pseudo_pair_role(hp.alpha, hp.pseudo_pairs)[0] if hp.kind in PRIVATE_TRIPLE else 1.0
        public = jax.grad(lambda prm: w_gen * losses.bce(_with(state, "d", prm)(x_gen, y_gen), 0.0))(state.params["d"])
        grads["d"] = _plus_public(private, public, hp.d_poisson)
    else:  # non-private Triple-GAN
        lab = _sample(k_d, batch["labeled_idx"], hp.real_batch)
        unl = _sample(k_t, batch["unlabeled_idx"], hp.real_batch)
        y_cla, conf = _classify(p.c, batch["x"][unl])
        metrics["d_loss"], grads["d"] = jax.value_and_grad(lambda prm: _d_loss(
            _with(state, "d", prm), batch["x"][lab], batch["y"][lab], x_gen, y_gen, hp, batch["x"][unl], y_cla,
            conf))(state.params["d"])

    # --- G against D (post-processing of D)
    metrics["g_loss"], grads["g"] = jax.value_and_grad(
        lambda prm: losses.generator_loss(p.d(_with(state, "g", prm)(z, y_gen), y_gen)))(state.params["g"])

    # --- C
    if hp.kind in PRIVATE_TRIPLE:
        # private: R_L by DP-SGD on the labelled pairs; public: the PATE student's term (pate_triplegan) (GNMax answers about
        # generated images, replayed) and R_P
        # (on C's private steps only, every `every`-th: elsewhere no private example is read and no noise added)
        ex, c_private_step = c_private_batch(state.step, k_c, batch, hp)
        private = jax.lax.cond(  # the clipped sum is computed on C's private steps only (it is zero elsewhere)
            c_private_step,
            lambda: _dp_grad(lambda prm, one: optax.softmax_cross_entropy_with_integer_labels(
                _with(state, "c", prm)(one["x"]), one["y"]), state.params["c"], ex, hp),
            lambda: jax.tree.map(jnp.zeros_like, state.params["c"]))

        def c_public(prm):
            c = _with(state, "c", prm)
            public = losses.pseudo_discriminative(c(x_gen), y_gen, hp.alpha_p)
            if hp.kind == "no_pate":
                return public
            student = losses.student_loss(c(replay["x"]), replay["answer"], replay["y"], hp.student_keep)
            return hp.alpha_s * student + public

        metrics["c_public_loss"], public = jax.value_and_grad(c_public)(state.params["c"])
        grads["c"] = _plus_public(private, public, hp.c_poisson)
    elif hp.kind == "triplegan":
        lab = _sample(k_c, batch["labeled_idx"], hp.real_batch)
        unl = _sample(jax.random.fold_in(k_c, 1), batch["unlabeled_idx"], hp.real_batch)

        def c_loss(prm):
            c = _with(state, "c", prm)
            logits_u = c(batch["x"][unl])
            d_cla = p.d(batch["x"][unl], jnp.argmax(logits_u, -1))
            return losses.classifier_loss(d_cla, logits_u, c(batch["x"][lab]), batch["y"][lab], c(x_gen), y_gen,
                                          hp.alpha, hp.alpha_p)[0]

        metrics["c_loss"], grads["c"] = jax.value_and_grad(c_loss)(state.params["c"])

    if hp.kind in PRIVATE_KINDS:  # (at trace time: a private step writes only what released.py lists)
        released.check(metrics, released.STEP_METRICS, "step metrics")
    return state.apply_gradients(grads, state.model_state).replace(aux=aux), metrics


# ------------------------------------------------------------------------------------------ pieces ----

def _with(state: TrainState, name: str, params) -> nnx.Module:
    """Player ``name`` of the state's module with ``params`` in place of its own."""
    return getattr(state.merge({**state.params, name: params}), name)


def _sample(key, idx: jax.Array, n: int) -> jax.Array:
    """``n`` entries of ``idx`` drawn with replacement (along the last axis)."""
    return jnp.take_along_axis(idx, jax.random.randint(key, idx.shape[:-1] + (n,), 0, idx.shape[-1]), -1)


def _classify(c, x):
    """C's labels and confidences, as data (no gradient)."""
    logits = jax.lax.stop_gradient(c(x))
    return jnp.argmax(logits, -1), jnp.max(jax.nn.softmax(logits), -1)


def _prelabel(c, x, chunk: int = 1000) -> dict:
    """C's label and confidence for every private image (only the unlabelled ones are read)."""
    n = x.shape[0]
    xs = jnp.concatenate([x, jnp.zeros(((-n) % chunk, *x.shape[1:]), x.dtype)]).reshape((-1, chunk, *x.shape[1:]))
    y, conf = jax.lax.map(lambda xc: _classify(c, xc), xs)
    return {"pseudo_y": y.reshape(-1)[:n], "pseudo_conf": conf.reshape(-1)[:n]}


def _d_loss(d, x_real, y_real, x_gen, y_gen, hp: Hyper, x_cla=None, y_cla=None, conf=None):
    """Triple-GAN's L_D (Eq. 3) on these pairs; without classifier pairs, the conditional GAN's loss."""
    d_cla = None if x_cla is None else d(x_cla, y_cla)
    return losses.discriminator_loss(d(x_real, y_real), d(x_gen, y_gen), d_cla, conf, hp.alpha, hp.pseudo_pairs)


def _d_private_loss(d, ex, hp: Hyper):
    """D's private term for one example of a DP-SGD batch: a labelled pair is real; an unlabelled image with C's
    pre-label is a classifier pair (Eq. 3, weight alpha times C's confidence)."""
    _, target = losses.pseudo_pair_role(hp.alpha, hp.pseudo_pairs)
    real = optax.sigmoid_binary_cross_entropy(d(ex["x"], ex["y"]), 1.0)
    cla = hp.alpha * ex["conf"] * optax.sigmoid_binary_cross_entropy(d(ex["x"], ex["pseudo_y"]), target)
    return jnp.where(ex["labeled"], real, cla)


def _poisson(key, idx: jax.Array, batches: Poisson, batch: dict, aux) -> dict:
    """A padded Poisson batch (rate q) of the private examples ``idx``, with C's pre-labels where kept."""
    pos, mask = sampling.poisson_batch(key, idx.shape[0], batches.rate, batches.max_batch)
    rows = idx[pos]
    ex = {"x": batch["x"][rows], "y": batch["y"][rows], "labeled": batch["labeled"][rows], "mask": mask,
          "pseudo_y": jnp.zeros_like(rows), "conf": jnp.zeros(rows.shape)}
    if aux is not None and "pseudo_y" in aux:
        ex.update(pseudo_y=aux["pseudo_y"][rows], conf=aux["pseudo_conf"][rows])
    return ex


def c_private_batch(step, key, batch: dict, hp: Hyper) -> tuple[dict, jax.Array]:
    """C's Poisson batch of labelled pairs and whether ``step`` is one of its private steps (t % every == 0); on
    the others every slot is padding: no private example is read."""
    ex = _poisson(key, batch["labeled_idx"], hp.c_poisson, batch, None)
    private_step = step % hp.c_poisson.every == 0
    return {**ex, "mask": ex["mask"] & private_step}, private_step


def _dp_grad(loss_one, params, ex: dict, hp: Hyper):
    """Sum over the Poisson batch of per-example clipped gradients (padding contributes zero)."""
    return dpsgd.clipped_grad_sum(lambda prm, one: jnp.sum(one["mask"] * loss_one(prm, one)), hp.clip_norm,
                                  clipping=hp.clipping)(params, ex)


def _plus_public(clipped_sum, public_grad, batches: Poisson):
    """A DP-SGD player's gradient: its clipped private sum plus L times the gradient of its terms that touch no
    private data, so that after ``dp_noise`` divides by L those are their plain gradient."""
    return jax.tree.map(lambda a, b: a + batches.expected * b, clipped_sum, public_grad)


def _sample_shard(key, table: jax.Array, sizes: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """(``n`` entries drawn with replacement from each teacher's row of ``table`` [T, m], within its first
    ``sizes[t]`` entries; [T, n]) and a [T] flag of the teachers whose shard is not empty (an empty shard's draws
    are padding and must weigh nothing)."""
    u = jax.random.uniform(key, (table.shape[0], n))
    pos = jnp.minimum((u * sizes[:, None]).astype(jnp.int32), jnp.maximum(sizes[:, None] - 1, 0))
    return jnp.take_along_axis(table, pos, -1), sizes > 0


def _teacher_grads(state: TrainState, p: Players, batch: dict, aux: dict, x_gen, y_gen, key):
    """Each teacher plays D on its own shard (Eq. 3): its labelled pairs (real), G's pairs (fake) and, in
    pate_triplegan, its shard's unlabelled images with C's pre-labels. A teacher with no labelled example does not
    train; one with no unlabelled example weighs its classifier pairs 0. Teachers are never released, nor are their
    losses (a noise-free function of their shards)."""
    hp: Hyper = p.hyper
    k_lab, k_unl = jax.random.split(key)
    lab, has_lab = _sample_shard(k_lab, batch["shard_labeled"], batch["shard_labeled_size"], hp.real_batch)
    cla = ()  # pate_gan: no classifier pairs
    if hp.kind == "pate_triplegan":
        unl, has_unl = _sample_shard(k_unl, batch["shard_unlabeled"], batch["shard_unlabeled_size"], hp.real_batch)
        cla = (batch["x"][unl], aux["pseudo_y"][unl], aux["pseudo_conf"][unl] * has_unl[:, None])

    def total(params):
        each = nnx.vmap(lambda t, xl, yl, c: _d_loss(t, xl, yl, x_gen, y_gen, hp, *c), in_axes=(0, 0, 0, 0))
        per = each(_with(state, "teachers", params), batch["x"][lab], batch["y"][lab], cla)
        return jnp.sum(jnp.where(has_lab, per, 0.0))

    return jax.grad(total)(state.params["teachers"])


def _answer_queries(p: Players, aux: dict, xq, yq, key, asked):
    """The teachers' votes on the queries and GNMax's answers, written into the replay buffer if ``asked`` (else
    computed and dropped: nothing else reads them).

    pate_triplegan asks for a label: each teacher votes argmax_y D_t(x, y) (the label under which it finds the
    image most real). pate_gan asks real or fake for the pair (x, y)."""
    hp: Hyper = p.hyper
    if hp.kind == "pate_triplegan":
        @nnx.vmap(in_axes=(0, None))
        def vote(t, x):
            scores = jax.vmap(lambda y: t(x, jnp.full((x.shape[0],), y)), out_axes=1)(jnp.arange(hp.num_classes))
            return jax.nn.one_hot(jnp.argmax(scores, -1), hp.num_classes)

        votes = jnp.sum(vote(p.teachers, xq), axis=0)  # [Q, K]
    else:
        @nnx.vmap(in_axes=(0, None, None))
        def vote(t, x, y):
            return (t(x, y) > 0).astype(jnp.int32)

        real = jnp.sum(vote(p.teachers, xq, yq), axis=0)
        votes = jnp.stack([hp.num_teachers - real, real], -1).astype(jnp.float32)
    answers = pate.gnmax(key, votes, hp.gnmax_sigma)
    pos = (aux["count"] + jnp.arange(xq.shape[0])) % hp.replay
    new = {"x": aux["x"].at[pos].set(xq), "y": aux["y"].at[pos].set(yq), "answer": aux["answer"].at[pos].set(answers),
           "count": aux["count"] + xq.shape[0]}
    aux = {**aux, **{k: jnp.where(asked, v, aux[k]) for k, v in new.items()}}
    return aux, answers
