"""MetaCURE's networks (paper Sec. 4; official rlkit/torch/networks.py and rlkit/torch/sac/agent.py), in NNX.

- Task encoders: per-step Gaussian beliefs N(mu_t, var_t) over a context of transitions (s, a, r, s'); belief 0 is
  the prior (no data). ``SnailBelief`` is MetaCURE's sequential encoder (dilated causal convolutions and causal
  attention, parallel over time); ``GRUBelief`` a recurrent alternative (slower to train on CPU: a scan). ``ProductOfGaussians`` is
  PEARL's permutation-invariant encoder (Rakelly et al. 2019, Sec. 4.1): each transition gives a Gaussian factor
  and the belief is their product with the prior N(0, I).
  Both expose ``init_carry() / update(carry, token) / belief(carry)``, so a rollout updates the belief one step at
  a time and training gets every prefix's belief with ``beliefs(tokens)``.
- ``TanhGaussianPolicy``: SAC's squashed Gaussian (log std clipped to [-20, 2]).
- ``Agent``: the exploiter pi(a|s,z) with twin Q(s,a,z), V(s,z) and target V; the explorer pi_e(a|s,mu_t,var_t) with
  its own twin Q, V and target V; the reward predictors r_psi(s,a;mu_t,var_t) and r_oracle(s,a;task) (one network
  with a one-hot training-task input, the official ``ExpSACFinSubtract4`` form), and their next-state twins when the
  intrinsic reward has the dynamics term.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
UNROLL = 8  # GRU steps per loop iteration when a context is encoded (the loop overhead dominates on CPU)


class MLP(nnx.Module):
    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, *inputs: jax.Array) -> jax.Array:
        x = jnp.concatenate(inputs, axis=-1)
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class TanhGaussianPolicy(nnx.Module):
    def __init__(self, in_dim: int, act_dim: int, hidden: Sequence[int], *, rngs: nnx.Rngs):
        self.trunk = MLP((in_dim, *hidden, 2 * act_dim), rngs=rngs)

    def __call__(self, key: jax.Array, *inputs: jax.Array, deterministic: bool = False):
        """(action in [-1, 1], log pi(action), pre-tanh mean, log std)."""
        mean, log_std = jnp.split(self.trunk(*inputs), 2, axis=-1)
        log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
        u = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        log_prob = jnp.sum(jax.scipy.stats.norm.logpdf(u, mean, jnp.exp(log_std))
                           - (2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))), axis=-1)
        return jnp.tanh(u), log_prob, mean, log_std


def _split_belief(out: jax.Array) -> tuple[jax.Array, jax.Array]:
    mu, raw = jnp.split(out, 2, axis=-1)
    return mu, jax.nn.softplus(raw) + 1e-6


class GRUBelief(nnx.Module):
    """Sequential belief q(z | c_{<t}) = N(mu_t, var_t): embedding -> GRU -> linear head (softplus variance)."""

    def __init__(self, token_dim: int, hidden: int, latent: int, *, rngs: nnx.Rngs):
        self.embed = nnx.Linear(token_dim, hidden, rngs=rngs)
        self.cell = nnx.GRUCell(hidden, hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, 2 * latent, rngs=rngs)
        self.hidden = hidden

    def init_carry(self) -> jax.Array:
        return jnp.zeros((self.hidden,))

    def update(self, carry: jax.Array, token: jax.Array) -> jax.Array:
        return self.cell(carry, jax.nn.relu(self.embed(token)))[0]

    def belief(self, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _split_belief(self.head(carry))


class MinGRUBelief(nnx.Module):
    """A recurrent belief whose gates read only the input (minGRU, Feng et al. 2024, "Were RNNs all we needed?"):
    per layer h_t = (1 - g_t) h_{t-1} + g_t c_t with g_t = sigmoid(W_g x_t), c_t = W_c x_t. The recurrence is
    linear in h, so every prefix's state comes from one associative scan (log-depth, no sequential loop): the
    recurrent encoder we can afford to train on CPU. Two layers, ReLU between, linear head."""

    def __init__(self, token_dim: int, hidden: int, latent: int, *, rngs: nnx.Rngs, layers: int = 2):
        self.embed = nnx.Linear(token_dim, hidden, rngs=rngs)
        self.gates = nnx.List([nnx.Linear(hidden, 2 * hidden, rngs=rngs) for _ in range(layers)])
        self.head = nnx.Linear(hidden, 2 * latent, rngs=rngs)
        self.hidden = hidden

    def init_carry(self) -> jax.Array:
        return jnp.zeros((len(self.gates), self.hidden))

    def update(self, carry: jax.Array, token: jax.Array) -> jax.Array:
        x, out = jax.nn.relu(self.embed(token)), []
        for layer, h in zip(self.gates, carry):
            g, c = jnp.split(layer(x), 2, axis=-1)
            g = jax.nn.sigmoid(g)
            h = (1.0 - g) * h + g * c
            out.append(h)
            x = jax.nn.relu(h)
        return jnp.stack(out)

    def belief(self, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _split_belief(self.head(carry[-1]))

    def prefix_beliefs(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jax.nn.relu(self.embed(tokens))
        for layer in self.gates:
            g, c = jnp.split(layer(x), 2, axis=-1)
            g = jax.nn.sigmoid(g)
            _, h = jax.lax.associative_scan(lambda p, q: (p[0] * q[0], q[0] * p[1] + q[1]), (1.0 - g, g * c))
            x = jax.nn.relu(h)
        h = jnp.concatenate([jnp.zeros_like(h[:1]), h])
        return _split_belief(self.head(h))


def _shift(x: jax.Array, d: int) -> jax.Array:
    """x_{t-d} along the time axis (-2), zeros before the start."""
    return jnp.concatenate([jnp.zeros_like(x[..., :d, :]), x[..., :-d, :]], axis=-2)[..., :x.shape[-2], :]


class _DenseBlock(nnx.Module):
    """SNAIL's dense block: a kernel-2 causal convolution with dilation d, tanh * sigmoid gate, concatenated."""

    def __init__(self, channels: int, filters: int, dilation: int, *, rngs: nnx.Rngs):
        self.f = nnx.Linear(2 * channels, filters, rngs=rngs)
        self.g = nnx.Linear(2 * channels, filters, rngs=rngs)
        self.dilation = dilation

    def __call__(self, x: jax.Array) -> jax.Array:
        pair = jnp.concatenate([_shift(x, self.dilation), x], axis=-1)
        return jnp.concatenate([x, jnp.tanh(self.f(pair)) * jax.nn.sigmoid(self.g(pair))], axis=-1)


class _CausalAttention(nnx.Module):
    """SNAIL's attention block: single-head causal attention, its read concatenated to the input."""

    def __init__(self, channels: int, key_size: int, value_size: int, *, rngs: nnx.Rngs):
        self.q = nnx.Linear(channels, key_size, rngs=rngs)
        self.k = nnx.Linear(channels, key_size, rngs=rngs)
        self.v = nnx.Linear(channels, value_size, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        logits = self.q(x) @ jnp.swapaxes(self.k(x), -1, -2) / jnp.sqrt(self.q.out_features)
        n = x.shape[-2]
        logits = jnp.where(jnp.tril(jnp.ones((n, n), bool)), logits, -jnp.inf)
        return jnp.concatenate([x, jax.nn.softmax(logits, axis=-1) @ self.v(x)], axis=-1)


class SnailBelief(nnx.Module):
    """MetaCURE's encoder (official ``SnailEncoder``, after Mishra et al. 2018): token MLP (3 layers) -> TC block
    (ceil(log2 n) dense blocks of 16 filters, dilations 1, 2, 4, ...) -> causal attention (key 32, value 32) -> TC
    block -> causal attention -> linear head (``stages`` TC + attention pairs; the official sizes are the
    defaults), over [start, token_0, ..., token_{n-2}] so that output t is the belief
    after t transitions (the start token is zeros, as the official context's first (o_0, 0, 0) carries no
    reward). Everything is causal, so every prefix's belief comes from one parallel pass; the carry of an online
    rollout is the token list so far and its length."""

    def __init__(self, token_dim: int, hidden: Sequence[int], latent: int, max_len: int, *, rngs: nnx.Rngs,
                 filters: int = 16, key_size: int = 32, value_size: int = 32, stages: int = 2):
        self.embed = MLP((token_dim, *hidden), rngs=rngs)
        self.max_len, self.token_dim = max_len, token_dim
        n = max_len + 1
        layers = max(1, math.ceil(math.log2(n)))
        blocks, c = [], hidden[-1]
        for _ in range(stages):
            for i in range(layers):
                blocks.append(_DenseBlock(c, filters, 2 ** i, rngs=rngs))
                c += filters
            blocks.append(_CausalAttention(c, key_size, value_size, rngs=rngs))
            c += value_size
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(c, 2 * latent, rngs=rngs)

    def _outputs(self, seq: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.embed(seq))
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def init_carry(self) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros((self.max_len + 1, self.token_dim)), jnp.zeros((), jnp.int32)

    def update(self, carry, token: jax.Array):
        seq, n = carry
        return seq.at[n + 1].set(token), n + 1

    def belief(self, carry) -> tuple[jax.Array, jax.Array]:
        seq, n = carry
        return _split_belief(self._outputs(seq)[n])

    def prefix_beliefs(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        seq = jnp.concatenate([jnp.zeros_like(tokens[:1]), tokens])
        return _split_belief(self._outputs(seq))


class ProductOfGaussians(nnx.Module):
    """PEARL's encoder: factor N(mu_i, var_i) = MLP(token_i); posterior = N(0, I) x prod_i factors, i.e.
    precision 1 + sum_i 1/var_i and mean (sum_i mu_i/var_i) / precision (PEARL eq. in Sec. 4.1)."""

    def __init__(self, token_dim: int, hidden: Sequence[int], latent: int, *, rngs: nnx.Rngs):
        self.factor = MLP((token_dim, *hidden, 2 * latent), rngs=rngs)
        self.latent = latent

    def init_carry(self) -> jax.Array:
        return jnp.concatenate([jnp.ones((self.latent,)), jnp.zeros((self.latent,))])  # (precision, precision*mean)

    def update(self, carry: jax.Array, token: jax.Array) -> jax.Array:
        mu, var = _split_belief(self.factor(token))
        return carry + jnp.concatenate([1.0 / var, mu / var])

    def belief(self, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        precision, weighted = jnp.split(carry, 2, axis=-1)
        return weighted / precision, 1.0 / precision

    def prefix_beliefs(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Every prefix's belief at once (a cumulative sum of the factors' natural parameters, no scan)."""
        mu, var = _split_belief(self.factor(tokens))
        terms = jnp.concatenate([1.0 / var, mu / var], axis=-1)
        return self.belief(self.init_carry() + jnp.concatenate([jnp.zeros_like(terms[:1]),
                                                                 jnp.cumsum(terms, axis=0)]))


def beliefs(encoder, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mu [T+1, L], var [T+1, L]): the belief after each prefix of ``tokens`` [T, D], the prior first."""
    if hasattr(encoder, "prefix_beliefs"):
        return encoder.prefix_beliefs(tokens)

    def one(carry, token):
        carry = encoder.update(carry, token)
        return carry, carry

    carry0 = encoder.init_carry()
    _, carries = jax.lax.scan(one, carry0, tokens, unroll=UNROLL)
    return jax.vmap(encoder.belief)(jnp.concatenate([carry0[None], carries]))


def token(obs, action, reward, next_obs) -> jax.Array:
    """A context entry (s, a, r, s')."""
    return jnp.concatenate([obs, action, reward[..., None], next_obs], axis=-1)


class Agent(nnx.Module):
    def __init__(self, *, obs_dim: int, act_dim: int, latent: int, num_train_tasks: int, hidden: Sequence[int],
                 encoder: str, encoder_hidden: int, context_len: int, dynamics: bool, rngs: nnx.Rngs,
                 snail: Sequence[int] = (16, 32, 32, 2)):
        tok = 2 * obs_dim + act_dim + 1
        if encoder == "snail":  # snail: (filters, key size, value size, stages)
            f, k, v, n = snail
            self.encoder = SnailBelief(tok, (encoder_hidden,) * 3, latent, context_len, filters=f, key_size=k,
                                       value_size=v, stages=n, rngs=rngs)
        elif encoder == "min_gru":
            self.encoder = MinGRUBelief(tok, encoder_hidden, latent, rngs=rngs)
        elif encoder == "gru":
            self.encoder = GRUBelief(tok, encoder_hidden, latent, rngs=rngs)
        elif encoder == "product_of_gaussians":
            self.encoder = ProductOfGaussians(tok, (encoder_hidden,) * 2, latent, rngs=rngs)
        else:
            raise ValueError(f"model.encoder {encoder!r}: expected 'snail', 'min_gru', 'gru' or 'product_of_gaussians'")
        s, a, z, b = obs_dim, act_dim, latent, 2 * latent
        self.policy = TanhGaussianPolicy(s + z, a, hidden, rngs=rngs)
        self.q1, self.q2 = MLP((s + a + z, *hidden, 1), rngs=rngs), MLP((s + a + z, *hidden, 1), rngs=rngs)
        self.v, self.v_target = MLP((s + z, *hidden, 1), rngs=rngs), MLP((s + z, *hidden, 1), rngs=rngs)
        self.exp_policy = TanhGaussianPolicy(s + b, a, hidden, rngs=rngs)
        self.exp_q1, self.exp_q2 = MLP((s + a + b, *hidden, 1), rngs=rngs), MLP((s + a + b, *hidden, 1), rngs=rngs)
        self.exp_v, self.exp_v_target = MLP((s + b, *hidden, 1), rngs=rngs), MLP((s + b, *hidden, 1), rngs=rngs)
        self.reward_belief = MLP((s + a + b, *hidden, 1), rngs=rngs)
        self.reward_oracle = MLP((s + a + num_train_tasks, *hidden, 1), rngs=rngs)
        if dynamics:
            self.next_obs_belief = MLP((s + a + b, *hidden, s), rngs=rngs)
            self.next_obs_oracle = MLP((s + a + num_train_tasks, *hidden, s), rngs=rngs)
        self.num_train_tasks = num_train_tasks
        self.dynamics = dynamics


TARGETS = {"v_target": "v", "exp_v_target": "exp_v"}  # target network <- its online network (Polyak)
