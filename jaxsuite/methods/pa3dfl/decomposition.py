"""Pa3dFL's layer decomposition (Wang et al. 2024, Sec. 4.1): every weight is the product of general parameters
theta_u, the same size for every client and never pruned, and personal parameters theta_v, pruned to the
client's width ratio p.

For a layer with T outputs, S inputs and a k x k kernel (k = 1 for a linear layer), the outputs are cut into
G = T / R1 groups of R1 = T p_min channels (one group for a layer whose outputs are never pruned, the
classifier):

    theta_u in R^{k^2 R1 x R2},  theta_v in R^{R2 x G S},  W = theta_u theta_v in R^{k^2 R1 x G S}

and W's entry ((i, r), (g, s)) is the kernel tap i from input s to output g R1 + r: every group of R1 outputs
is built from the same blocks of theta_u. R2 = max(min(S, T), k^2) for a convolution and R2 = R1 for a linear
layer. A client of width p keeps the first p T outputs (the first G p / p_min groups: columns of theta_v) and
the first p S inputs, so its theta_v is a slice of the full one and its W the same slice of the full W; the
smallest client (p = p_min) has exactly one group. The paper's notation is kept; the grouping of outputs by
blocks of theta_u follows its description (third-party notes; no official code is public).
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import jax.numpy as jnp

from jaxsuite.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One decomposed layer at full width. ``prune_in`` / ``prune_out``: whether a narrow client keeps only the
    first p fraction of its inputs / outputs (not the image channels in, not the class logits out)."""
    name: str
    kind: str  # "conv" or "linear"
    out_features: int  # T
    in_features: int  # S
    kernel: int = 1  # k
    prune_in: bool = True
    prune_out: bool = True

    def r1(self, p_min: Fraction) -> int:
        if not self.prune_out:
            return self.out_features
        r1 = self.out_features * p_min
        if r1.denominator != 1:
            raise ConfigError(f"layer {self.name!r}: {self.out_features} outputs x the smallest width {p_min} is "
                              f"not a whole number of channels")
        return int(r1)

    def r2(self, p_min: Fraction) -> int:
        if self.kind == "conv":
            return max(min(self.in_features, self.out_features), self.kernel ** 2)
        return self.r1(p_min)

    def groups(self, p_min: Fraction) -> int:
        return self.out_features // self.r1(p_min)

    def u_shape(self, p_min: Fraction) -> tuple[int, int]:
        return self.kernel ** 2 * self.r1(p_min), self.r2(p_min)

    def v_shape(self, p_min: Fraction, p: Fraction = Fraction(1)) -> tuple[int, int]:
        """theta_v's shape for a client of width ``p``: [R2, G_p S_p]."""
        g, s = self.width(p_min, p)
        return self.r2(p_min), g * s

    def width(self, p_min: Fraction, p: Fraction) -> tuple[int, int]:
        """(groups, inputs) a client of width ``p`` keeps."""
        if not p_min <= p <= 1:
            raise ConfigError(f"width {p} must be in [{p_min}, 1]")
        groups = self.groups(p_min) * p if self.prune_out else Fraction(self.groups(p_min))
        inputs = self.in_features * p if self.prune_in else Fraction(self.in_features)
        if groups.denominator != 1 or inputs.denominator != 1:
            raise ConfigError(f"layer {self.name!r} at width {p}: {groups} groups x {inputs} inputs are not whole")
        return int(groups), int(inputs)

    def out_width(self, p_min: Fraction, p: Fraction) -> int:
        return self.width(p_min, p)[0] * self.r1(p_min)


def prune_v(spec: LayerSpec, v_full: jnp.ndarray, p_min: Fraction, p: Fraction) -> jnp.ndarray:
    """The full theta_v [R2, G S] cut to a client of width ``p``: its first groups and first inputs."""
    g_full, s_full = spec.groups(p_min), spec.in_features
    g, s = spec.width(p_min, p)
    r2 = v_full.shape[0]
    return v_full.reshape(r2, g_full, s_full)[:, :g, :s].reshape(r2, g * s)


def compose(spec: LayerSpec, u: jnp.ndarray, v: jnp.ndarray, p_min: Fraction, p: Fraction) -> jnp.ndarray:
    """W = theta_u theta_v of a client of width ``p`` as the layer's kernel: [k, k, S_p, T_p] for a convolution
    (HWIO), [S_p, T_p] for a linear layer; the output channel of (group g, row r) is g R1 + r."""
    r1, k = spec.r1(p_min), spec.kernel
    g, s = spec.width(p_min, p)
    if u.shape != spec.u_shape(p_min) or v.shape != spec.v_shape(p_min, p):
        raise ValueError(f"layer {spec.name!r} at width {p}: theta_u {u.shape} / theta_v {v.shape}, expected "
                         f"{spec.u_shape(p_min)} / {spec.v_shape(p_min, p)}")
    w = (u @ v).reshape(k * k, r1, g, s).transpose(0, 3, 2, 1).reshape(k * k, s, g * r1)  # [k^2, S_p, T_p]
    return w.reshape(k, k, s, g * r1) if spec.kind == "conv" else w[0]
