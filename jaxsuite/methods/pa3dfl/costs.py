"""What a client of width p holds, computes and communicates, counted from the layer shapes.

- ``params``: the client network's trainable entries (Pa3dFL: theta_u + its theta_v + biases; the others: the
  width-p weights and biases).
- ``flops``: one forward pass of one image, 2 x multiply-adds of every conv / linear layer (conv at its input
  resolution, SAME padding, each conv followed by a 2x2 pool); Pa3dFL also composes W = theta_u theta_v once per
  forward of a batch (``compose_flops``, not per image).
- ``bytes_per_round``: float32 bytes the server sends to and receives from all clients in one round: Pa3dFL
  theta_u + theta_v + biases both ways; pFedHN and the width-sliced methods the client's network both ways;
  LG-FedAvg its classifier both ways; local training nothing.
"""
from __future__ import annotations

from fractions import Fraction

from jaxsuite.methods.pa3dfl.model import plain_shape


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def params(kind: str, specs, p_min: Fraction, p: Fraction) -> int:
    total = 0
    for s in specs:
        weights = (_prod(s.u_shape(p_min)) + _prod(s.v_shape(p_min, p)) if kind == "pa3dfl"
                   else _prod(plain_shape(s, p_min, p)))
        total += weights + s.out_width(p_min, p)
    return total


def flops(specs, p_min: Fraction, p: Fraction, image_size: int) -> int:
    total, size = 0, image_size
    for s in specs:
        shape = plain_shape(s, p_min, p)
        if s.kind == "conv":
            total += 2 * size * size * _prod(shape)
            size //= 2
        else:
            total += 2 * _prod(shape)
    return total


def compose_flops(specs, p_min: Fraction, p: Fraction) -> int:
    return sum(2 * s.u_shape(p_min)[0] * _prod(s.v_shape(p_min, p)) for s in specs)


def bytes_per_round(kind: str, specs, p_min: Fraction, widths) -> int:
    if kind == "local_only":
        return 0
    total = 0
    for p in widths:
        if kind == "lg_fedavg":
            head = specs[-1]
            sent = _prod(plain_shape(head, p_min, p)) + head.out_width(p_min, p)
        else:
            sent = params(kind, specs, p_min, p)
        total += 2 * 4 * sent
    return total
