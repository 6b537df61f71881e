"""Pure, jittable ``init`` / ``train_step`` / ``evaluate`` for ExGRG and its baselines.

One ``train_step`` is one EM iteration (the paper's single gradient procedure):
  E-step: with the encoder frozen (stop-gradient), embed the clean graph, build the online
          relation-graph components (k-NN on cosine similarity, k-means clusters warm-started
          from the previous step's centroids) and take the fixed ones (adjacency, LapPE / RWSE
          k-NN) from the batch;
  M-step: one Adam step on L = N sum_c w_c I_c(Z1, Z2) + lambda (||Z1^T Z1 - I||^2 + ||Z2^T Z2 - I||^2) on
          standardised Z (``loss.form=whitened``, the default) or on VICReg's form
          L = inv_w sum_c w_c I_c / D + var_w (V(Z1) + V(Z2)) + cov_w (C(Z1) + C(Z2)) (``loss.form=vicreg``).

The batch is the whole graph: ``{"x": dense features, "graph": jraph.GraphsTuple,
"static": {name: Edges}, "labels", "train_mask", "val_mask", "test_mask"}``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core.errors import ConfigError
from jaxsuite.core.train_state import TrainState
from jaxsuite.methods.exgrg import losses
from jaxsuite.methods.exgrg.model import GraphSSL, Hyper
from jaxsuite.methods.exgrg.probe import linear_probe
from jaxsuite.methods.exgrg.relation_graph import Edges, augmentation_pairs, kmeans, knn_edges

COMPONENTS = ("aug", "adj", "knn", "cluster", "lap", "rw")
KINDS = ("exgrg", "cca_ssg", "bgrl", "supervised")


def num_steps(config) -> int:
    """The training budget of ``config.kind``: ``supervised.steps`` for the supervised GCN, ``bgrl.steps`` for
    BGRL when it is set (> 0; BGRL's own budget, chosen on validation curves), ``steps`` otherwise."""
    if config.kind == "supervised":
        return int(config.supervised.steps)
    if config.kind == "bgrl" and int(config.bgrl.get("steps", 0) or 0) > 0:
        return int(config.bgrl.steps)
    return int(config.steps)


def hyper(config) -> Hyper:
    if config.kind not in KINDS:
        raise ConfigError(f"config key 'kind' must be one of {KINDS}, got {config.kind!r}")
    comps = tuple((name, float(w)) for name, w in config.relation.weights.items() if float(w) > 0)
    unknown = [name for name, _ in comps if name not in COMPONENTS]
    if unknown:
        raise ConfigError(f"config key 'relation.weights' names unknown components {unknown} (known: {COMPONENTS})")
    steps = num_steps(config)
    if config.relation.refresh_every < 1:
        raise ConfigError(f"config key 'relation.refresh_every' must be >= 1, got {config.relation.refresh_every}")
    if config.loss.form not in ("whitened", "vicreg"):
        raise ConfigError(f"config key 'loss.form' must be 'whitened' or 'vicreg', got {config.loss.form!r}")
    return Hyper(kind=config.kind, form=config.loss.form, feature_drop=config.aug.feature_drop, edge_drop=config.aug.edge_drop,
                 inv_weight=config.loss.inv_weight, var_weight=config.loss.var_weight,
                 cov_weight=config.loss.cov_weight, components=comps, knn_k=config.relation.knn_k,
                 num_clusters=config.relation.num_clusters, kmeans_iters=config.relation.kmeans_iters,
                 cca_lambda=config.loss.cca_lambda, refresh_every=config.relation.refresh_every,
                 knn_hops=config.relation.knn_hops, ema_start=config.bgrl.ema, total_steps=steps,
                 dropout=config.supervised.dropout)


def init(config, rng: jax.Array) -> TrainState:
    """Needs ``config.data.num_features`` / ``num_classes`` (set by the experiment from the loaded graph)."""
    if config.data.num_features <= 0:
        raise ConfigError("config key 'data.num_features' must be set to the graph's feature dimension")
    hp = hyper(config)
    if dict(hp.components).get("knn", 0) > 0 and not 0 < hp.knn_k < config.data.num_nodes:
        raise ConfigError(f"config key 'relation.knn_k' must be in [1, {config.data.num_nodes - 1}] for "
                          f"{config.data.num_nodes} nodes, got {hp.knn_k}")
    sizes = ((config.supervised.hidden, config.data.num_classes) if hp.kind == "supervised"
             else tuple(config.model.sizes))
    k_model, k_aux, k_state = jax.random.split(rng, 3)
    model = GraphSSL(config.data.num_features, sizes, hp, rngs=nnx.Rngs(params=k_model))
    if hp.kind == "supervised":
        tx = optax.chain(optax.add_decayed_weights(config.supervised.weight_decay), optax.adam(config.supervised.lr))
    else:
        tx = optax.chain(optax.add_decayed_weights(config.optim.weight_decay), optax.adam(config.optim.lr))
    state = TrainState.create(model, tx, k_state)
    aux = {}
    if hp.kind == "bgrl":  # a copy: the target must not share buffers with the online encoder, or
        # jax.jit(train_step, donate_argnums=0) would donate the same buffer twice
        aux["target"] = jax.tree.map(jnp.copy, state.params["encoder"])
    n = config.data.num_nodes
    if dict(hp.components).get("knn", 0) > 0:  # the cached E-step output, refreshed at step 0
        aux["e_knn"] = Edges(jnp.zeros(n * hp.knn_k, jnp.int32), jnp.zeros(n * hp.knn_k, jnp.int32),
                             jnp.zeros(n * hp.knn_k, jnp.float32))
    if dict(hp.components).get("cluster", 0) > 0:
        c = jax.random.normal(k_aux, (hp.num_clusters, sizes[-1]))
        aux["e_cluster"] = (jnp.zeros(n, jnp.int32), c / jnp.linalg.norm(c, axis=-1, keepdims=True))
    return state.replace(aux=aux)


def _view(key, graph, num_features: int, hp: Hyper):
    kf, ke = jax.random.split(key)
    fmask = jax.random.bernoulli(kf, 1.0 - hp.feature_drop, (num_features,)).astype(jnp.float32)
    emask = jax.random.bernoulli(ke, 1.0 - hp.edge_drop, graph.edges.shape).astype(jnp.float32)
    return graph._replace(edges=graph.edges * emask), fmask


def _encode_views(encoder, x, views, hp: Hyper):
    """The encoder on both augmented views; views that mask no features share the first layer's X W."""
    (g1, fm1), (g2, fm2) = views
    if hp.feature_drop == 0:  # both views see every feature: one X W for both (CiteSeer's setting)
        xw = encoder.project(x)
        return encoder(g1, x, projected=xw), encoder(g2, x, projected=xw)
    return encoder(g1, x, fm1), encoder(g2, x, fm2)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    hp: Hyper = state.merge().hyper
    x, graph = batch["x"], batch["graph"]
    n, f = batch["labels"].shape[0], x.shape[1]
    k1, k2, k3 = jax.random.split(state.step_key(), 3)
    aux = dict(state.aux or {})

    if hp.kind == "supervised":
        def loss_fn(params):
            logits = state.merge(params).encoder(graph, x, dropout=hp.dropout, rngs=nnx.Rngs(dropout=k3))
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(batch["labels"], 0))
            m = batch["train_mask"].astype(jnp.float32)
            return jnp.sum(ce * m) / m.sum(), {}
    else:
        views = (_view(k1, graph, f, hp), _view(k2, graph, f, hp))
        weights = dict(hp.components)
        # ---- E-step: the relation graph from the frozen encoder --------------------------------
        edges: dict[str, Edges] = {}
        assign = None
        if hp.kind == "exgrg":
            if hp.knn_hops > 0 and "knn" in weights and "knn_scope" not in batch:
                raise ConfigError("relation.knn_hops > 0 needs batch['knn_scope'] (data.full_batch(..., knn_hops=r))")
            online = [name for name in weights if name in ("knn", "cluster")]
            if online:
                cached = {name: aux[f"e_{name}"] for name in online}

                def refresh(_):
                    h = jax.lax.stop_gradient(state.merge().encoder(graph, x))
                    out = {}
                    if "knn" in online:
                        out["knn"] = knn_edges(h, hp.knn_k, batch.get("knn_scope"))
                    if "cluster" in online:
                        out["cluster"] = kmeans(h, aux["e_cluster"][1], hp.kmeans_iters)
                    return out

                if hp.refresh_every == 1:  # the paper: a new G every EM iteration
                    fresh = refresh(None)
                else:  # reuse the cached G between refreshes (a cheaper E-step)
                    fresh = jax.lax.cond(state.step % hp.refresh_every == 0, refresh, lambda _: cached, None)
                aux.update({f"e_{name}": v for name, v in fresh.items()})
                if "knn" in online:
                    edges["knn"] = fresh["knn"]
                if "cluster" in online:
                    assign = fresh["cluster"][0]
            for name in weights:
                if name == "aug":
                    edges[name] = augmentation_pairs(n)
                elif name not in ("knn", "cluster"):
                    if name not in batch["static"]:
                        raise ConfigError(f"relation.weights.{name} > 0 but the batch has no {name!r} component "
                                          "(build it with data.full_batch(..., fixed=(...)))")
                    edges[name] = batch["static"][name]

        # ---- M-step ------------------------------------------------------------------------------
        def loss_fn(params):
            model = state.merge(params)
            z1, z2 = _encode_views(model.encoder, x, views, hp)
            if hp.kind == "exgrg" and hp.form == "whitened":
                z1, z2 = losses.whiten(z1), losses.whiten(z2)
            if hp.kind == "cca_ssg":
                return losses.cca_ssg(z1, z2, hp.cca_lambda), {}
            if hp.kind == "bgrl":
                target = state.merge({**params, "encoder": state.aux["target"]}).encoder
                t1, t2 = _encode_views(target, x, views, hp)
                return losses.bgrl(model.predictor(z1), model.predictor(z2), t1, t2), {}
            terms = {name: losses.edge_invariance(z1, z2, e) for name, e in edges.items()}
            if assign is not None:
                terms["cluster"] = losses.cluster_invariance(z1, z2, assign, hp.num_clusters)
            inv = sum(weights[name] * t for name, t in terms.items())
            if hp.form == "whitened":  # N * mean over G's edges == ||Z1 - Z2||_F^2 for G = G^O
                dec = losses.decorrelation(z1) + losses.decorrelation(z2)
                total = n * inv + hp.cca_lambda * dec
                return total, {"invariance": n * inv, "decorrelation": dec,
                               **{f"inv_{k}": v for k, v in terms.items()}}
            var = losses.variance(z1) + losses.variance(z2)
            cov = losses.covariance(z1) + losses.covariance(z2)
            total = hp.inv_weight * inv / z1.shape[1] + hp.var_weight * var + hp.cov_weight * cov
            return total, {"invariance": inv, "variance": var, "covariance": cov,
                           **{f"inv_{k}": v for k, v in terms.items()}}

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    new = state.apply_gradients(grads, state.model_state)
    if hp.kind == "bgrl":  # target <- tau * target + (1 - tau) * online, tau cosine-annealed to 1
        progress = jnp.minimum(state.step / max(hp.total_steps, 1), 1.0)
        tau = 1.0 - (1.0 - hp.ema_start) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0
        aux["target"] = jax.tree.map(lambda t, o: tau * t + (1 - tau) * o, state.aux["target"], new.params["encoder"])
    return new.replace(aux=aux or state.aux), {"loss": loss, **terms, "grad_norm": optax.global_norm(grads)}


@jax.jit
def embed(state: TrainState, x, graph) -> jax.Array:
    """Frozen embeddings of the clean graph (logits for the supervised GCN)."""
    return state.merge().encoder(graph, x)


def evaluate(state: TrainState, data: dict, num_random_splits: int = 10) -> dict[str, float]:
    """Linear probe of the frozen embeddings (public split + random 10/10/80 splits); the supervised
    GCN is read out directly on the public split."""
    out = embed(state, data["x"], data["graph"])
    labels = np.asarray(data["labels"])
    if state.merge().hyper.kind == "supervised":
        pred = np.asarray(out).argmax(-1)
        test, val = np.asarray(data["test_mask"]), np.asarray(data["val_mask"])
        return {"test_accuracy": float(np.mean(pred[test] == labels[test])),
                "val_accuracy": float(np.mean(pred[val] == labels[val]))}
    return linear_probe(out, labels, data["train_mask"], data["val_mask"], data["test_mask"],
                        num_classes=int(labels.max()) + 1, num_random_splits=num_random_splits)
