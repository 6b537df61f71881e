"""The teacher's diffusion process (DDPM, Ho et al. 2020) and its two samplers.

* forward process, Eq. (4) of DDPM: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), linear betas;
* training loss, Eq. (14): || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2, t uniform;
* ancestral sampling (Algorithm 2) in the posterior-mean form of diffusers' ``DDPMScheduler`` that the official
  teacher (google/ddpm-celebahq-256) runs with: x0_hat clipped to [-1, 1], mean = c0 x0_hat + ct x_t, variance
  beta_tilde_t ("fixed_small"); the trajectory is recorded at K checkpoints (by default every T/K steps; the
  last is x_0), as Adv-KD's data generator records the teacher's states (after steps 1, 101, ..., 901 and 1000 of
  1000 in the official code);
* DDIM (Song et al. 2021, Eq. 12, eta = 0) on an evenly spaced sub-sequence of the T steps: the
  ``teacher_few_steps`` baseline with as many network evaluations as the student has sub-modules;
* DDIM (eta = 0) over every one of the T steps with the trajectory recorded at the same K checkpoints
  (``ddim_trajectory``): the teacher's *deterministic* map x_T -> x_0 that Luhman & Luhman (2021) distil, the
  targets of the ``regression_ddim`` baseline.

Timesteps are 1..T here (t = 0 is data); the network sees t - 1 (diffusers' 0-based index).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x_t [B, H, W, C], t [B] in 1..T) -> eps_hat


@dataclasses.dataclass(frozen=True)
class Schedule:
    """DDPM's linear schedule: beta_1..beta_T evenly spaced from ``beta_start`` to ``beta_end`` (hashable: a
    static argument of jitted functions)."""
    steps: int
    beta_start: float
    beta_end: float

    def __post_init__(self):
        if not 0 < self.beta_start < self.beta_end < 1 or self.steps < 1:
            raise ValueError(f"need T >= 1 and 0 < beta_start < beta_end < 1, got T={self.steps}, "
                             f"{self.beta_start}, {self.beta_end}")

    @property
    def betas(self) -> np.ndarray:  # [T + 1], betas[0] = 0 so index t reads beta_t
        return np.concatenate([[0.0], np.linspace(self.beta_start, self.beta_end, self.steps)])

    @property
    def alpha_bar(self) -> np.ndarray:  # [T + 1], alpha_bar[0] = 1
        return np.cumprod(1.0 - self.betas)


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (closed form of the forward process, DDPM Eq. 4)."""
    abar = jnp.asarray(schedule.alpha_bar, jnp.float32)[t][:, None, None, None]
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def eps_loss(schedule: Schedule, eps_fn: EpsFn, x0: jax.Array, key: jax.Array) -> jax.Array:
    """DDPM's simplified objective (Eq. 14): mean squared error of the predicted noise, t ~ U{1..T}."""
    kt, kn = jax.random.split(key)
    t = jax.random.randint(kt, (x0.shape[0],), 1, schedule.steps + 1)
    noise = jax.random.normal(kn, x0.shape, x0.dtype)
    return jnp.mean((eps_fn(q_sample(schedule, x0, t, noise), t) - noise) ** 2)


def _posterior_coefs(schedule: Schedule) -> tuple[np.ndarray, ...]:
    """Per t: coefficient of x0_hat and of x_t in the posterior mean, and the posterior std (DDPM Eq. 6-7)."""
    b, abar = schedule.betas, schedule.alpha_bar
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        c0 = np.where(np.arange(len(b)) > 0, np.sqrt(abar_prev) * b / (1.0 - abar), 0.0)
        ct = np.where(np.arange(len(b)) > 0, np.sqrt(1.0 - b) * (1.0 - abar_prev) / (1.0 - abar), 0.0)
        var = np.where(np.arange(len(b)) > 0, (1.0 - abar_prev) / (1.0 - abar) * b, 0.0)
    return c0, ct, np.sqrt(var)


def predict_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    abar = jnp.asarray(schedule.alpha_bar, jnp.float32)[t][:, None, None, None]
    return (x_t - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)


def even_checkpoints(steps: int, checkpoints: int) -> tuple[int, ...]:
    """Record after every T/K steps: (T/K, 2T/K, ..., T)."""
    if steps % checkpoints:
        raise ValueError(f"the {steps} diffusion steps are not divisible into {checkpoints} checkpoints")
    return tuple(range(steps // checkpoints, steps + 1, steps // checkpoints))


def ddpm_sample(schedule: Schedule, eps_fn: EpsFn, x_T: jax.Array, key: jax.Array, *,
                record_after: Sequence[int], clip: bool = True) -> jax.Array:
    """Ancestral sampling from x_T; returns the states after the step counts ``record_after`` (increasing, the
    last = T, so the last state is x_0): [K, B, H, W, C]."""
    T = schedule.steps
    record_after = tuple(record_after)
    if not record_after or record_after[-1] != T or any(b <= a for a, b in zip((0,) + record_after, record_after)):
        raise ValueError(f"record_after must increase from >= 1 to T = {T}, got {record_after}")
    c0, ct, std = (jnp.asarray(a, jnp.float32) for a in _posterior_coefs(schedule))
    b = x_T.shape[0]

    def step(x, t):
        tb = jnp.full((b,), t, jnp.int32)
        x0 = predict_x0(schedule, x, tb, eps_fn(x, tb))
        x0 = jnp.clip(x0, -1.0, 1.0) if clip else x0
        z = jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
        return c0[t] * x0 + ct[t] * x + std[t] * z, None  # std[1] = 0: the last step adds no noise

    states, x, done = [], x_T, 0
    for n in record_after:  # step counts n: timesteps T - done .. T - n + 1
        x, _ = jax.lax.scan(step, x, jnp.arange(T - done, T - n, -1, dtype=jnp.int32))
        states.append(x)
        done = n
    return jnp.stack(states)


def ddim_timesteps(total: int, evaluations: int) -> np.ndarray:
    """``evaluations`` evenly spaced timesteps in T..1 (the first is T)."""
    if not 1 <= evaluations <= total:
        raise ValueError(f"DDIM needs 1..{total} evaluations, got {evaluations}")
    return np.round(np.linspace(total, 0, evaluations + 1)[:-1]).astype(np.int32)


def _ddim_step(schedule: Schedule, eps_fn: EpsFn, batch: int, clip: bool):
    """One deterministic DDIM update (Song et al. 2021, Eq. 12 with sigma_t = 0) from timestep t to s < t:
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps_hat; with ``clip``, x0_hat is clipped to [-1, 1] and eps_hat
    recomputed from it (diffusers' DDIMScheduler with clip_sample)."""
    abar = jnp.asarray(schedule.alpha_bar, jnp.float32)

    def step(x, tp):
        t, s = tp
        tb = jnp.full((batch,), t, jnp.int32)
        eps = eps_fn(x, tb)
        x0 = predict_x0(schedule, x, tb, eps)
        if clip:
            x0 = jnp.clip(x0, -1.0, 1.0)
            eps = (x - jnp.sqrt(abar[t]) * x0) / jnp.sqrt(1.0 - abar[t])
        return jnp.sqrt(abar[s]) * x0 + jnp.sqrt(1.0 - abar[s]) * eps, None

    return step


def ddim_sample(schedule: Schedule, eps_fn: EpsFn, x_T: jax.Array, *, evaluations: int,
                clip: bool = True) -> jax.Array:
    """Deterministic DDIM (eta = 0) with ``evaluations`` network calls: x_{s} = sqrt(abar_s) x0_hat +
    sqrt(1 - abar_s) eps_hat for the next timestep s of the sub-sequence (s = 0 after the last)."""
    ts = ddim_timesteps(schedule.steps, evaluations)
    prev = np.concatenate([ts[1:], [0]]).astype(np.int32)
    x, _ = jax.lax.scan(_ddim_step(schedule, eps_fn, x_T.shape[0], clip), x_T, (jnp.asarray(ts), jnp.asarray(prev)))
    return x


def ddim_trajectory(schedule: Schedule, eps_fn: EpsFn, x_T: jax.Array, *, record_after: Sequence[int],
                    clip: bool = True) -> jax.Array:
    """DDIM (eta = 0) over every timestep T, T - 1, ..., 1 (T network calls, as many as the ancestral sampler),
    returning the states after the step counts ``record_after`` (increasing, the last = T): [K, B, H, W, C].

    A deterministic function of x_T: the same noise gives the same trajectory, and its last state is the
    teacher's DDIM map F(x_T) that Luhman & Luhman (2021, Eq. 11, their student objective) regress a one-step
    student onto. After n steps the state is at timestep T - n, the noise level of the ancestral sampler's state
    after n steps."""
    T = schedule.steps
    record_after = tuple(record_after)
    if not record_after or record_after[-1] != T or any(b <= a for a, b in zip((0,) + record_after, record_after)):
        raise ValueError(f"record_after must increase from >= 1 to T = {T}, got {record_after}")
    step = _ddim_step(schedule, eps_fn, x_T.shape[0], clip)
    states, x, done = [], x_T, 0
    for n in record_after:
        ts = jnp.arange(T - done, T - n, -1, dtype=jnp.int32)
        x, _ = jax.lax.scan(step, x, (ts, ts - 1))
        states.append(x)
        done = n
    return jnp.stack(states)
