"""jaxsuite: JAX/Flax functional reimplementations of eleven ML papers.

Each method lives in ``jaxsuite.methods.<name>`` and exposes pure ``init``, ``train_step`` and
``evaluate`` functions in its ``train.py``; ``jaxsuite.core`` holds the host loop, configs,
checkpoints, sharding and the results contract shared by all of them.
"""

__version__ = "0.1.0"
