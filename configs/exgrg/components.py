"""ExGRG components study: the quick preset's exgrg with each relation-graph component it leaves out
(G^A, G^S, G^L, G^R) added back at weight 0.05, on Cora and CiteSeer x 3 seeds (about 25 minutes on 2 cores)."""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("exgrg", "quick")
    c.variants = ("exgrg", "exgrg_plus_adj", "exgrg_plus_cluster", "exgrg_plus_lap", "exgrg_plus_rw")
    return c
