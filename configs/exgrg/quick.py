"""ExGRG quick preset: Cora and CiteSeer (public split + 10 random 10/10/80 splits), every variant x 3 seeds."""
from ml_collections import ConfigDict

VARIANTS = ("exgrg", "vicreg_aug", "bgrl", "cca_ssg", "raw_features", "gcn_supervised",
            "exgrg_no_adj", "exgrg_no_knn", "exgrg_no_cluster", "exgrg_no_pos")


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.dataset = "cora"  # the graph `jaxsuite run` trains on
    c.datasets = ("cora", "citeseer")  # the graphs `reproduce` evaluates every variant on
    c.data = ConfigDict({"num_features": 0, "num_classes": 0, "pe_dim": 16, "rw_steps": 16, "pe_k": 10})
    c.kind = "exgrg"
    c.model = ConfigDict({"sizes": (512, 512)})
    c.aug = ConfigDict({"feature_drop": 0.1, "edge_drop": 0.4})
    c.loss = ConfigDict({"form": "whitened", "inv_weight": 25.0, "var_weight": 25.0, "cov_weight": 1.0, "cca_lambda": 1e-3})
    c.relation = ConfigDict({
        "weights": ConfigDict({"aug": 1.0, "adj": 0.5, "knn": 0.5, "cluster": 0.25, "lap": 0.1, "rw": 0.1}),
        "knn_k": 10, "num_clusters": 16, "kmeans_iters": 3})
    c.optim = ConfigDict({"lr": 1e-3, "weight_decay": 0.0})
    c.bgrl = ConfigDict({"ema": 0.99})
    c.supervised = ConfigDict({"hidden": 64, "dropout": 0.5, "lr": 0.01, "weight_decay": 5e-4, "steps": 200})
    c.steps = 100
    c.eval_every = 0
    c.checkpoint_every = 50
    c.keep_checkpoints = 2
    c.log_every = 10
    c.num_random_splits = 10
    c.variant = "exgrg"
    c.variants = VARIANTS
    c.seeds = (0, 1, 2)
    return c
