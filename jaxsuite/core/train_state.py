"""The train state every method's pure ``train_step`` carries: arrays only, plus static graph/optimizer.

NNX modules cross into pure functions here: a method's ``init`` splits its module into the graph
definition (static), its parameters and its other state (batch statistics) as plain dicts of arrays
(``nnx.split(model, nnx.Param, ...)`` then ``.to_pure_dict()``); a step merges them back with
:meth:`TrainState.merge`. ``graphdef`` and ``tx`` are static pytree fields, so
the leaves of a state are arrays only and it checkpoints as is.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array
    graphdef: Any = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    aux: Any = None  # method-specific arrays carried across steps (an EMA target, cluster centroids, ...)

    @classmethod
    def create(cls, model: nnx.Module, tx: optax.GradientTransformation, rng: jax.Array) -> "TrainState":
        graphdef, params, rest = split_module(model)
        return cls(step=jnp.zeros((), jnp.int32), params=params, model_state=rest,
                   opt_state=tx.init(params), rng=rng, graphdef=graphdef, tx=tx)

    def merge(self, params: Any | None = None, model_state: Any | None = None) -> nnx.Module:
        """The NNX module with these (or the state's own) parameters and batch statistics."""
        return nnx.merge(self.graphdef, self.params if params is None else params,
                         self.model_state if model_state is None else model_state)

    def step_key(self) -> jax.Array:
        """This step's randomness: the state's key folded with the step counter."""
        return jax.random.fold_in(self.rng, self.step)

    def apply_gradients(self, grads: Any, model_state: Any) -> "TrainState":
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            model_state=model_state, opt_state=opt_state)


def split_module(model: nnx.Module) -> tuple[Any, dict, dict]:
    """(graph definition, parameters, other state) with the two states as plain dicts of arrays."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, params.to_pure_dict(), rest.to_pure_dict()


def module_state(module: nnx.Module) -> Any:
    """The non-parameter state (batch statistics, ...) of a module as a plain dict."""
    return nnx.state(module, nnx.Not(nnx.Param)).to_pure_dict()
