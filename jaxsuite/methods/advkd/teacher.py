"""The DDPM teacher: an epsilon-prediction UNet (jaxsuite/nn/unet.py) trained with DDPM's simplified loss, an EMA
of its weights for sampling (as DDPM and the google/ddpm checkpoints the official code distils), and its three
uses: ancestral sampling with the trajectory recorded at K checkpoints (the distillation data), T-step DDIM
(eta = 0) recorded at the same checkpoints (the deterministic targets of ``regression_ddim``), full ancestral
sampling (``teacher_full``) and K-step DDIM (``teacher_few_steps``)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.advkd import diffusion
from jaxsuite.nn.unet import UNet


def schedule(cfg) -> diffusion.Schedule:
    t = cfg.teacher
    return diffusion.Schedule(t.steps, t.beta_start, t.beta_end)


def make_unet(cfg, rngs: nnx.Rngs) -> UNet:
    u = cfg.teacher.unet
    return UNet(cfg.data.channels, base=u.base, mults=tuple(u.mults), num_res_blocks=u.num_res_blocks,
                attn_resolutions=tuple(u.attn_resolutions), image_size=cfg.data.image_size, patch=u.patch,
                rngs=rngs)


def init(cfg, rng: jax.Array) -> TrainState:
    """Fresh teacher; ``aux`` = the EMA of its parameters."""
    o = cfg.teacher.optim
    lr = optax.warmup_cosine_decay_schedule(0.0, o.lr, o.warmup_steps, cfg.teacher.train_steps, o.lr * o.final_lr_ratio)
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), optax.adam(lr))
    state = TrainState.create(make_unet(cfg, nnx.Rngs(jax.random.fold_in(rng, 0))), tx, jax.random.fold_in(rng, 1))
    ema = jax.tree.map(jnp.copy, state.params)  # own buffers: a donated state must not hold one array twice
    return state.replace(aux={"ema": ema, "ema_decay": jnp.float32(cfg.teacher.ema)})


def eps_fn(graphdef, params):
    """The network as the samplers call it: t in 1..T, the UNet sees t - 1."""
    return lambda x_t, t: nnx.merge(graphdef, params)(x_t, t - 1)


def train_step(state: TrainState, batch: dict, *, schedule: diffusion.Schedule) -> tuple[TrainState, dict]:
    """One step of DDPM's loss (Eq. 14) on ``batch["image"]`` in [-1, 1]; the EMA follows."""
    loss, grads = jax.value_and_grad(
        lambda p: diffusion.eps_loss(schedule, eps_fn(state.graphdef, p), batch["image"], state.step_key()))(
        state.params)
    new = state.apply_gradients(grads, state.model_state)
    d = state.aux["ema_decay"]
    ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.aux["ema"], new.params)
    return new.replace(aux={**state.aux, "ema": ema}), {"loss": loss}


@functools.partial(jax.jit, static_argnames=("graphdef", "schedule", "record_after"))
def trajectories(graphdef, params, x_T: jax.Array, key: jax.Array, *, schedule: diffusion.Schedule,
                 record_after: tuple[int, ...]) -> jax.Array:
    """Ancestral sampling from x_T: the states after the step counts ``record_after``, [K, B, H, W, C] (the last
    is x_0)."""
    return diffusion.ddpm_sample(schedule, eps_fn(graphdef, params), x_T, key, record_after=record_after)


@functools.partial(jax.jit, static_argnames=("graphdef", "schedule", "evaluations"))
def ddim(graphdef, params, x_T: jax.Array, *, schedule: diffusion.Schedule, evaluations: int) -> jax.Array:
    return diffusion.ddim_sample(schedule, eps_fn(graphdef, params), x_T, evaluations=evaluations)


@functools.partial(jax.jit, static_argnames=("graphdef", "schedule", "record_after"))
def ddim_trajectories(graphdef, params, x_T: jax.Array, *, schedule: diffusion.Schedule,
                      record_after: tuple[int, ...]) -> jax.Array:
    """DDIM (eta = 0) over all T steps from x_T, deterministic: the states after the step counts
    ``record_after``, [K, B, H, W, C] (the last is the teacher's DDIM map x_0 = F(x_T))."""
    return diffusion.ddim_trajectory(schedule, eps_fn(graphdef, params), x_T, record_after=record_after)
