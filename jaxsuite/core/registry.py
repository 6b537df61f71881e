"""Method name -> its experiment module (imported lazily, so `jaxsuite list` stays fast).

An experiment module defines: ``NAME``, ``TITLE``, ``REFERENCE``, ``VARIANTS`` (name -> (description,
config overrides)), ``variant_config(config, variant)``, ``results_meta(config)`` (dataset,
primary_metric, higher_is_better, reference), ``check_data(config)``, ``data_status(dataset)`` via
its data module, and ``run(config, variant, seed, workdir, *, shared_dir, progress) -> metrics | None``;
optionally ``plots(payload, out_dir) -> {name: path}`` for figures beyond the primary-metric bar chart, and
``finalize(payload, config, out_dir) -> dict`` (merged into results.json's ``extra``) for results across variants.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from jaxsuite.core.errors import ConfigError

METHODS: dict[str, str] = {
    "advkd": "jaxsuite.methods.advkd.experiment",
    "exgrg": "jaxsuite.methods.exgrg.experiment",
    "metacure": "jaxsuite.methods.metacure.experiment",
    "mim_refiner": "jaxsuite.methods.mim_refiner.experiment",
    "nddr": "jaxsuite.methods.nddr.experiment",
    "orbench": "jaxsuite.methods.orbench.experiment",
    "pa3dfl": "jaxsuite.methods.pa3dfl.experiment",
    "pate_triplegan": "jaxsuite.methods.pate_triplegan.experiment",
    "spaformer": "jaxsuite.methods.spaformer.experiment",
    "univilm": "jaxsuite.methods.univilm.experiment",
    "whistle": "jaxsuite.methods.whistle.experiment",
}


def get(method: str) -> ModuleType:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r} (implemented: {', '.join(sorted(METHODS))})")
    return importlib.import_module(METHODS[method])
