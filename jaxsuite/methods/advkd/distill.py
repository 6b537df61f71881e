"""Stage-wise distillation of the teacher's trajectories into the progressive student, as pure functions.

Stage k (0..K-1) trains the student's sub-modules 0..k (and head k) to map the noise z to the teacher's state at
checkpoint k, against a fresh noise-conditioned discriminator (``adversarial``), or by L2 alone (the
``regression_student`` and ``regression_ddim`` baselines: the same step on the ancestral or the DDIM targets). The official code starts every stage with a new discriminator and new Adam
optimisers (lr 1e-4, betas (0.5, 0.999)) and clips D's weights to +-0.1 after each step; here the clipping is an
optax transformation at the end of D's chain. ``distill.gp_examples`` > 0 estimates the gradient penalty on that
many examples of the batch (a random subset, as the batch is): its second-order gradient through D's strided convs
costs about ten D forward passes with XLA on a CPU. One step = one D update then one G update (1:1 as official), the
student's forward shared by both through ``jax.vjp``.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxsuite.core.train_state import module_state, split_module
from jaxsuite.methods.advkd import losses
from jaxsuite.methods.advkd.networks import NoiseConditionedDiscriminator, ProgressiveStudent


@dataclasses.dataclass(frozen=True)
class Hyper:
    """The static numbers of a stage's step (a change recompiles)."""
    stage: int
    adversarial: bool
    gp_weight: float
    regression_weight: float
    gp_examples: int = 0  # the penalty on the batch's first n examples (a random subset); 0 = all (official)


@struct.dataclass
class DistillState:
    step: jax.Array
    g_params: dict
    g_state: dict  # the student's BatchNorm statistics
    g_opt: optax.OptState
    d_params: dict
    d_opt: optax.OptState
    rng: jax.Array
    g_graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    d_graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
    d_tx: optax.GradientTransformation = struct.field(pytree_node=False)

    def student(self) -> ProgressiveStudent:
        return nnx.merge(self.g_graphdef, self.g_params, self.g_state)


def clip_params(limit: float) -> optax.GradientTransformation:
    """Keep every parameter in [-limit, limit] after the update (WGAN's weight clipping, as an update rule)."""

    def update(updates, state, params):
        return jax.tree.map(lambda p, u: jnp.clip(p + u, -limit, limit) - p, params, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


@functools.lru_cache(maxsize=None)
def _adam(lr: float, b1: float, b2: float, weight_clip: float = 0.0) -> optax.GradientTransformation:
    """One object per setting, so a state's static optimiser compares equal across seeds (no recompiles)."""
    tx = optax.adam(lr, b1=b1, b2=b2)
    return optax.chain(tx, clip_params(weight_clip)) if weight_clip else tx


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """Everything that shapes a stage's fresh state (hashable: the static argument of :func:`_fresh_stage`)."""
    stage: int
    in_ch: int
    channels: tuple[tuple[int, ...], ...]
    upsample: tuple[bool, ...]
    input_size: int
    bn_momentum: float
    ndf: int
    max_ch: int
    hidden: int
    g_lr: float
    d_lr: float
    b1: float
    b2: float
    d_weight_clip: float


def stage_spec(cfg, stage: int) -> StageSpec:
    s, d = cfg.student, cfg.distill
    return StageSpec(stage=stage, in_ch=cfg.data.channels, channels=tuple(tuple(c) for c in s.channels),
                     upsample=tuple(bool(u) for u in s.upsample), input_size=s.input_size,
                     bn_momentum=float(s.bn_momentum), ndf=d.ndf, max_ch=d.max_ch, hidden=d.hidden,
                     g_lr=float(d.optim.g_lr), d_lr=float(d.optim.d_lr), b1=float(d.optim.b1),
                     b2=float(d.optim.b2), d_weight_clip=float(d.d_weight_clip))


def make_student(spec: StageSpec, rngs: nnx.Rngs) -> ProgressiveStudent:
    return ProgressiveStudent(spec.in_ch, spec.channels, spec.upsample, input_size=spec.input_size,
                              bn_momentum=spec.bn_momentum, rngs=rngs)


@functools.partial(jax.jit, static_argnums=0)
def _fresh_stage(spec: StageSpec, rng: jax.Array) -> DistillState:
    student = make_student(spec, nnx.Rngs(jax.random.fold_in(rng, 0)))
    g_graphdef, g_params, g_state = split_module(student)
    disc = NoiseConditionedDiscriminator(spec.in_ch, student.sizes[spec.stage], spec.input_size, ndf=spec.ndf,
                                         max_ch=spec.max_ch, hidden=spec.hidden,
                                         rngs=nnx.Rngs(jax.random.fold_in(rng, 1 + spec.stage)))
    d_graphdef, d_params, _ = split_module(disc)
    g_tx = _adam(spec.g_lr, spec.b1, spec.b2)
    d_tx = _adam(spec.d_lr, spec.b1, spec.b2, spec.d_weight_clip)
    return DistillState(step=jnp.zeros((), jnp.int32), g_params=g_params, g_state=g_state, g_opt=g_tx.init(g_params),
                        d_params=d_params, d_opt=d_tx.init(d_params), rng=jax.random.fold_in(rng, 100 + spec.stage),
                        g_graphdef=g_graphdef, d_graphdef=d_graphdef, g_tx=g_tx, d_tx=d_tx)


def init_stage(cfg, stage: int, rng: jax.Array, previous: DistillState | None = None) -> DistillState:
    """The state that starts ``stage``: the student of the previous stage (fresh for stage 0), a fresh
    discriminator at this stage's resolution, fresh optimisers. Compiled once per stage setting."""
    state = _fresh_stage(stage_spec(cfg, stage), rng)
    if previous is None:
        return state
    return state.replace(g_params=previous.g_params, g_state=previous.g_state,
                         g_opt=state.g_tx.init(previous.g_params))


def hyper(cfg, stage: int, adversarial: bool) -> Hyper:
    d = cfg.distill
    return Hyper(stage=stage, adversarial=adversarial, gp_weight=float(d.gp_weight) if adversarial else 0.0,
                 regression_weight=float(d.regression_weight) if adversarial else 1.0, gp_examples=int(d.gp_examples))


def train_step(state: DistillState, batch: dict, *, hyper: Hyper) -> tuple[DistillState, dict]:
    """``batch``: "z" [B, s, s, C] (the noise x_T at the student's input size), "target" [B, S, S, C] (the
    teacher's state at this stage's checkpoint and resolution)."""
    z, target = batch["z"], batch["target"]

    def generate(g_params):
        student = nnx.merge(state.g_graphdef, g_params, state.g_state)
        return student(z, hyper.stage, train=True), module_state(student)

    fake, g_vjp, g_state = jax.vjp(generate, state.g_params, has_aux=True)
    metrics = {}
    d_params, d_opt, d_fn = state.d_params, state.d_opt, None
    if hyper.adversarial:
        def d_loss(p):
            return losses.discriminator_loss(lambda x, c: nnx.merge(state.d_graphdef, p)(x, c), target, fake, z,
                                             jax.random.fold_in(state.rng, state.step), gp_weight=hyper.gp_weight,
                                             gp_examples=hyper.gp_examples)

        (_, d_metrics), d_grads = jax.value_and_grad(d_loss, has_aux=True)(d_params)
        updates, d_opt = state.d_tx.update(d_grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, updates)
        metrics.update(d_metrics)
        d_fn = nnx.merge(state.d_graphdef, d_params)
    (_, g_metrics), fake_grad = jax.value_and_grad(
        lambda x: losses.student_loss(d_fn, x, target, z, regression_weight=hyper.regression_weight),
        has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    updates, g_opt = state.g_tx.update(g_grads, state.g_opt, state.g_params)
    metrics.update(g_metrics)
    return state.replace(step=state.step + 1, g_params=optax.apply_updates(state.g_params, updates), g_state=g_state,
                         g_opt=g_opt, d_params=d_params, d_opt=d_opt), metrics


@functools.lru_cache(maxsize=None)
def step_fn(h: Hyper):
    """The step of one stage setting, one function object per setting (jit reuses its compilation)."""
    return functools.partial(train_step, hyper=h)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def sample(graphdef, params, g_state, z: jax.Array) -> jax.Array:
    """One forward pass of every sub-module: the student's x_0 for noise z."""
    student = nnx.merge(graphdef, params, g_state)
    return student(z, student.num_stages - 1, train=False)
