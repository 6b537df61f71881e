"""Pa3dFL paper preset: CIFAR-10 (``--set data.dataset=cifar100`` or ``fashion_mnist`` for the paper's other two
data sets; train and test pooled, then partitioned), 100 clients with Dirichlet(0.3) label skew, capacities
uniform over {1, 1/2, 1/4, 1/8}, 20% of each capacity group per round, 1000 rounds, pFedHN's 50 local steps.

The paper's client count, rounds, partition and model are not in our reference notes (shared/papers/pa3dfl.md);
these values are ours, at the scale of pFedHN's CIFAR experiments. Data from the user's $JAXSUITE_DATA (see
jaxsuite/methods/pa3dfl/README.md); sized for a GPU (``clients.chunk`` 0 vmaps a width group's clients)."""
from jaxsuite.core.config import load_config


def get_config():
    c = load_config("pa3dfl", "quick")
    c.unlock()
    c.data.update({"dataset": "cifar10", "alpha": 0.3, "downsample": 1, "min_size": 50})
    c.clients.update({"num_clients": 100, "fraction": 0.2, "chunk": 0})
    c.model.update({"channels": (64, 128), "hidden": 256})
    c.local.update({"steps": 50, "batch_size": 64})
    c.hyper.update({"embed_dim": 26, "hidden": 100})  # pFedHN: 1 + N / 4
    c.rounds = 1000
    c.checkpoint_every = 100
    c.log_every = 50
    c.lock()
    return c
