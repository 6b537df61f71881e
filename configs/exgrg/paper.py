"""ExGRG full study: every variant (the ablations and the component studies too), a new relation graph at
every EM iteration as the paper does (relation.refresh_every=1), 5 seeds. The paper's own k, weights and
encoder sizes are not public here; this keeps the quick preset's (see methods/exgrg/README.md)."""
from jaxsuite.core.config import load_config
from jaxsuite.methods.exgrg.experiment import VARIANTS


def get_config():
    c = load_config("exgrg", "quick")
    c.relation.refresh_every = 1
    c.variants = tuple(VARIANTS)
    c.seeds = (0, 1, 2, 3, 4)
    return c
